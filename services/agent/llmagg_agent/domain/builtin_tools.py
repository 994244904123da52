"""The agent's tools: files of the project directory, and a question to the human."""

from __future__ import annotations

from llmagg_agent.domain.tools import ToolRegistry, tool
from llmagg_agent.domain.workspace import Workspace

ASK_HUMAN = "ask_human_for_input"


@tool(context="workspace")
def read_file(workspace: Workspace, filepath: str) -> str:
    """Read a UTF-8 text file of the project and return its content.

    Args:
        filepath: The file's path relative to the project directory, e.g. "src/utils.py".
    """
    return workspace.read_text(filepath)


@tool(context="workspace")
def write_file(workspace: Workspace, filepath: str, content: str) -> str:
    """Create or replace a text file of the project with the given content (parent directories are created).

    Args:
        filepath: The file's path relative to the project directory, e.g. "src/importer.py".
        content: The whole new content of the file.
    """
    return workspace.write_text(filepath, content)


@tool(context="workspace")
def list_files(workspace: Workspace, directory_path: str = "") -> str:
    """List the files and subdirectories of a project directory, one per line (directories end with "/").

    Args:
        directory_path: The directory relative to the project directory; empty for the project directory itself.
    """
    return workspace.list_entries(directory_path)


@tool(name=ASK_HUMAN)
def ask_human_for_input(question: str) -> str:
    """Ask the human you work for a question and wait for the answer. Use it when a decision or a piece of
    information only they have is needed (e.g. before overwriting or deleting their files).

    Args:
        question: The question, complete enough to be answered without other context.
    """
    raise RuntimeError("the agent answers ask_human_for_input by pausing the run; it is never run as a function")


FILE_TOOLS = (read_file.name, write_file.name, list_files.name)
BUILTIN_TOOLS = ToolRegistry([read_file, write_file, list_files, ask_human_for_input])


def tools_for_run(has_project: bool) -> ToolRegistry:
    """What a run offers: the file tools only when the request names a project directory."""
    return BUILTIN_TOOLS.subset([*(FILE_TOOLS if has_project else ()), ASK_HUMAN])
