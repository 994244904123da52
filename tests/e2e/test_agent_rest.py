"""The agent's REST API through Envoy, field for field as the product README and the VS Code extension use it."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from llmagg_devstack import AGENT_HINTS, DEMO_KEY_ENV, ROOT, SimulatorProcess, Stack, banner, demo_config, write_config

from ..agent_helpers import (
    RestClient,
    calls,
    files_under,
    model_requests,
    new_project,
    restart_agent,
    says,
    script_model,
    tool_call,
    tool_results,
)
from ..helpers import ADMIN_KEY, admin_call, post_raw

# CodeAgentResponse as the README shows it; thread_id is this suite's addition.
RESPONSE_FIELDS = {
    "generated_code",
    "explanation",
    "agent_status",
    "human_input_request",
    "request_params",
    "model_used",
    "error_details",
    "thread_id",
}
# The README's "Example Curl" bodies, byte for byte.
README_INVOKE = b"""{
    "instruction": "Write a javascript function to greet a user.",
    "language": "javascript",
    "model_quality": "best_quality"
  }"""
README_HITL_RESUME = b"""{
  "thread_id": "thread_abc123",
  "tool_call_id": "hitl_call_12345",
  "human_response": "Yes, please overwrite the file."
}"""
README_RESUME = b"""{
  "thread_id": "thread_abc123", // The ID of the conversation thread to resume
  "tool_call_id": "tool_call_xyz789", // The ID from the HumanInputRequest
  "human_response": "Yes, please proceed with deleting the old file." // User's answer
}"""
GREET = "function greet(name) {\n  return `Hello, ${name}!`;\n}"


@pytest.fixture(scope="module")
def rest(stack, client_key) -> RestClient:
    """The gateway with the session's client key, as the README's curls are sent (with a client key)."""
    return RestClient(f"http://127.0.0.1:{stack.ports.gateway}", client_key)


def without_comments(body: bytes) -> bytes:
    """The README's request examples annotate fields with // comments, which no JSON parser takes."""
    return b"\n".join(line.split(b" //")[0] for line in body.splitlines())


def test_the_readme_curl_example_of_the_coding_agent(rest, simulator):
    script_model(simulator, says(f"Here you go:\n```javascript\n{GREET}\n```\nIt greets by name."))
    status, headers, body = rest.post("/v1/agents/code/invoke", README_INVOKE)
    assert status == 200, body
    assert set(body) == {"generated_code", "explanation", "agent_status", "request_params", "model_used", "thread_id"}
    assert set(body) <= RESPONSE_FIELDS
    assert body["generated_code"] == GREET
    assert body["explanation"] == "Here you go:\nIt greets by name."
    assert (body["agent_status"], body["model_used"]) == ("completed", "agent-sim/sim-small")
    assert body["request_params"] == {
        "instruction": "Write a javascript function to greet a user.",
        "context": None,
        "language": "javascript",
        "project_directory": None,
        "thread_id": None,
        "model_quality": "best_quality",
        "provider": None,
    }
    assert body["thread_id"].startswith("thread_")
    assert headers["content-type"] == "application/json"
    [sent] = model_requests(simulator)
    assert sent["messages"][1]["content"] == "Write a javascript function to greet a user.\n\nLanguage: javascript"
    assert [t["function"]["name"] for t in sent["tools"]] == ["ask_human_for_input"]  # no project: no file tools


def test_the_readme_human_in_the_loop_flow(rest, simulator):
    script_model(
        simulator,
        calls(
            tool_call(
                "ask_human_for_input",
                {"question": "The file 'config.py' already exists. Should I overwrite it?"},
                "hitl_call_12345",
            ),
            content="I need to know if I should overwrite the existing file 'config.py'.",
        ),
    )
    status, _, paused = rest.post(
        "/v1/agents/code/invoke", {"instruction": "Write config.py", "thread_id": "thread_abc123"}
    )
    assert status == 200, paused
    assert paused == {
        "explanation": "I need to know if I should overwrite the existing file 'config.py'.",
        "agent_status": "requires_human_input",
        "human_input_request": {
            "tool_call_id": "hitl_call_12345",
            "question_for_human": "The file 'config.py' already exists. Should I overwrite it?",
        },
        "request_params": {
            "instruction": "Write config.py",
            "context": None,
            "language": None,
            "project_directory": None,
            "thread_id": "thread_abc123",
            "model_quality": None,
            "provider": None,
        },
        "model_used": "agent-sim/sim-small",
        "thread_id": "thread_abc123",
    }

    # The answer comes back as the tool's result; the agent asks again (the README's resume example), then ends.
    script_model(
        simulator,
        calls(tool_call("ask_human_for_input", {"question": "Delete the old file too?"}, "tool_call_xyz789")),
    )
    status, _, asked_again = rest.post("/v1/agents/resume", README_HITL_RESUME)
    assert status == 200, asked_again
    assert asked_again["human_input_request"]["tool_call_id"] == "tool_call_xyz789"
    assert tool_results(model_requests(simulator)[0]) == [
        ("hitl_call_12345", "ask_human_for_input", "Yes, please overwrite the file.")
    ]
    script_model(simulator, says("```python\nDEBUG = False\n```\nDone."))
    status, _, done = rest.post("/v1/agents/resume", without_comments(README_RESUME))
    assert status == 200, done
    assert (done["agent_status"], done["generated_code"], done["thread_id"]) == (
        "completed",
        "DEBUG = False",
        "thread_abc123",
    )
    assert "human_input_request" not in done
    assert tool_results(model_requests(simulator)[0]) == [
        ("tool_call_xyz789", "ask_human_for_input", "Yes, please proceed with deleting the old file.")
    ]

    status, thread = rest.call("GET", "/v1/agents/threads/thread_abc123")
    assert status == 200
    assert [m["role"] for m in thread["messages"]] == ["user", "assistant", "tool", "assistant", "tool", "assistant"]
    assert thread["messages"][2] == {
        "role": "tool",
        "content": "Yes, please overwrite the file.",
        "tool_calls": [],
        "tool_call_id": "hitl_call_12345",
        "name": "ask_human_for_input",
    }
    assert thread["agent_status"] == "completed" and thread["created_at"].endswith("Z")


def test_the_vscode_extensions_code_agent_request_with_a_workspace(rest, simulator, workspaces):
    project = new_project(workspaces, {"src/utils.py": "def helper(): ...\n"})
    script_model(
        simulator,
        calls(tool_call("list_files", {"directory_path": "src"}, "look")),
        calls(tool_call("write_file", {"filepath": "src/importer.py", "content": "import utils\n"}, "write")),
        says("```python\nimport utils\n```"),
    )
    body = {
        "instruction": "Read 'src/utils.py' and then create a new file 'src/importer.py' that uses functions from utils.",
        "context": None,
        "language": "python",
        "project_directory": str(project),
        "model_quality": "best_quality",
        "provider": None,
    }
    status, _, response = rest.post("/v1/agents/code/invoke", body)
    assert status == 200, response
    assert (response["agent_status"], response["generated_code"]) == ("completed", "import utils")
    assert files_under(project) == {"src", "src/utils.py", "src/importer.py"}
    assert tool_results(model_requests(simulator)[1]) == [("look", "list_files", "utils.py")]


def assert_openai_error(status: int, body: dict, expected_status: int, code: str) -> dict:
    assert status == expected_status, body
    assert set(body) == {"error"} and {"message", "type", "param", "code"} <= set(body["error"])
    assert body["error"]["code"] == code, body
    return body["error"]


def test_refusals_are_openai_shaped_with_their_http_status(rest, simulator):
    status, _, body = rest.post("/v1/agents/resume", {"thread_id": "nope", "tool_call_id": "c", "human_response": "y"})
    assert "nope" in assert_openai_error(status, body, 404, "thread_not_found")["message"]

    readme_project = {"instruction": "x", "project_directory": "/path/to/user/project"}
    status, _, body = rest.post("/v1/agents/code/invoke", readme_project)
    error = assert_openai_error(status, body, 403, "project_directory_not_allowed")
    assert error["type"] == "permission_error" and error["param"] == "project_directory"
    assert "AGENT_WORKSPACE_ROOTS" in error["message"]

    script_model(simulator, calls(tool_call("ask_human_for_input", {"question": "Which one?"}, "q-1")))
    rest.post("/v1/agents/code/invoke", {"instruction": "x", "thread_id": "rest-refusals"})
    status, _, body = rest.post(
        "/v1/agents/resume", {"thread_id": "rest-refusals", "tool_call_id": "q-0", "human_response": "y"}
    )
    assert_openai_error(status, body, 400, "tool_call_id_mismatch")
    status, _, body = rest.post("/v1/agents/code/invoke", {"instruction": "again", "thread_id": "rest-refusals"})
    assert_openai_error(status, body, 409, "thread_waiting_for_human")
    script_model(simulator, says("Fine."))
    rest.post("/v1/agents/resume", {"thread_id": "rest-refusals", "tool_call_id": "q-1", "human_response": "y"})
    status, _, body = rest.post(
        "/v1/agents/resume", {"thread_id": "rest-refusals", "tool_call_id": "q-1", "human_response": "y"}
    )
    assert_openai_error(status, body, 409, "thread_not_waiting")

    status, _, body = rest.post("/v1/agents/code/invoke", {"language": "python"})
    assert_openai_error(status, body, 400, "invalid_instruction")
    status, _, body = post_raw(rest.url("/v1/agents/code/invoke"), b'{"instruction": ', rest.auth)
    assert status == 400 and set(body) == {"error"}
    status, _, body = post_raw(rest.url("/v1/agents/code/invoke"), README_INVOKE)  # no client key
    assert status == 401 and set(body) == {"error"}


def test_threads_are_listed_read_and_deleted(rest, simulator):
    script_model(simulator, says("One."))
    rest.post("/v1/agents/code/invoke", {"instruction": "x", "thread_id": "rest-listed"})
    status, listed = rest.call("GET", "/v1/agents/threads?limit=1")
    assert status == 200 and [t["thread_id"] for t in listed["threads"]] == ["rest-listed"]
    assert listed["threads"][0]["message_count"] == 2 and listed["next_page_token"]
    status, deleted = rest.call("DELETE", "/v1/agents/threads/rest-listed")
    assert (status, deleted) == (200, {"thread_id": "rest-listed", "deleted": True})
    status, body = rest.call("GET", "/v1/agents/threads/rest-listed")
    assert_openai_error(status, body, 404, "thread_not_found")


# What the extension's "Ask OpenHands" sends (its provider is pinned here: "auto" would try every provider of
# the test routing, most of which fail on purpose).
SELECTION = "def add(a, b):\n    return a + b"
EDITOR = {
    "prompt": "echo: Explain this code",
    "selected_text": SELECTION,
    "active_file_content": f"import os\n\n{SELECTION}\n",
    "model": "auto",
    "provider": "agent-sim",
    "model_quality": "balanced",
    "stream": False,
}
PROMPT = (
    "Explain this code\n\n## Selected code\n```\ndef add(a, b):\n    return a + b\n```\n\n"
    "## Active file\n```\nimport os\n\ndef add(a, b):\n    return a + b\n\n```"
)


def test_contextual_chat_answers_in_the_openai_chat_shape(rest, simulator):
    script_model(simulator)
    status, headers, body = rest.post("/v1/contextual_chat/completions", EDITOR)
    assert status == 200, body
    completion = ChatCompletion.model_validate(body)
    assert completion.choices[0].message.content == PROMPT  # the simulated model echoes the prompt it got
    assert body["provider"] == "agent-sim" and headers["x-llmagg-provider"] == "agent-sim"
    [sent] = model_requests(simulator)
    assert sent["messages"] == [{"role": "user", "content": f"echo: {PROMPT}"}]
    assert "model_quality" not in sent and "provider" not in sent


def test_contextual_chat_streams_when_asked(rest, simulator):
    script_model(simulator)
    editor = {**EDITOR, "stream": True, "active_file_name": "calc.py", "language": "python", "max_tokens": 500}
    data = json.dumps(editor).encode()
    call = urllib.request.Request(
        rest.url("/v1/contextual_chat/completions"),
        data=data,
        headers={"Content-Type": "application/json", **rest.auth},
    )
    with urllib.request.urlopen(call, timeout=30) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        events = response.read().decode().split("\n\n")
    assert events[-2:] == ["data: [DONE]", ""]
    chunks = [ChatCompletionChunk.model_validate_json(event.removeprefix("data: ")) for event in events[:-2]]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.startswith("Explain this code\n\n## Selected code from calc.py\n```python\ndef add")
    assert "## Active file calc.py\n```python\nimport os" in text
    assert model_requests(simulator)[0]["max_tokens"] == 500


def test_contextual_chat_passes_the_routers_refusal_on(rest):
    status, _, body = rest.post("/v1/contextual_chat/completions", {**EDITOR, "provider": "no-such-provider"})
    assert_openai_error(status, body, 404, "provider_not_found")
    status, _, body = rest.post("/v1/contextual_chat/completions", {**EDITOR, "prompt": " "})
    assert_openai_error(status, body, 400, "invalid_prompt")


@pytest.mark.parametrize("limit", ["-1", "0", "501"])
def test_a_thread_list_limit_outside_1_to_500_is_400(rest, limit):
    status, body = rest.call("GET", f"/v1/agents/threads?limit={limit}")
    error = assert_openai_error(status, body, 400, "invalid_limit")
    assert (error["message"], error["param"]) == (f"limit must be between 1 and 500, got {limit}", "limit")
    status, body = rest.call("GET", "/v1/agents/threads?limit=500")
    assert status == 200, body


def test_a_10_mb_instruction_is_refused_whole_and_nothing_is_stored(rest, simulator):
    script_model(simulator)
    instruction = "x" * (10 * 1024 * 1024)
    status, _, body = rest.post("/v1/agents/code/invoke", {"instruction": instruction, "thread_id": "rest-huge"})
    error = assert_openai_error(status, body, 400, "string_above_max_length")
    assert error["message"] == (
        "Invalid 'instruction': string too long. Expected a string with maximum length 100000, but got a string "
        f"with length {len(instruction)} instead."
    )
    assert_openai_error(*rest.call("GET", "/v1/agents/threads/rest-huge"), 404, "thread_not_found")
    assert model_requests(simulator) == []


# --- the agent as `make run` / `make demo` set it up ---------------------------------------------------------
@dataclass(frozen=True)
class DemoStack:
    stack: Stack
    home: Path  # stands in for the operator's home: HOME of every service, and the run directory lies in it
    env: dict[str, str]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.stack.ports.gateway}"


@pytest.fixture(scope="module")
def demo(make_stack, tmp_path_factory) -> Iterator[DemoStack]:
    """The stack `make demo` starts (its simulated providers, no AGENT_WORKSPACE_ROOTS: the dev stack's
    defaults), with HOME a stand-in holding the run directory, as `make run` in a checkout under home does."""
    home = tmp_path_factory.mktemp("home")
    run_dir = home / ".run"
    (home / "granted").mkdir()
    with SimulatorProcess(providers={"sim-ratelimited": "429", "sim-broken": "500"}) as simulator:
        config = write_config(run_dir / "demo-config.yaml", demo_config(simulator.url))
        env = {
            "LLMAGG_CONFIG": str(config),
            DEMO_KEY_ENV: "sim-demo-key",
            "LLMAGG_ADMIN_KEY": ADMIN_KEY,
            "HOME": str(home),
        }
        with pytest.MonkeyPatch.context() as environment:
            environment.delenv("AGENT_WORKSPACE_ROOTS", raising=False)  # the dev stack's defaults, not the caller's
            with make_stack(run_dir).running(env) as stack:
                yield DemoStack(stack, home, env)


@pytest.fixture(scope="module")
def demo_client(demo) -> tuple[str, RestClient]:
    """A plain client key of the demo stack: (its id, the gateway with it)."""
    status, body = admin_call(demo.stack, "POST", "/v1/admin/keys", {"name": "demo client", "scope": "client"})
    assert status == 200, body
    return body["key"]["id"], RestClient(demo.url, body["secret"])


def test_a_client_key_cannot_make_the_operators_home_its_project(demo, demo_client):
    key_id, client = demo_client
    for directory in (demo.home, ROOT):
        status, _, body = client.post(
            "/v1/agents/code/invoke", {"instruction": "ls", "project_directory": str(directory)}
        )
        error = assert_openai_error(status, body, 403, "project_directory_not_allowed")
        assert error["message"] == (
            f"project_directory {str(directory)!r} is not granted to client key {key_id}, which has no workspace "
            f'roots. An admin grants directories per key in AGENT_WORKSPACE_ROOTS (e.g. {{"{key_id}": '
            f'["{directory}"]}}) and restarts the agent.'
        )


def test_the_run_directory_is_refused_even_to_the_admin_key(demo):
    admin = RestClient(demo.url, ADMIN_KEY)
    run_dir = demo.stack.run_dir
    for directory in (run_dir, run_dir / "openbao", run_dir / "agent"):
        status, _, body = admin.post(
            "/v1/agents/code/invoke", {"instruction": "ls", "project_directory": str(directory)}
        )
        error = assert_openai_error(status, body, 403, "project_directory_protected")
        assert error["message"] == (
            f"project_directory {str(directory)!r} is inside {run_dir}, a directory of the stack itself (its keys, "
            "secrets and data): the agent never works there, whatever the key."
        )


def test_the_demo_banners_agent_command_completes_with_the_simulated_answer(demo):
    [line] = [
        line
        for line in banner(demo.stack, "demo-model", "", AGENT_HINTS["demo"]).splitlines()
        if "llmagg agent" in line
    ]
    argv = shlex.split(line, comments=True)
    assert argv[:2] == ["llmagg", "agent"]
    environment = {**os.environ, "LLMAGG_URL": demo.url, "LLMAGG_ADMIN_KEY": ADMIN_KEY}
    environment.pop("LLMAGG_API_KEY", None)
    done = subprocess.run(
        [str(Path(sys.executable).with_name("llmagg")), *argv[1:]],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env=environment,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert re.fullmatch(rf"thread thread_cli_\w+, project {re.escape(str(ROOT))}", lines[0])
    assert lines[1:] == [
        "[step 1] model answered:",
        "  -> read_file(filepath=sim)",
        "  <- read_file: failed: 'sim' does not exist",
        "[step 2] model answered",
        "",
        "done in 2 steps (sim-fast/sim-large)",
        "",
        "Hello from sim-fast (sim-large).",
    ]


def test_a_root_granted_to_a_client_key_is_its_project_and_nothing_else(demo, demo_client):
    key_id, client = demo_client
    granted = demo.home / "granted"
    restart_agent(demo.stack, {**demo.env, "AGENT_WORKSPACE_ROOTS": json.dumps({key_id: [str(granted)]})})
    status, _, body = client.post(
        "/v1/agents/code/invoke",
        {"instruction": "Look around", "project_directory": str(granted), "provider": "sim-fast"},
    )
    assert status == 200, body
    assert (body["agent_status"], body["explanation"]) == ("completed", "Hello from sim-fast (sim-large).")
    status, _, body = client.post("/v1/agents/code/invoke", {"instruction": "ls", "project_directory": str(demo.home)})
    error = assert_openai_error(status, body, 403, "project_directory_not_allowed")
    assert f"which may use: {granted}." in error["message"]
