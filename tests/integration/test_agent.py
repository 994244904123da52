"""The agent process over gRPC, calling a real router process that calls the provider simulator, whose model
answers are scripted: tool calls carried out on real project folders, checkpoints that outlive a restart."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from llmagg.agent.v1 import agent_pb2 as pb
from llmagg.agent.v1 import agent_pb2_grpc
from llmagg_devstack import Stack, running_postgres

from ..agent_helpers import (
    AGENT_PROVIDER,
    agent_env,
    calls,
    files_under,
    model_requests,
    new_project,
    openai_error_trailer,
    restart_agent,
    says,
    script_model,
    tool_call,
    tool_results,
)
from ..helpers import ROUTER_TEST_ENV, SIM_KEY

MAX_STEPS = 4


def running_agent(make_stack, run_dir: Path, router_config: Path, agent: dict[str, str]) -> Iterator[Stack]:
    """Credentials, router and agent (with `agent`'s settings), without the gateway."""
    with make_stack(run_dir).running(
        {**ROUTER_TEST_ENV, "LLMAGG_CONFIG": str(router_config), **agent}, gateway=False
    ) as stack:
        yield stack


@pytest.fixture(scope="module")
def sqlite_env(workspaces) -> dict[str, str]:
    return agent_env(workspaces, AGENT_MAX_STEPS=str(MAX_STEPS))


@pytest.fixture(scope="module")
def agent_stack(make_stack, router_config, tmp_path_factory, sqlite_env) -> Iterator[Stack]:
    """The agent keeps its threads in SQLite."""
    yield from running_agent(make_stack, tmp_path_factory.mktemp("agent-sqlite"), router_config, sqlite_env)


@pytest.fixture(scope="module")
def postgres_env(workspaces) -> Iterator[dict[str, str]]:
    with running_postgres() as url:
        yield agent_env(workspaces, AGENT_DATABASE_URL=url)


@pytest.fixture(scope="module")
def postgres_stack(make_stack, router_config, tmp_path_factory, postgres_env) -> Iterator[Stack]:
    """The agent keeps its threads in a real PostgreSQL."""
    yield from running_agent(make_stack, tmp_path_factory.mktemp("agent-postgres"), router_config, postgres_env)


def stub(stack: Stack) -> agent_pb2_grpc.AgentServiceStub:
    return agent_pb2_grpc.AgentServiceStub(stack.channel("agent"))


def test_read_then_write_then_done(agent_stack, simulator, workspaces):
    project = new_project(workspaces, {"src/utils.py": "def helper():\n    return 42\n"})
    script_model(
        simulator,
        calls(tool_call("read_file", {"filepath": "src/utils.py"}, "call_read")),
        calls(
            tool_call(
                "write_file", {"filepath": "src/importer.py", "content": "from utils import helper\n"}, "call_write"
            )
        ),
        says("Here it is:\n```python\nfrom utils import helper\n```\nIt imports helper."),
    )
    response = stub(agent_stack).InvokeCodeAgent(
        pb.InvokeCodeAgentRequest(
            instruction="Read src/utils.py, then create src/importer.py that uses it.",
            language="python",
            project_directory=str(project),
            model_quality="best_quality",
        ),
        timeout=60,
    )
    assert (response.agent_status, response.generated_code, response.explanation) == (
        "completed",
        "from utils import helper",
        "Here it is:\nIt imports helper.",
    )
    assert response.model_used == "agent-sim/sim-small" and response.thread_id.startswith("thread_")
    assert not response.HasField("error_details") and not response.HasField("human_input_request")
    assert (project / "src" / "importer.py").read_text() == "from utils import helper\n"
    assert files_under(project) == {"src", "src/utils.py", "src/importer.py"}
    first, second, third = model_requests(simulator)
    assert [t["function"]["name"] for t in first["tools"]] == [
        "read_file",
        "write_file",
        "list_files",
        "ask_human_for_input",
    ]
    assert first["model"] == "sim-small" and "model_quality" not in first  # the router resolved and removed it
    # agent-no-tools serves agent-model too and is faster, but its model takes no tools: never asked.
    assert simulator.requests("agent-no-tools") == []
    assert tool_results(second) == [("call_read", "read_file", "def helper():\n    return 42\n")]
    assert tool_results(third) == [("call_write", "write_file", "Created src/importer.py (25 bytes).")]
    assert [m["role"] for m in third["messages"]] == ["system", "user", "assistant", "tool", "assistant", "tool"]


def test_an_invalid_tool_parameter_is_corrected_on_the_next_turn(agent_stack, simulator, workspaces):
    project = new_project(workspaces)
    script_model(
        simulator,
        calls(tool_call("write_file", {"path": "a.txt", "content": "A"}, "wrong")),
        calls(tool_call("write_file", {"filepath": "a.txt", "content": "A"}, "right")),
        says("Wrote a.txt."),
    )
    response = stub(agent_stack).InvokeCodeAgent(
        pb.InvokeCodeAgentRequest(instruction="Write A to a.txt", project_directory=str(project)), timeout=60
    )
    assert response.agent_status == "completed" and (project / "a.txt").read_text() == "A"
    _, corrected, done = model_requests(simulator)
    [(call_id, name, error)] = tool_results(corrected)
    assert (call_id, name) == ("wrong", "write_file")
    assert error.startswith(
        "Error: invalid arguments for write_file: 'filepath' is a required property; "
        "Additional properties are not allowed ('path' was unexpected)."
    )
    assert tool_results(done) == [("right", "write_file", "Created a.txt (1 bytes).")]


def test_path_escapes_are_refused_and_nothing_is_written_outside(agent_stack, simulator, workspaces, tmp_path):
    project = new_project(workspaces)
    outside = tmp_path / "outside"
    outside.mkdir()
    (project / "escape").symlink_to(outside)
    script_model(
        simulator,
        calls(
            tool_call("write_file", {"filepath": "../planted.txt", "content": "x"}, "dotdot"),
            tool_call("write_file", {"filepath": str(outside / "planted.txt"), "content": "x"}, "absolute"),
            tool_call("write_file", {"filepath": "escape/planted.txt", "content": "x"}, "symlink"),
            tool_call("read_file", {"filepath": "escape"}, "read-link"),
        ),
        says("I may not write there."),
    )
    response = stub(agent_stack).InvokeCodeAgent(
        pb.InvokeCodeAgentRequest(instruction="Plant files", project_directory=str(project)), timeout=60
    )
    assert response.agent_status == "completed"
    results = {call_id: text for call_id, _, text in tool_results(model_requests(simulator)[1])}
    assert results == {
        "dotdot": "Error: '../planted.txt' contains '..'; paths must stay inside the project directory",
        "absolute": f"Error: '{outside / 'planted.txt'}' is an absolute path; give a path relative to the project "
        "directory",
        "symlink": "Error: 'escape/planted.txt' leads outside the project directory (through a symbolic link)",
        "read-link": "Error: 'escape' leads outside the project directory (through a symbolic link)",
    }
    assert files_under(outside) == set() and files_under(project) == {"escape"}
    assert files_under(workspaces).isdisjoint({"planted.txt"})


def test_the_step_limit_stops_a_model_that_never_finishes(agent_stack, simulator, workspaces):
    # A model that calls a tool at every turn, more often than the step limit allows.
    script_model(simulator, *(calls(tool_call("list_files", {}, f"loop-{i}")) for i in range(MAX_STEPS + 1)))
    response = stub(agent_stack).InvokeCodeAgent(
        pb.InvokeCodeAgentRequest(instruction="Loop", project_directory=str(new_project(workspaces))), timeout=60
    )
    assert response.agent_status == "error"
    assert response.error_details == (
        f"The agent stopped after {MAX_STEPS} model calls without a final answer (the step limit, AGENT_MAX_STEPS)."
    )
    assert len(model_requests(simulator)) == MAX_STEPS


def test_a_model_call_the_router_cannot_serve_ends_the_run_with_its_reason(agent_stack, simulator):
    script_model(simulator)
    response = stub(agent_stack).InvokeCodeAgent(
        pb.InvokeCodeAgentRequest(instruction="Hi", provider="nope"), timeout=60
    )
    assert response.agent_status == "error"
    assert (
        response.error_details.startswith("A model call failed: ") and "(provider_not_found)" in response.error_details
    )
    assert model_requests(simulator) == []


def test_a_thread_stored_after_a_provider_quoted_its_key_holds_no_key(agent_stack, simulator, workspaces):
    """The agent calls the router for every model call, so the router's redaction keeps keys out of threads."""
    project = new_project(workspaces)
    # With tools offered, an echoing model calls the first tool with the key as its arguments; then it says it.
    script_model(simulator, {"type": "echo_key"}, says(f"Done. Your key is {SIM_KEY}, or {SIM_KEY[:5]}"))
    response = stub(agent_stack).InvokeCodeAgent(
        pb.InvokeCodeAgentRequest(instruction="Hi", project_directory=str(project)), timeout=60
    )
    sent = [request["headers"]["authorization"] for request in simulator.requests(AGENT_PROVIDER)]
    assert sent == [f"Bearer {SIM_KEY}"] * 2  # the provider had the key both times, and quoted it
    assert (response.agent_status, response.explanation) == ("completed", "Done. Your key is [redacted], or sk-si")
    thread = stub(agent_stack).GetThread(pb.GetThreadRequest(thread_id=response.thread_id), timeout=10)
    assert SIM_KEY not in str(thread) and "[redacted]" in thread.messages[1].tool_calls[0].function.arguments
    stored = b"".join(path.read_bytes() for path in agent_stack.run_dir.rglob("threads.db*"))
    assert stored and SIM_KEY.encode() not in stored and b"[redacted]" in stored


def pause_restart_resume(stack: Stack, env: dict[str, str], simulator, workspaces) -> None:
    project = new_project(workspaces, {"config.py": "DEBUG = True\n"})
    thread_id = f"thread-{project.name}"
    script_model(
        simulator,
        calls(
            tool_call("ask_human_for_input", {"question": "config.py exists. Should I overwrite it?"}, "hitl_call_1"),
            content="I need to know if I should overwrite config.py.",
        ),
    )
    paused = stub(stack).InvokeCodeAgent(
        pb.InvokeCodeAgentRequest(instruction="Turn debug off", project_directory=str(project), thread_id=thread_id),
        timeout=60,
    )
    assert paused.agent_status == "requires_human_input" and paused.thread_id == thread_id
    assert (paused.human_input_request.tool_call_id, paused.human_input_request.question_for_human) == (
        "hitl_call_1",
        "config.py exists. Should I overwrite it?",
    )
    assert paused.explanation == "I need to know if I should overwrite config.py."

    restart_agent(stack, env)

    kept = stub(stack).GetThread(pb.GetThreadRequest(thread_id=thread_id), timeout=10)
    assert kept.agent_status == "requires_human_input" and [m.role for m in kept.messages] == ["user", "assistant"]
    script_model(
        simulator,
        calls(tool_call("write_file", {"filepath": "config.py", "content": "DEBUG = False\n"}, "call_w")),
        says("```python\nDEBUG = False\n```\nDebug is off."),
    )
    done = stub(stack).ResumeAgent(
        pb.ResumeAgentRequest(thread_id=thread_id, tool_call_id="hitl_call_1", human_response="Yes, overwrite it."),
        timeout=60,
    )
    assert (done.agent_status, done.generated_code) == ("completed", "DEBUG = False")
    assert (project / "config.py").read_text() == "DEBUG = False\n"
    first = model_requests(simulator)[0]
    assert tool_results(first) == [("hitl_call_1", "ask_human_for_input", "Yes, overwrite it.")]
    assert first["messages"][1]["content"] == "Turn debug off"


def test_a_paused_thread_survives_an_agent_restart_and_resumes_sqlite(agent_stack, sqlite_env, simulator, workspaces):
    pause_restart_resume(agent_stack, sqlite_env, simulator, workspaces)


def test_a_paused_thread_survives_an_agent_restart_and_resumes_postgresql(
    postgres_stack, postgres_env, simulator, workspaces
):
    pause_restart_resume(postgres_stack, postgres_env, simulator, workspaces)


def test_errors_are_proper_statuses_with_openai_details(agent_stack, simulator, workspaces, tmp_path):
    agent = stub(agent_stack)
    cases = [
        (
            lambda: agent.ResumeAgent(
                pb.ResumeAgentRequest(thread_id="no-such-thread", tool_call_id="c", human_response="y")
            ),
            grpc.StatusCode.NOT_FOUND,
            "thread_not_found",
        ),
        (
            lambda: agent.InvokeCodeAgent(pb.InvokeCodeAgentRequest(instruction="x", project_directory=str(tmp_path))),
            grpc.StatusCode.PERMISSION_DENIED,
            "project_directory_not_allowed",
        ),
        (
            lambda: agent.InvokeCodeAgent(pb.InvokeCodeAgentRequest(instruction="")),
            grpc.StatusCode.INVALID_ARGUMENT,
            "invalid_instruction",
        ),
        (
            lambda: agent.GetThread(pb.GetThreadRequest(thread_id="../x")),
            grpc.StatusCode.INVALID_ARGUMENT,
            "invalid_thread_id",
        ),
    ]
    for call, status, code in cases:
        with pytest.raises(grpc.RpcError) as failed:
            call()
        assert failed.value.code() == status
        assert openai_error_trailer(failed.value)["code"] == code
    script_model(simulator, says("Done."))
    done = agent.InvokeCodeAgent(pb.InvokeCodeAgentRequest(instruction="x", thread_id="finished-thread"), timeout=60)
    assert done.agent_status == "completed"
    with pytest.raises(grpc.RpcError) as not_waiting:
        agent.ResumeAgent(pb.ResumeAgentRequest(thread_id="finished-thread", tool_call_id="c", human_response="y"))
    assert not_waiting.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert dict(not_waiting.value.trailing_metadata())["x-http-status"] == "409"
    assert json.loads(dict(not_waiting.value.trailing_metadata())["x-openai-error"])["error"]["code"] == (
        "thread_not_waiting"
    )


def test_the_agent_serves_its_metrics_beside_the_grpc_ones(agent_stack, simulator):
    script_model(simulator, says("Counted."))
    assert stub(agent_stack).InvokeCodeAgent(pb.InvokeCodeAgentRequest(instruction="x"), timeout=60).agent_status == (
        "completed"
    )
    with urllib.request.urlopen(agent_stack.metrics_url("agent"), timeout=5) as response:
        text = response.read().decode()
    samples = {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line[:1] != "#"}
    assert samples['llmagg_agent_runs_total{status="completed"}'] >= 1
    assert samples['llmagg_agent_model_calls_total{outcome="ok"}'] >= 1
    method = "/llmagg.agent.v1.AgentService/InvokeCodeAgent"
    handled = f'llmagg_grpc_server_handled_total{{code="OK",method="{method}",service="agent"}}'
    assert samples[handled] >= 1


@pytest.mark.parametrize("limit", [-1, 0, 501])
def test_a_list_limit_outside_1_to_500_is_invalid_argument(agent_stack, limit):
    with pytest.raises(grpc.RpcError) as refused:
        stub(agent_stack).ListThreads(pb.ListThreadsRequest(limit=limit))
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert refused.value.details() == f"limit must be between 1 and 500, got {limit}"
    assert openai_error_trailer(refused.value)["code"] == "invalid_limit"


def test_the_stacks_run_directory_is_permission_denied_even_for_an_admin_key(agent_stack):
    admin = (("x-llmagg-client-id", "admin-env"), ("x-llmagg-client-scope", "admin"))
    for directory in (agent_stack.run_dir, agent_stack.run_dir / "agent"):
        with pytest.raises(grpc.RpcError) as refused:
            stub(agent_stack).InvokeCodeAgent(
                pb.InvokeCodeAgentRequest(instruction="x", project_directory=str(directory)), metadata=admin
            )
        assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert openai_error_trailer(refused.value)["code"] == "project_directory_protected"
        assert refused.value.details().startswith(f"project_directory {str(directory)!r} is inside ")


def test_an_oversized_instruction_is_refused_and_nothing_is_stored(agent_stack, simulator):
    script_model(simulator)
    instruction = "x" * 100_001
    with pytest.raises(grpc.RpcError) as refused:
        stub(agent_stack).InvokeCodeAgent(
            pb.InvokeCodeAgentRequest(instruction=instruction, thread_id="too-long"), timeout=60
        )
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert openai_error_trailer(refused.value)["code"] == "string_above_max_length"
    with pytest.raises(grpc.RpcError) as missing:
        stub(agent_stack).GetThread(pb.GetThreadRequest(thread_id="too-long"))
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND
    assert model_requests(simulator) == []
