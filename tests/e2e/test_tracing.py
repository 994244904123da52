"""Every hop exports OTLP spans: one trace across the gateway, the router and each fallback attempt."""

from __future__ import annotations

import json
import urllib.request

import openai
import pytest

from llmagg_devstack.stack import Ports, Stack

from ..agent_helpers import agent_env, calls, new_project, says, script_model, tool_call
from ..helpers import ROUTER_TEST_ENV, SIM_KEY, arrivals, post_raw, scenario, span_receiver, tracing_env, wait_for

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_SPAN_ID = "00f067aa0ba902b7"


@pytest.fixture(scope="module")
def receiver():
    yield from span_receiver()


@pytest.fixture(scope="module")
def traced_stack(receiver, router_config, tmp_path_factory, workspaces):
    stack = Stack(tmp_path_factory.mktemp("traced"), Ports.free())
    env = {
        **ROUTER_TEST_ENV,
        **agent_env(workspaces),
        "LLMAGG_CONFIG": str(router_config),
        **tracing_env(receiver),
    }
    try:
        stack.start_services(env)
        stack.start_gateway()
        yield stack
    finally:
        stack.stop()


def spans_of_trace(receiver, trace_id: str, at_least: int):
    def enough():
        spans = [s for s in receiver.spans if s.trace_id.hex() == trace_id]
        return spans if len(spans) >= at_least else None

    return wait_for(enough, f"{at_least} spans of trace {trace_id}")


def traced_chat(stack, trace_id: str, model: str = "chat-model", api_key: str = "x"):
    client = openai.OpenAI(base_url=stack.base_url, api_key=api_key, max_retries=0)
    return client.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": "hi"}],
        extra_headers={"traceparent": f"00-{trace_id}-{PARENT_SPAN_ID}-01"},
    )


def attributes(span) -> dict:
    return {a.key: getattr(a.value, a.value.WhichOneof("value")) for a in span.attributes}


def test_a_fallback_is_one_trace_continuing_the_callers_context(traced_stack, receiver, simulator):
    providers = scenario(simulator, "fallback-429")
    assert traced_chat(traced_stack, TRACE_ID, model="fallback-429").provider == "rl-backup"
    assert arrivals(simulator, providers) == ["rl-first", "rl-backup"]
    spans = spans_of_trace(receiver, TRACE_ID, at_least=3)
    [server] = [s for s in spans if s.name == "llmagg.router.v1.RouterService/CreateChatCompletion"]
    assert server.parent_span_id.hex() == PARENT_SPAN_ID
    attempts = sorted((s for s in spans if s.name == "router.attempt"), key=lambda s: attributes(s)["llmagg.attempt"])
    assert [attributes(a)["llmagg.provider"] for a in attempts] == ["rl-first", "rl-backup"]
    assert attributes(attempts[0])["llmagg.outcome"] == "failed"
    assert attributes(attempts[0])["llmagg.reason"] == "rate_limited"
    assert attributes(attempts[1])["llmagg.outcome"] == "ok"
    assert attributes(attempts[1])["llmagg.account"] == "rl-backup-acct"
    assert all(a.parent_span_id == server.span_id for a in attempts)


def test_spans_never_carry_key_material(traced_stack, receiver):
    trace_id = "5bf92f3577b34da6a3ce929d0e0e4737"
    traced_chat(traced_stack, trace_id, api_key="sk-client-secret-abcdef")
    spans_of_trace(receiver, trace_id, at_least=2)  # the server span and its attempt have been exported
    dumped = b"".join(s.SerializeToString() for s in receiver.spans)
    assert SIM_KEY.encode() not in dumped and b"sk-client-secret" not in dumped


def health_checks_passed(stack) -> int:
    with urllib.request.urlopen(f"http://127.0.0.1:{stack.ports.admin}/stats?filter=router.health_check.success") as r:
        return int(r.read().decode().split(":")[-1])


def test_health_checks_are_not_traced(traced_stack, receiver):
    before = health_checks_passed(traced_stack)
    wait_for(lambda: health_checks_passed(traced_stack) >= before + 2, "two more health checks")
    # Spans are exported in the order they end: once a later request's spans are in, earlier ones are too.
    trace_id = "6bf92f3577b34da6a3ce929d0e0e4738"
    traced_chat(traced_stack, trace_id)
    spans_of_trace(receiver, trace_id, at_least=2)
    assert not [s for s in receiver.spans if "Health" in s.name]


def test_an_agent_run_is_one_trace_from_the_gateway_to_every_router_attempt(
    traced_stack, receiver, simulator, workspaces
):
    trace_id = "7bf92f3577b34da6a3ce929d0e0e4739"
    project = new_project(workspaces, {"notes.txt": "remember"})
    script_model(
        simulator,
        calls(tool_call("read_file", {"filepath": "notes.txt"}, "call_read")),
        says("```python\nprint('remember')\n```"),
    )
    body = {"instruction": "Print the notes", "project_directory": str(project)}
    status, _, answer = post_raw(
        f"{traced_stack.base_url}/agents/code/invoke",
        json.dumps(body).encode(),
        {"traceparent": f"00-{trace_id}-{PARENT_SPAN_ID}-01", "x-llmagg-client-id": "client-7"},
    )
    assert status == 200 and answer["agent_status"] == "completed"
    spans = spans_of_trace(receiver, trace_id, at_least=8)
    [server] = [s for s in spans if s.name == "llmagg.agent.v1.AgentService/InvokeCodeAgent"]
    [run] = [s for s in spans if s.name == "agent.run"]
    model_calls = sorted((s for s in spans if s.name == "agent.model_call"), key=lambda s: attributes(s)["llmagg.step"])
    [tool] = [s for s in spans if s.name == "agent.tool_call"]
    routers = [s for s in spans if s.name == "llmagg.router.v1.RouterService/CreateChatCompletion"]
    attempts = [s for s in spans if s.name == "router.attempt"]
    assert server.parent_span_id.hex() == PARENT_SPAN_ID
    assert run.parent_span_id == server.span_id
    assert attributes(run)["llmagg.agent_status"] == "completed" and attributes(run)["llmagg.client_id"] == "client-7"
    assert [attributes(c)["llmagg.step"] for c in model_calls] == [1, 2]
    assert all(c.parent_span_id == run.span_id for c in model_calls)
    assert attributes(model_calls[0])["llmagg.model_used"] == "agent-sim/sim-small"
    assert tool.parent_span_id == run.span_id
    assert (attributes(tool)["llmagg.tool"], attributes(tool)["llmagg.outcome"]) == ("read_file", "ok")
    assert sorted(r.parent_span_id for r in routers) == sorted(c.span_id for c in model_calls)
    assert {a.parent_span_id for a in attempts} == {r.span_id for r in routers} and len(attempts) == 2
    assert all(attributes(a)["llmagg.provider"] == "agent-sim" for a in attempts)
