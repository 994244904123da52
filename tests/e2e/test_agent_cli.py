"""`llmagg-agent "instruction" --project DIR` against the gateway: progress, a question in the terminal, the code."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ..agent_helpers import calls, files_under, new_project, says, script_model, tool_call
from ..helpers import ADMIN_KEY

COMMAND = str(Path(sys.executable).parent / "llmagg-agent")


@pytest.fixture(scope="module")
def run_cli(stack, client_key):
    """`llmagg-agent ARGS --url <the gateway>` with the session's client key in LLMAGG_API_KEY."""

    def run(*arguments: str, answers: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [COMMAND, *arguments, "--url", f"http://127.0.0.1:{stack.ports.gateway}"],
            input=answers,
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, "LLMAGG_API_KEY": client_key},
        )

    return run


def test_the_cli_shows_each_step_asks_the_question_and_prints_the_code(run_cli, simulator, workspaces):
    project = new_project(workspaces, {"utils.py": "def helper(): ...\n"})
    script_model(
        simulator,
        calls(tool_call("list_files", {}, "c1")),
        calls(tool_call("ask_human_for_input", {"question": "Call it importer.py?"}, "q1"), content="Naming it."),
        calls(tool_call("write_file", {"filepath": "importer.py", "content": "import utils\n"}, "c2")),
        says("```python\nimport utils\n```\nImports utils."),
    )
    done = run_cli("Create an importer", "--project", str(project), "--language", "python", answers="Yes.\n")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "import utils\n"
    assert (project / "importer.py").read_text() == "import utils\n"
    lines = done.stderr.splitlines()
    assert lines[0].startswith("thread thread_cli_") and lines[0].endswith(f", project {project}")
    assert lines[1:] == [
        "[step 1] model answered:",
        "  -> list_files()",
        "  <- list_files: 1 line: utils.py",
        "[step 2] model answered: Naming it.",
        "  -> ask_human_for_input(question=Call it importer.py?)",
        "",
        "The agent asks: Call it importer.py?",
        "Your answer:   <- ask_human_for_input: 1 line: Yes.",
        "[step 3] model answered:",
        "  -> write_file(filepath=importer.py, content=import utils\\n)",
        "  <- write_file: 1 line: Created importer.py (13 bytes).",
        "[step 4] model answered",
        "",
        "done in 4 steps (agent-sim/sim-small)",
        "",
        "Imports utils.",
    ]


def test_without_an_answer_the_cli_stops_and_the_thread_keeps_waiting(run_cli, simulator, workspaces):
    project = new_project(workspaces)
    script_model(simulator, calls(tool_call("ask_human_for_input", {"question": "Sure?"}, "q")))
    stopped = run_cli("Do it", "--project", str(project), "--thread", "cli-no-answer")
    assert stopped.returncode == 7
    assert stopped.stderr.endswith("llmagg-agent: no answer (stdin is closed)\n")
    script_model(simulator, says("Done."))
    resumed = run_cli("Go on anyway", "--thread", "cli-no-answer")
    assert resumed.returncode == 4  # a conflict: the thread waits for its answer, a new instruction is refused
    assert "is waiting for the answer to its question" in resumed.stderr


def test_the_cli_reports_refusals_with_their_exit_code(run_cli, stack, workspaces, tmp_path):
    outside = run_cli("Do it", "--project", str(tmp_path))
    assert outside.returncode == 5 and "(project_directory_not_allowed)" in outside.stderr
    assert files_under(tmp_path) == set()
    unreachable = subprocess.run(
        [COMMAND, "x", "--url", "http://127.0.0.1:9"], capture_output=True, text=True, timeout=60
    )
    assert unreachable.returncode == 6 and "cannot reach the gateway" in unreachable.stderr
    keyless = subprocess.run(
        [COMMAND, "x", "--url", f"http://127.0.0.1:{stack.ports.gateway}"],
        capture_output=True,
        text=True,
        timeout=60,
        env={k: v for k, v in os.environ.items() if k != "LLMAGG_API_KEY"},
    )
    assert keyless.returncode == 5 and "set LLMAGG_API_KEY to a client key" in keyless.stderr


def test_llmagg_agent_is_the_same_command_in_the_llmagg_cli(stack, simulator):
    script_model(simulator, says("```python\nprint('hi')\n```\nSays hi."))
    env = {k: v for k, v in os.environ.items() if k != "LLMAGG_API_KEY"}
    done = subprocess.run(
        [str(Path(sys.executable).parent / "llmagg"), "agent", "Say hi", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**env, "LLMAGG_URL": f"http://127.0.0.1:{stack.ports.gateway}", "LLMAGG_ADMIN_KEY": ADMIN_KEY},
    )
    assert done.returncode == 0, done.stderr
    response = json.loads(done.stdout)
    assert (response["agent_status"], response["generated_code"]) == ("completed", "print('hi')")
