"""The VS Code extension's API client and command handlers (editors/vscode, on its stand-in `vscode` module)
against the real stack: a streamed ask, an agent run that writes a file in a granted workspace, a question
answered and resumed, a wrong key. Each test runs one scenario of editors/vscode/src/test/integration/run.ts
with node and checks what the editor showed and what reached the disk and the model."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from llmagg_devstack import ROOT

from ..agent_helpers import calls, model_requests, new_project, says, script_model, tool_call, tool_results
from ..helpers import ADMIN_KEY

EXTENSION = ROOT / "editors" / "vscode"
SCRIPT = EXTENSION / "out" / "test" / "integration" / "run.js"


@pytest.fixture(scope="module")
def built_extension() -> Path:
    """The extension compiled (`make vscode-build`: npm ci on first use, then tsc when a source changed)."""
    subprocess.run(["make", "--no-print-directory", "vscode-build"], cwd=ROOT, check=True, timeout=900)
    return SCRIPT


def run_scenario(
    script: Path, gateway: str, key: str, scenario: str, workspace: Path, answers: list[str | None] | None = None
) -> dict[str, Any]:
    """Runs a scenario of the extension's integration script; what the editor showed."""
    env = {
        **os.environ,
        "OPENHANDS_GATEWAY_URL": gateway,
        "OPENHANDS_API_KEY": key,
        "OPENHANDS_WORKSPACE": str(workspace),
    }
    if answers is not None:
        env["OPENHANDS_ANSWERS"] = json.dumps(answers)
    done = subprocess.run(
        [shutil.which("node") or "node", str(script), scenario], capture_output=True, text=True, timeout=120, env=env
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.fixture
def editor(built_extension, stack, client_key):
    """A scenario on the session's stack with its client key (granted the `workspaces` folder)."""

    def run(scenario: str, workspace: Path, answers: list[str | None] | None = None) -> dict[str, Any]:
        gateway = f"http://127.0.0.1:{stack.ports.gateway}"
        return run_scenario(built_extension, gateway, client_key, scenario, workspace, answers)

    return run


def test_ask_streams_the_answer_into_a_document_beside_the_editor(editor, simulator, workspaces):
    script_model(simulator)  # unscripted, the simulated model echoes what follows "echo:"
    shown = editor("ask", new_project(workspaces))
    assert shown["statusBar"] == "$(check) OpenHands"
    [document] = shown["documents"]
    assert document == (
        "## echo: Explain this code\n\n"
        "Explain this code\n\n## Selected code from calc.py\n```python\ndef add(a, b):\n    return a + b\n```\n\n"
        "## Active file calc.py\n```python\nimport os\n\ndef add(a, b):\n    return a + b\n\n```"
    )
    assert shown["appends"] > 1  # the answer arrived in pieces, each appended as it came
    [sent] = model_requests(simulator)
    assert sent["stream"] is True
    assert shown["notifications"] == []


def test_the_code_agent_writes_a_file_in_the_workspace_and_inserts_its_code(editor, simulator, workspaces):
    project = new_project(workspaces, {"main.py": "import os\n\nprint('main')\n"})
    script_model(
        simulator,
        calls(tool_call("write_file", {"filepath": "pkg/importer.py", "content": "import main\n"}, "w1")),
        says("```python\nimport importer\n```\nImports the new module."),
    )
    shown = editor("agent", project)
    assert (project / "pkg" / "importer.py").read_text() == "import main\n"
    assert shown["editor"] == "import os\nimport importer\nprint('main')\n"  # at the cursor: the empty line 2
    assert shown["opened"] == [str(project / "pkg" / "importer.py")]
    assert shown["documents"] == [
        "## Create importer.py\n\nImports the new module.\n\n**Files written:** `pkg/importer.py`\n\n"
        f"_agent-sim/sim-small, thread {shown['threadId']}_\n"
    ]
    [first, second] = model_requests(simulator)
    assert {"read_file", "write_file", "list_files"} <= {tool["function"]["name"] for tool in first["tools"]}
    assert tool_results(second) == [("w1", "write_file", "Created pkg/importer.py (12 bytes).")]
    assert shown["notifications"] == []


def test_the_agents_question_is_answered_in_an_input_box_and_the_run_resumed(editor, simulator, workspaces):
    project = new_project(workspaces, {"main.py": "print('main')\n"})
    script_model(
        simulator,
        calls(tool_call("ask_human_for_input", {"question": "Call it helpers.py?"}, "q1"), content="Naming it."),
        calls(tool_call("write_file", {"filepath": "helpers.py", "content": "def helper(): ...\n"}, "w1")),
        says("```python\nfrom helpers import helper\n```\nUses the helper."),
    )
    shown = editor("agent", project, answers=["Add a helpers module", "Yes, helpers.py"])
    assert shown["inputBoxes"] == [
        {
            "title": "Ask OpenHands Code Agent",
            "prompt": "What should the agent do? (the selected code goes with it as context)",
        },
        {"title": "OpenHands Code Agent asks", "prompt": "Call it helpers.py?"},
    ]
    requests = model_requests(simulator)
    assert len(requests) == 3
    assert tool_results(requests[1]) == [("q1", "ask_human_for_input", "Yes, helpers.py")]
    assert (project / "helpers.py").read_text() == "def helper(): ...\n"
    assert shown["editor"] == "print('main')\nfrom helpers import helper"
    assert shown["opened"] == [str(project / "helpers.py")]
    assert shown["notifications"] == []


def test_a_wrong_key_is_a_notice_that_offers_to_set_the_key(editor, workspaces):
    shown = editor("refused-ask", new_project(workspaces), answers=["sk-llmagg-nosuchkey-000000"])
    assert shown["documents"] == []
    assert shown["notifications"] == [
        {
            "severity": "error",
            "message": "The gateway refused OpenHands' client API key (wrong or revoked). "
            'Set one with "OpenHands: Set Client API Key" (`llmagg keys create --name me` makes one).',
            "items": ["Set API Key"],
        }
    ]


def test_a_gateway_without_accounts_is_a_notice_that_says_how_to_add_one(built_extension, empty_stack, tmp_path):
    gateway = f"http://127.0.0.1:{empty_stack.ports.gateway}"
    shown = run_scenario(built_extension, gateway, ADMIN_KEY, "refused-ask", tmp_path)
    assert shown["documents"] == []
    [notice] = shown["notifications"]
    assert (notice["severity"], notice["items"]) == ("error", ["Retry"])
    assert notice["message"].startswith("The gateway has no provider account to answer with. No provider account is")
    assert "llmagg accounts add" in notice["message"]
