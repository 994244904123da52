"""The agent loop on a real SQLite store and project directory, with a scripted model."""

from __future__ import annotations

import asyncio
import json

import pytest
from prometheus_client import CollectorRegistry

from llmagg.common.errors import ErrorKind, ServiceError
from llmagg.common.sql import SqliteDatabase
from llmagg_agent.adapters.prometheus_metrics import PrometheusAgentMetrics
from llmagg_agent.adapters.sql_store import SqlThreadStore
from llmagg_agent.domain.agent import INTERRUPTED, AgentLimits, CodeAgent
from llmagg_agent.domain.requests import InvokeRequest, ResumeRequest
from llmagg_agent.domain.threads import AgentStatus
from llmagg_agent.domain.workspace import WorkspacePolicy

from .helpers import MODEL_USED, ScriptedModel, call, calls, roles, text

DONE = "Done.\n```python\nfrom utils import helper\n```\nIt imports the helper."


def invoke(project=None, instruction="Use utils in a new importer.", **fields) -> InvokeRequest:
    return InvokeRequest(
        instruction=instruction,
        project_directory=str(project) if project else None,
        language=fields.pop("language", "python"),
        **fields,
    )


async def test_read_then_write_then_done(agent, model, store, project):
    (project / "utils.py").write_text("def helper(): ...\n")
    model.add(
        calls(call("read_file", {"filepath": "utils.py"}, "c1")),
        calls(call("write_file", {"filepath": "importer.py", "content": "from utils import helper\n"}, "c2")),
        text(DONE),
    )
    thread = await agent.invoke(invoke(project, model_quality="best_quality", provider="sim"))
    assert thread.status == AgentStatus.COMPLETED
    assert (thread.generated_code, thread.explanation) == ("from utils import helper", "Done.\nIt imports the helper.")
    assert thread.model_used == MODEL_USED
    assert (project / "importer.py").read_text() == "from utils import helper\n"
    assert sorted(p.name for p in project.iterdir()) == ["importer.py", "utils.py"]
    # What the model saw: the file tools and the question tool, the file's content, then the write's result.
    assert len(model.requests) == 3
    assert model.offered() == ["read_file", "write_file", "list_files", "ask_human_for_input"]
    first = model.requests[0]
    assert (first.model, first.provider, first.model_quality) == ("agent-model", "sim", "best_quality")
    assert [m["role"] for m in first.messages] == ["system", "user"]
    assert first.messages[1]["content"] == "Use utils in a new importer.\n\nLanguage: python"
    assert model.tool_results(1) == [("read_file", "def helper(): ...\n")]
    assert model.tool_results(2) == [("write_file", "Created importer.py (25 bytes).")]
    assert roles(thread) == ["user", "assistant", "tool", "assistant", "tool", "assistant"]
    # A checkpoint after the instruction, every model answer and every tool result.
    assert store.saves == [
        ("running", 1),
        ("running", 2),
        ("running", 3),
        ("running", 4),
        ("running", 5),
        ("completed", 6),
    ]


async def test_an_invalid_tool_parameter_is_returned_to_the_model_which_corrects_it(agent, model, project):
    model.add(
        calls(call("write_file", {"filepath": "a.py"}, "bad")),  # no content
        calls(call("write_file", {"filepath": "a.py", "content": "A = 1\n"}, "good")),
        text("```python\nA = 1\n```"),
    )
    thread = await agent.invoke(invoke(project))
    assert thread.status == AgentStatus.COMPLETED
    [(name, error)] = model.tool_results(1)
    assert name == "write_file"
    assert error.startswith("Error: invalid arguments for write_file: 'content' is a required property.")
    assert model.tool_results(2) == [("write_file", "Created a.py (6 bytes).")]
    assert (project / "a.py").read_text() == "A = 1\n"
    assert thread.generated_code == "A = 1"


async def test_without_a_project_only_the_question_tool_is_offered_and_file_calls_are_refused(agent, model):
    model.add(calls(call("read_file", {"filepath": "/etc/passwd"})), text("Cannot read files."))
    thread = await agent.invoke(invoke())
    assert model.offered() == ["ask_human_for_input"]
    assert model.tool_results(1) == [
        ("read_file", "Error: there is no tool named 'read_file' here. Available tools: ask_human_for_input.")
    ]
    assert thread.status == AgentStatus.COMPLETED and thread.explanation == "Cannot read files."


async def test_path_escapes_are_refused_to_the_model_and_nothing_is_written_outside(agent, model, project, tmp_path):
    outside = tmp_path / "outside"
    (project / "link").symlink_to(outside)
    model.add(
        calls(
            call("write_file", {"filepath": "../outside/x.txt", "content": "pwned"}, "dotdot"),
            call("write_file", {"filepath": str(outside / "x.txt"), "content": "pwned"}, "absolute"),
            call("write_file", {"filepath": "link/x.txt", "content": "pwned"}, "symlink"),
            call("read_file", {"filepath": "link/../../outside"}, "read"),
        ),
        text("I could not."),
    )
    thread = await agent.invoke(invoke(project))
    results = {m["tool_call_id"]: m["content"] for m in thread.messages if m["role"] == "tool"}
    assert "contains '..'" in results["dotdot"]
    assert "is an absolute path" in results["absolute"]
    assert "leads outside the project directory" in results["symlink"]
    assert "contains '..'" in results["read"]
    assert list(outside.iterdir()) == []
    assert sorted(p.name for p in project.iterdir()) == ["link"]


async def test_the_human_is_asked_the_run_pauses_and_a_resume_continues_it(agent, model, project):
    (project / "config.py").write_text("old = True\n")
    model.add(
        calls(
            call("list_files", {}, "look"),
            call("ask_human_for_input", {"question": "config.py exists. Overwrite it?"}, "hitl_1"),
            content="I need to know if I should overwrite config.py.",
        ),
    )
    paused = await agent.invoke(invoke(project, thread_id="thread_abc123"))
    assert paused.status == AgentStatus.REQUIRES_HUMAN_INPUT
    assert (paused.human_input.tool_call_id, paused.human_input.question) == (
        "hitl_1",
        "config.py exists. Overwrite it?",
    )
    assert paused.explanation == "I need to know if I should overwrite config.py."
    assert paused.generated_code is None and paused.thread_id == "thread_abc123"
    assert roles(paused) == ["user", "assistant", "tool"]  # list_files ran; the question waits

    model.add(
        calls(call("write_file", {"filepath": "config.py", "content": "old = False\n"}, "w")),
        text("```python\nold = False\n```\nOverwritten."),
    )
    done = await agent.resume(ResumeRequest("thread_abc123", "hitl_1", "Yes, please overwrite the file."))
    assert done.status == AgentStatus.COMPLETED and done.human_input is None
    assert (project / "config.py").read_text() == "old = False\n"
    answer = done.messages[3]
    assert answer == {
        "role": "tool",
        "tool_call_id": "hitl_1",
        "name": "ask_human_for_input",
        "content": "Yes, please overwrite the file.",
    }
    assert model.tool_results(1) == [
        ("list_files", "config.py"),
        ("ask_human_for_input", "Yes, please overwrite the file."),
    ]
    assert done.request_params["project_directory"] == str(project)  # the resume ran with the invoke's parameters


async def test_resume_refusals(agent, model):
    with pytest.raises(ServiceError) as unknown:
        await agent.resume(ResumeRequest("thread_nope", "c", "yes"))
    assert (unknown.value.kind, unknown.value.code) == (ErrorKind.NOT_FOUND, "thread_not_found")

    model.add(text("Hello."))
    done = await agent.invoke(invoke(thread_id="t1"))
    with pytest.raises(ServiceError) as not_waiting:
        await agent.resume(ResumeRequest("t1", "c", "yes"))
    assert (not_waiting.value.code, not_waiting.value.http_status) == ("thread_not_waiting", 409)
    assert "its status is 'completed'" in not_waiting.value.message
    assert done.status == AgentStatus.COMPLETED

    model.add(calls(call("ask_human_for_input", {"question": "Which?"}, "q1")))
    await agent.invoke(invoke(thread_id="t1", instruction="Next."))
    with pytest.raises(ServiceError) as wrong_call:
        await agent.resume(ResumeRequest("t1", "q0", "yes"))
    assert (wrong_call.value.kind, wrong_call.value.code) == (ErrorKind.INVALID_ARGUMENT, "tool_call_id_mismatch")
    assert "waits for the answer to tool_call_id 'q1', not 'q0'" in wrong_call.value.message
    with pytest.raises(ServiceError) as waiting:
        await agent.invoke(invoke(thread_id="t1", instruction="Something else"))
    assert (waiting.value.code, waiting.value.http_status) == ("thread_waiting_for_human", 409)
    still = await agent.thread("t1")
    assert still.status == AgentStatus.REQUIRES_HUMAN_INPUT and len(still.messages) == 4  # nothing half-written


async def test_a_paused_thread_survives_a_restart_and_is_resumed_by_a_new_agent(tmp_path, policy, project):
    path = tmp_path / "restart" / "threads.db"
    first_store = SqlThreadStore(SqliteDatabase(path))
    await first_store.setup()
    model = ScriptedModel([calls(call("ask_human_for_input", {"question": "Name?"}, "q"))])
    first = CodeAgent(first_store, model, policy, AgentLimits())
    await first.invoke(invoke(project, thread_id="keep"))
    await first_store.close()

    second_store = SqlThreadStore(SqliteDatabase(path))
    await second_store.setup()
    model2 = ScriptedModel([calls(call("write_file", {"filepath": "name.txt", "content": "Ada"})), text("Saved.")])
    second = CodeAgent(second_store, model2, policy, AgentLimits())
    done = await second.resume(ResumeRequest("keep", "q", "Ada"))
    assert done.status == AgentStatus.COMPLETED and (project / "name.txt").read_text() == "Ada"
    assert [m["role"] for m in model2.requests[0].messages] == ["system", "user", "assistant", "tool"]
    await second_store.close()


async def test_the_step_limit_stops_a_runaway_loop(make_agent, model, project):
    agent = make_agent(max_steps=3)
    model.add(*[calls(call("list_files", {}, f"c{i}")) for i in range(4)])
    thread = await agent.invoke(invoke(project))
    assert thread.status == AgentStatus.ERROR
    assert thread.error_details == (
        "The agent stopped after 3 model calls without a final answer (the step limit, AGENT_MAX_STEPS)."
    )
    assert len(model.requests) == 3 and len(model.script) == 1
    assert roles(thread) == ["user"] + ["assistant", "tool"] * 3


async def test_the_deadline_stops_a_run_between_steps(store, model, policy, project):
    now = [0.0]
    agent = CodeAgent(store, model, policy, AgentLimits(run_deadline_s=25), monotonic=lambda: now[0])
    model.on_call = lambda request: now.__setitem__(0, now[0] + 10)
    model.add(*[calls(call("list_files", {}, f"c{i}")) for i in range(3)])
    thread = await agent.invoke(invoke(project))
    assert len(model.requests) == 3
    assert (thread.status, thread.error_details) == (
        AgentStatus.ERROR,
        "The agent ran out of time after 3 model calls (its deadline).",
    )


async def test_a_model_call_that_outlives_the_deadline_is_cut(make_agent, model):
    agent = make_agent(run_deadline_s=0.2)
    model.gate = asyncio.Event()  # never opened: the model hangs
    thread = await agent.invoke(invoke())
    assert (thread.status, thread.error_details) == (
        AgentStatus.ERROR,
        "The agent ran out of time after 0 model calls (its deadline).",
    )


async def test_a_failed_model_call_ends_the_run_with_its_reason_and_the_thread_can_go_on(agent, model):
    model.add(ServiceError(ErrorKind.UNAVAILABLE, "Every candidate failed.", code="all_candidates_failed"))
    failed = await agent.invoke(invoke(thread_id="t"))
    assert (failed.status, failed.error_details) == (
        AgentStatus.ERROR,
        "A model call failed: Every candidate failed. (all_candidates_failed)",
    )
    model.add(text("Second try."))
    again = await agent.invoke(invoke(thread_id="t", instruction="Try again."))
    assert again.status == AgentStatus.COMPLETED and again.error_details is None
    assert roles(again) == ["user", "user", "assistant"]


async def test_concurrent_runs_on_one_thread_are_serialised_not_interleaved(agent, model, project):
    model.gate = asyncio.Event()
    model.add(calls(call("list_files", {}, "a1")), text("A done."), text("B done."))
    first = asyncio.create_task(agent.invoke(invoke(project, thread_id="shared", instruction="A")))
    await model.entered.wait()  # A is inside its first model call
    second = asyncio.create_task(agent.invoke(invoke(project, thread_id="shared", instruction="B")))
    await asyncio.sleep(0)  # let B start and queue for the thread
    assert len(model.requests) == 1
    model.gate.set()
    a, b = await asyncio.gather(first, second)
    assert a.explanation == "A done." and b.explanation == "B done."
    contents = [m.get("content") for m in b.messages]
    assert roles(b) == ["user", "assistant", "tool", "assistant", "user", "assistant"]
    assert contents[0].startswith("A") and contents[4].startswith("B")


async def test_a_thread_held_elsewhere_makes_the_caller_wait_then_gives_up_with_409(make_agent, store):
    agent = make_agent(run_deadline_s=0.3)
    assert await store.claim("held", "another-replica/run", until=1e12, now=0)
    with pytest.raises(ServiceError) as busy:
        await agent.invoke(invoke(thread_id="held"))
    assert (busy.value.code, busy.value.http_status) == ("thread_busy", 409)
    with pytest.raises(ServiceError) as not_deleted:
        await agent.delete("held")
    assert not_deleted.value.code == "thread_busy"


async def test_a_cancelled_run_is_saved_as_an_error_and_the_next_run_answers_the_calls_it_left(agent, model, project):
    model.gate = asyncio.Event()
    model.add(calls(call("list_files", {}, "x1"), call("list_files", {}, "x2")))
    run = asyncio.create_task(agent.invoke(invoke(project, thread_id="cut")))
    await model.entered.wait()
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run
    saved = await agent.thread("cut")
    assert saved.status == AgentStatus.ERROR and "cancelled" in saved.error_details
    # A run that died between an answer and its tool results (a crash) left calls unanswered: simulated here.
    saved.messages.append(calls(call("list_files", {}, "x1"), call("list_files", {}, "x2")))
    await agent.store.save(saved)
    model.gate = None
    model.script = [text("Fine.")]
    done = await agent.invoke(invoke(project, thread_id="cut", instruction="Go on."))
    assert done.status == AgentStatus.COMPLETED
    assert [(m["tool_call_id"], m["content"]) for m in done.messages[2:4]] == [("x1", INTERRUPTED), ("x2", INTERRUPTED)]


async def test_threads_of_one_client_are_invisible_to_another(agent, model):
    model.add(text("Mine."), text("Again."))
    await agent.invoke(invoke(thread_id="private"), client_id="client-a")
    for attempt in (
        agent.thread("private", "client-b"),
        agent.resume(ResumeRequest("private", "c", "x"), "client-b"),
        agent.invoke(invoke(thread_id="private"), "client-b"),
        agent.delete("private", "client-b"),
    ):
        with pytest.raises(ServiceError) as hidden:
            await attempt
        assert hidden.value.code == "thread_not_found"
    assert (await agent.thread("private", "client-a")).explanation == "Mine."
    assert (await agent.thread("private")).client_id == "client-a"  # an anonymous caller (no client auth) sees it
    summaries, _ = await agent.threads(client_id="client-b")
    assert summaries == []


async def test_threads_are_listed_newest_first_in_pages_and_deleted(agent, model):
    model.add(*[text(f"answer {i}") for i in range(3)])
    for name in ("t-a", "t-b", "t-c"):
        await agent.invoke(invoke(thread_id=name))
    page, token = await agent.threads(limit=2)
    assert [s.thread_id for s in page] == ["t-c", "t-b"] and token
    rest, last = await agent.threads(limit=2, page_token=token)
    assert [s.thread_id for s in rest] == ["t-a"] and last == ""
    assert rest[0].message_count == 2 and rest[0].status == AgentStatus.COMPLETED
    assert await agent.delete("t-b") is True
    with pytest.raises(ServiceError) as gone:
        await agent.thread("t-b")
    assert gone.value.kind == ErrorKind.NOT_FOUND
    with pytest.raises(ServiceError) as bad_token:
        await agent.threads(page_token="not-a-token")
    assert bad_token.value.code == "invalid_page_token"


@pytest.mark.parametrize(
    ("request_fields", "code"),
    [
        ({"instruction": "  "}, "invalid_instruction"),
        ({"thread_id": "bad id with spaces"}, "invalid_thread_id"),
        ({"model_quality": "cheapest"}, "invalid_model_quality"),
        ({"project_directory": "/nowhere/allowed"}, "project_directory_not_allowed"),
    ],
)
async def test_bad_requests_are_refused_before_anything_is_stored(agent, model, store, request_fields, code):
    fields = {"instruction": "Do it.", **request_fields}
    with pytest.raises(ServiceError) as refused:
        await agent.invoke(InvokeRequest(**fields))
    assert refused.value.code == code
    assert store.saves == [] and model.requests == []


async def test_extra_questions_in_one_answer_are_refused_and_a_bad_question_is_corrected(agent, model):
    model.add(
        calls(call("ask_human_for_input", {"q": "?"}, "bad")),
        calls(
            call("ask_human_for_input", {"question": "First?"}, "one"),
            call("ask_human_for_input", {"question": "Second?"}, "two"),
        ),
    )
    paused = await agent.invoke(invoke())
    assert "'question' is a required property" in model.tool_results(1)[0][1]
    assert paused.human_input.tool_call_id == "one"
    assert paused.messages[-1] == {
        "role": "tool",
        "tool_call_id": "two",
        "name": "ask_human_for_input",
        "content": "Error: only one question can wait for the human at a time; ask this one again after the answer.",
    }


async def test_tool_calls_without_ids_get_one(agent, model):
    model.add({"role": "assistant", "content": None, "tool_calls": [{"function": {"name": "list_files"}}]}, text("ok"))
    thread = await agent.invoke(invoke())
    made = thread.messages[1]["tool_calls"][0]
    assert made["id"].startswith("call_") and made["function"] == {"name": "list_files", "arguments": ""}
    assert thread.messages[2]["tool_call_id"] == made["id"]
    assert json.loads(json.dumps(thread.messages))  # stored as plain JSON


async def test_runs_model_calls_and_tool_calls_are_counted(store, model, policy, project):
    registry = CollectorRegistry()
    agent = CodeAgent(store, model, policy, AgentLimits(max_steps=2), metrics=PrometheusAgentMetrics(registry))
    model.add(
        calls(call("list_files", {}, "a"), call("rm_rf", {}, "b"), call("read_file", {"filepath": "x"}, "c")),
        text("Done."),
        calls(call("ask_human_for_input", {"question": "?"}, "q")),
        ServiceError(ErrorKind.UNAVAILABLE, "down", code="all_candidates_failed"),
    )
    await agent.invoke(invoke(project, thread_id="m"))
    await agent.invoke(invoke(project, thread_id="m2"))
    model.add(ServiceError(ErrorKind.UNAVAILABLE, "down", code="all_candidates_failed"))
    await agent.resume(ResumeRequest("m2", "q", "yes"))

    def value(name: str, **labels: str) -> float | None:
        return registry.get_sample_value(name, labels)

    assert value("llmagg_agent_runs_total", status="completed") == 1
    assert value("llmagg_agent_runs_total", status="requires_human_input") == 1
    assert value("llmagg_agent_runs_total", status="error") == 1
    assert value("llmagg_agent_model_calls_total", outcome="ok") == 3
    assert value("llmagg_agent_model_calls_total", outcome="failed") == 1
    assert value("llmagg_agent_tool_calls_total", tool="list_files", outcome="ok") == 1
    assert value("llmagg_agent_tool_calls_total", tool="other", outcome="invalid") == 1  # a name the model made up
    assert value("llmagg_agent_tool_calls_total", tool="read_file", outcome="refused") == 1
    assert value("llmagg_agent_tool_calls_total", tool="ask_human_for_input", outcome="asked") == 1
    assert value("llmagg_agent_run_steps_count") == 3


@pytest.mark.parametrize(
    ("request_fields", "param", "limit"),
    [
        ({"instruction": "x" * 101}, "instruction", 100),
        ({"context": "y" * 201}, "context", 200),
        ({"language": "z" * 257}, "language", 256),
        ({"provider": "p" * 257}, "provider", 256),
        ({"project_directory": "/" + "d" * 4096}, "project_directory", 4096),
    ],
)
async def test_oversized_fields_are_refused_whole_before_anything_is_stored(
    make_agent, model, store, request_fields, param, limit
):
    agent = make_agent(max_instruction_chars=100, max_context_chars=200)
    fields = {"instruction": "Do it.", **request_fields}
    with pytest.raises(ServiceError) as refused:
        await agent.invoke(InvokeRequest(**fields))
    error = refused.value
    assert (error.kind, error.code, error.param) == (ErrorKind.INVALID_ARGUMENT, "string_above_max_length", param)
    assert error.message == (
        f"Invalid '{param}': string too long. Expected a string with maximum length {limit}, but got a string with "
        f"length {len(fields[param])} instead."
    )
    assert store.saves == [] and model.requests == []


async def test_an_instruction_at_the_limit_is_taken_and_echoed_whole(make_agent, model):
    agent = make_agent(max_instruction_chars=100)
    model.add(text("Done."))
    done = await agent.invoke(invoke(instruction="x" * 100))
    assert done.status == AgentStatus.COMPLETED and done.request_params["instruction"] == "x" * 100


async def test_an_oversized_human_response_is_refused_and_the_thread_keeps_waiting(make_agent, model):
    agent = make_agent(max_instruction_chars=100)
    model.add(calls(call("ask_human_for_input", {"question": "Which?"}, "q1")))
    await agent.invoke(invoke(thread_id="t-big"))
    with pytest.raises(ServiceError) as refused:
        await agent.resume(ResumeRequest("t-big", "q1", "a" * 101))
    assert (refused.value.code, refused.value.param) == ("string_above_max_length", "human_response")
    waiting = await agent.thread("t-big")
    assert waiting.status == AgentStatus.REQUIRES_HUMAN_INPUT and len(waiting.messages) == 2


@pytest.mark.parametrize("limit", [0, -1, 501])
async def test_a_list_limit_outside_1_to_500_is_400(agent, limit):
    with pytest.raises(ServiceError) as refused:
        await agent.threads(limit=limit)
    error = refused.value
    assert (error.kind, error.code, error.param) == (ErrorKind.INVALID_ARGUMENT, "invalid_limit", "limit")
    assert error.message == f"limit must be between 1 and 500, got {limit}"


async def test_without_a_limit_a_page_holds_50(agent, model):
    model.add(*[text(f"answer {i}") for i in range(51)])
    for i in range(51):
        await agent.invoke(invoke(thread_id=f"many-{i}"))
    page, token = await agent.threads()
    assert len(page) == 50 and token
    assert [s.thread_id for s in (await agent.threads(limit=500))[0]][-1] == "many-0"


async def test_project_directories_follow_the_callers_grants(store, model, limits, tmp_path):
    mine, admins = tmp_path / "mine", tmp_path / "admins"
    mine.mkdir()
    admins.mkdir()
    policy = WorkspacePolicy({"k-mine": [mine], "admin": [admins]}, limits)
    agent = CodeAgent(store, model, policy, AgentLimits())
    model.add(text("Mine."), text("Admin's."))
    assert (await agent.invoke(invoke(mine), "k-mine")).status == AgentStatus.COMPLETED
    assert (await agent.invoke(invoke(admins), "k-admin", admin=True)).status == AgentStatus.COMPLETED
    for project, client_id, admin in ((admins, "k-mine", False), (mine, "k-admin", True), (mine, "k-other", False)):
        with pytest.raises(ServiceError) as refused:
            await agent.invoke(invoke(project), client_id, admin=admin)
        assert refused.value.code == "project_directory_not_allowed"
