"""The @tool decorator builds definitions from signatures and docstrings; the registry validates and runs calls."""

from __future__ import annotations

import json
from typing import Annotated, Literal

import pytest

from llmagg_agent.domain.builtin_tools import BUILTIN_TOOLS, tools_for_run
from llmagg_agent.domain.tools import ToolError, ToolRegistry, parse_docstring, tool


@tool
def search(query: str, limit: int = 10, exact: bool = False, mode: Literal["any", "all"] = "any") -> list[str]:
    """Search the notes.

    Longer text that is not part of the description.

    Args:
        query: What to look for,
            over two lines.
        limit: At most this many results.

    Returns:
        The matches.
    """
    return [f"{query}:{limit}:{exact}:{mode}"]


def test_the_schema_follows_the_signature_type_hints_defaults_and_docstring():
    assert search.name == "search" and search.description == "Search the notes."
    assert search.parameters == {
        "type": "object",
        "properties": {
            "query": {"type": "string", "description": "What to look for, over two lines."},
            "limit": {"type": "integer", "description": "At most this many results.", "default": 10},
            "exact": {"type": "boolean", "default": False},
            "mode": {"type": "string", "enum": ["any", "all"], "default": "any"},
        },
        "required": ["query"],
        "additionalProperties": False,
    }
    assert search.openai() == {
        "type": "function",
        "function": {"name": "search", "description": "Search the notes.", "parameters": search.parameters},
    }
    assert search("x") == ["x:10:False:any"]  # still the function


def test_containers_optionals_annotated_and_sphinx_docstrings():
    @tool(name="tag-files", description="Tag files.")
    def tag(paths: list[str], tags: dict[str, int], note: Annotated[str, "A free note"], owner: str | None = None):
        """Ignored summary.

        :param paths: Files to tag.
        """

    properties = tag.parameters["properties"]
    assert tag.name == "tag-files" and tag.description == "Tag files."
    assert properties["paths"] == {"type": "array", "items": {"type": "string"}, "description": "Files to tag."}
    assert properties["tags"] == {"type": "object", "additionalProperties": {"type": "integer"}}
    assert properties["note"] == {"type": "string", "description": "A free note"}
    assert properties["owner"] == {"type": "string"}  # optional: not required, no default written
    assert tag.parameters["required"] == ["paths", "tags", "note"]


def test_a_context_parameter_is_left_out_of_the_schema():
    @tool(context="workspace")
    def read(workspace: object, path: str) -> str:
        """Read."""
        return f"{workspace}:{path}"

    assert list(read.parameters["properties"]) == ["path"] and read.context == "workspace"


def undocumented(x: int) -> int:
    return x


def unhinted(x):
    return x


@pytest.mark.parametrize(
    ("define", "complaint"),
    [
        (lambda: tool(undocumented), "needs a description"),
        (lambda: tool(description="d")(unhinted), "needs a type hint"),
        (lambda: tool(name="has space", description="d")(undocumented), "must be letters"),
        (lambda: tool(description="d", context="ws")(undocumented), "no parameter 'ws'"),
    ],
)
def test_a_tool_that_cannot_be_described_fails_when_it_is_defined(define, complaint):
    with pytest.raises((TypeError, ValueError), match=complaint):
        define()


def test_unsupported_types_fail_at_definition():
    with pytest.raises(TypeError, match="no JSON schema"):

        @tool(description="d")
        def bad(when: complex) -> None: ...


def test_docstring_sections_end_at_the_next_section():
    summary, parameters = parse_docstring(
        """Do it.

        Args:
            a: First.
            b (int): Second,
                continued.
        Raises:
            ValueError: never a parameter.
        """
    )
    assert summary == "Do it." and parameters == {"a": "First.", "b": "Second, continued."}


def test_registry_presents_tools_in_openai_shape_and_refuses_duplicates():
    registry = ToolRegistry([search])
    assert [t["function"]["name"] for t in registry.openai()] == ["search"]
    with pytest.raises(ValueError, match="already registered"):
        registry.register(search)


async def test_a_valid_call_runs_the_function_and_returns_its_result_as_text():
    outcome = await ToolRegistry([search]).run("search", json.dumps({"query": "q", "limit": 2, "mode": "all"}))
    assert outcome.ok and json.loads(outcome.content) == ["q:2:False:all"]


@pytest.mark.parametrize(
    ("arguments", "problem"),
    [
        ("{}", "'query' is a required property"),
        ('{"query": 5}', "query: 5 is not of type 'string'"),
        ('{"query": "q", "limit": "2"}', "limit: '2' is not of type 'integer'"),
        ('{"query": "q", "mode": "some"}', "mode: 'some' is not one of ['any', 'all']"),
        ('{"query": "q", "lmit": 2}', "Additional properties are not allowed ('lmit' was unexpected)"),
        ('["q"]', "['q'] is not of type 'object'"),
    ],
)
async def test_invalid_arguments_never_reach_the_function_and_the_model_is_told_why(arguments, problem):
    ran = []

    @tool(description="Search.")
    def search(query: str, limit: int = 1, mode: Literal["any", "all"] = "any") -> str:
        ran.append(query)
        return "ran"

    outcome = await ToolRegistry([search]).run("search", arguments)
    assert outcome.status == "invalid" and not ran
    assert outcome.content.startswith("Error: invalid arguments for search: ") and problem in outcome.content
    assert "Call search again with arguments that match its parameters" in outcome.content
    assert json.dumps(search.parameters, separators=(",", ":")) in outcome.content


async def test_arguments_that_are_not_json_and_unknown_tools_are_explained():
    registry = ToolRegistry([search])
    broken = await registry.run("search", '{"query": ')
    assert broken.status == "invalid" and "are not valid JSON" in broken.content
    unknown = await registry.run("delete_everything", "{}")
    assert unknown.status == "invalid"
    assert unknown.content == "Error: there is no tool named 'delete_everything' here. Available tools: search."


async def test_a_refusal_is_the_tools_message_and_a_crash_is_a_short_failure():
    @tool(description="Refuse.")
    def refuse() -> str:
        raise ToolError("not today")

    @tool(description="Crash.")
    def crash() -> str:
        raise KeyError("/secret/internal/path")

    registry = ToolRegistry([refuse, crash])
    refused = await registry.run("refuse", "")
    assert (refused.status, refused.content) == ("refused", "Error: not today")
    crashed = await registry.run("crash", "{}")
    assert (crashed.status, crashed.content) == ("failed", "Error: crash failed unexpectedly (KeyError).")


async def test_async_tools_are_awaited_and_context_is_passed():
    @tool(description="Echo.", context="ctx")
    async def echo(ctx: str, word: str) -> str:
        return f"{ctx}/{word}"

    assert (await ToolRegistry([echo]).run("echo", '{"word": "w"}', context="c")).content == "c/w"


def test_runs_offer_file_tools_only_with_a_project_directory():
    assert tools_for_run(True).names == ["read_file", "write_file", "list_files", "ask_human_for_input"]
    assert tools_for_run(False).names == ["ask_human_for_input"]
    assert BUILTIN_TOOLS["read_file"].parameters["required"] == ["filepath"]
    assert BUILTIN_TOOLS["list_files"].parameters["properties"]["directory_path"]["default"] == ""
    assert BUILTIN_TOOLS["ask_human_for_input"].parameters["required"] == ["question"]
