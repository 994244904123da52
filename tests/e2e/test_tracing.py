"""Every hop exports OTLP spans: one trace across the gateway, the router and each fallback attempt."""

from __future__ import annotations

import json
import urllib.request

import openai
import pytest

from llmagg_devstack import span_receiver

from ..agent_helpers import agent_env, calls, new_project, says, script_model, tool_call
from ..helpers import (
    ADMIN_KEY,
    ROUTER_TEST_ENV,
    SIM_KEY,
    admin_call,
    arrivals,
    create_client_key,
    post_raw,
    scenario,
    wait_for,
)

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_SPAN_ID = "00f067aa0ba902b7"


@pytest.fixture(scope="module")
def receiver():
    with span_receiver() as receiver:
        yield receiver


@pytest.fixture(scope="module")
def traced_stack(receiver, router_config, tmp_path_factory, make_stack, workspaces):
    stack = make_stack(tmp_path_factory.mktemp("traced"), otlp_endpoint=receiver.endpoint)
    env = {
        **ROUTER_TEST_ENV,
        **agent_env(workspaces),
        "LLMAGG_CONFIG": str(router_config),
        **receiver.environment(),
    }
    with stack.running(env):
        yield stack


def spans_of_trace(receiver, trace_id: str, at_least: int, *names: str):
    """The spans of a trace once there are `at_least` of them, `names` among them (a name twice: two spans)."""

    def enough():
        spans = [s for s in receiver.spans if s.trace_id.hex() == trace_id]
        found = [s.name for s in spans]
        if len(spans) < at_least or any(found.count(n) < names.count(n) for n in names):
            return None
        return spans

    return wait_for(enough, f"{at_least} spans of trace {trace_id} with {names}")


# A chat through the gateway, streamed or not, is served on the router's REST data path; the agent's
# calls to the router by the gRPC CreateChatCompletion.
SERVER = "POST /v1/chat/completions"
STREAMING = "llmagg.router.v1.RouterService/CreateChatCompletion"


def edge_spans(receiver, trace_id: str):
    """The trace's spans once the gateway's own (the one whose parent is the caller's) has arrived."""
    spans = [s for s in receiver.spans if s.trace_id.hex() == trace_id]
    edge = [s for s in spans if s.parent_span_id.hex() == PARENT_SPAN_ID]
    return spans if edge and any(s.span_id == edge[0].span_id for s in spans) else None


PROMPT = "a prompt no span may quote"


def traced_chat(stack, trace_id: str, model: str = "chat-model", api_key: str = ADMIN_KEY):
    client = openai.OpenAI(base_url=stack.base_url, api_key=api_key, max_retries=0)
    return client.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": PROMPT}],
        extra_headers={"traceparent": f"00-{trace_id}-{PARENT_SPAN_ID}-01"},
    )


def attributes(span) -> dict:
    return {a.key: getattr(a.value, a.value.WhichOneof("value")) for a in span.attributes}


def test_a_request_that_falls_over_twice_is_one_trace_from_the_edge_through_every_attempt(
    traced_stack, receiver, simulator
):
    providers = scenario(simulator, "three-step")
    assert traced_chat(traced_stack, TRACE_ID, model="three-step").provider == "step-ok"
    assert arrivals(simulator, providers) == ["step-429", "step-500", "step-ok"]
    spans_of_trace(receiver, TRACE_ID, 4, SERVER, *["chat sim-small"] * 3)
    # The gateway continues the caller's trace; its spans arrive when Envoy flushes them.
    spans = wait_for(lambda: edge_spans(receiver, TRACE_ID), "the gateway's spans")
    [edge] = [s for s in spans if s.parent_span_id.hex() == PARENT_SPAN_ID]
    [server] = [s for s in spans if s.name == SERVER]
    assert server.parent_span_id == edge.span_id  # the router's span hangs off the gateway's
    assert {
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": "three-step",
        "gen_ai.provider.name": "step-ok",
        "gen_ai.response.model": "sim-small",
        "llmagg.attempts": 3,
    }.items() <= attributes(server).items()
    assert attributes(server)["gen_ai.usage.output_tokens"] > 0
    attempts = sorted((s for s in spans if s.name == "chat sim-small"), key=lambda s: attributes(s)["llmagg.attempt"])
    assert [s.parent_span_id for s in attempts] == [server.span_id] * 3
    assert [(attributes(a)["gen_ai.provider.name"], attributes(a)["llmagg.outcome"]) for a in attempts] == [
        ("step-429", "failed"),
        ("step-500", "failed"),
        ("step-ok", "ok"),
    ]
    assert [attributes(a).get("error.type") for a in attempts] == ["rate_limited", "server", None]
    assert attributes(attempts[0])["llmagg.retry_after_s"] == 30
    assert [e.name for e in attempts[0].events] == ["cooldown"]
    assert attributes(attempts[2])["llmagg.account"] == "step-ok-acct"
    dumped = b"".join(s.SerializeToString() for s in spans)
    assert PROMPT.encode() not in dumped and b"Hello from" not in dumped  # no prompt or completion text


RESERVE = "llmagg.ratelimit.v1.RatelimitService/Reserve"
LIST_ACCOUNTS = "llmagg.credentials.v1.CredentialsService/ListAccounts"


def hop(spans, name: str):
    """(the caller's CLIENT span, the callee's SERVER span) of the one call `name` among `spans`."""
    [client] = [s for s in spans if s.name == name and s.kind == s.SPAN_KIND_CLIENT]
    [server] = [s for s in spans if s.name == name and s.kind == s.SPAN_KIND_SERVER]
    return client, server


def gateway_span_of(receiver, request_id: str):
    """Envoy's span of the request Envoy gave `request_id` (its x-request-id), once exported."""
    return next((s for s in receiver.spans if attributes(s).get("guid:x-request-id") == request_id), None)


def test_at_100_percent_a_request_without_a_traceparent_is_traced_through_every_attempt(
    traced_stack, receiver, simulator
):
    providers = scenario(simulator, "usage-three")
    client = openai.OpenAI(base_url=traced_stack.base_url, api_key=ADMIN_KEY, max_retries=0)
    raw = client.chat.completions.with_raw_response.create(
        model="usage-three", messages=[{"role": "user", "content": "hi"}]
    )
    assert raw.parse().provider == "usage-ok" and arrivals(simulator, providers) == providers
    edge = wait_for(lambda: gateway_span_of(receiver, raw.headers["x-request-id"]), "the gateway's span")
    assert not edge.parent_span_id  # Envoy started the trace: its own random sampling chose it
    spans = spans_of_trace(receiver, edge.trace_id.hex(), 5, SERVER, *["chat sim-small"] * 3)
    attempts = sorted((s for s in spans if s.name == "chat sim-small"), key=lambda s: attributes(s)["llmagg.attempt"])
    assert [attributes(a)["gen_ai.provider.name"] for a in attempts] == providers


def test_the_quota_hop_is_in_the_requests_trace(traced_stack, receiver, simulator):
    """The router's Reserve call to ratelimit continues the request's trace; ratelimit's own
    reads of credentials (a background refresh, no request's) are traced from ratelimit into credentials."""
    trace_id = "abf92f3577b34da6a3ce929d0e0e473c"
    scenario(simulator, "wait-model")
    traced_chat(traced_stack, trace_id, model="wait-model")  # a key no request has leased yet: one Reserve
    spans = spans_of_trace(receiver, trace_id, 4, SERVER, RESERVE, RESERVE)
    by_id = {s.span_id: s for s in spans}
    [router] = [s for s in spans if s.name == SERVER and s.kind == s.SPAN_KIND_SERVER]

    def ancestors(span):
        while span.parent_span_id in by_id:
            span = by_id[span.parent_span_id]
            yield span.span_id

    client, server = hop(spans, RESERVE)
    assert server.parent_span_id == client.span_id  # ratelimit continues the router's call
    assert router.span_id in set(ancestors(client))  # made while serving the request
    assert (receiver.service_of[client.span_id], receiver.service_of[server.span_id]) == ("router", "ratelimit")

    def ratelimits_read_of_credentials():
        clients = {
            s.span_id: s
            for s in receiver.spans
            if s.name == LIST_ACCOUNTS and receiver.service_of.get(s.span_id) == "ratelimit"
        }
        return [s for s in receiver.spans if s.kind == s.SPAN_KIND_SERVER and s.parent_span_id in clients]

    [read, *_] = wait_for(ratelimits_read_of_credentials, "a traced ListAccounts from ratelimit to credentials")
    assert receiver.service_of[read.span_id] == "credentials"


def test_a_stream_is_one_complete_trace_whose_spans_end_with_it(traced_stack, receiver):
    trace_id = "8bf92f3577b34da6a3ce929d0e0e473a"
    client = openai.OpenAI(base_url=traced_stack.base_url, api_key=ADMIN_KEY, max_retries=0)
    stream = client.chat.completions.create(
        model="chat-model",
        messages=[{"role": "user", "content": "echo: one two three"}],
        stream=True,
        extra_headers={"traceparent": f"00-{trace_id}-{PARENT_SPAN_ID}-01"},
    )
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == "one two three"
    spans = spans_of_trace(receiver, trace_id, 3, SERVER, "chat sim-small")
    [server] = [s for s in spans if s.name == SERVER]
    [attempt] = [s for s in spans if s.name == "chat sim-small"]
    assert attributes(attempt)["llmagg.outcome"] == "ok" and attributes(attempt)["gen_ai.response.finish_reasons"]
    assert server.end_time_unix_nano >= attempt.end_time_unix_nano > attempt.start_time_unix_nano


def test_spans_never_carry_key_material(traced_stack, receiver):
    trace_id = "5bf92f3577b34da6a3ce929d0e0e4737"
    traced_chat(traced_stack, trace_id)
    spans_of_trace(receiver, trace_id, at_least=3)  # the gateway's span, the server span and its attempt
    dumped = b"".join(s.SerializeToString() for s in receiver.spans)
    assert SIM_KEY.encode() not in dumped and ADMIN_KEY.encode() not in dumped


def health_checks_passed(stack) -> int:
    with urllib.request.urlopen(f"http://127.0.0.1:{stack.ports.admin}/stats?filter=router.health_check.success") as r:
        return int(r.read().decode().split(":")[-1])


def test_health_checks_are_not_traced(traced_stack, receiver):
    before = health_checks_passed(traced_stack)
    wait_for(lambda: health_checks_passed(traced_stack) >= before + 2, "two more health checks")
    # Spans are exported in the order they end: once a later request's spans are in, earlier ones are too.
    trace_id = "6bf92f3577b34da6a3ce929d0e0e4738"
    traced_chat(traced_stack, trace_id)
    spans_of_trace(receiver, trace_id, at_least=3)
    assert not [s for s in receiver.spans if "Health" in s.name]


def test_an_agent_run_is_one_trace_from_the_gateway_to_every_router_attempt(
    traced_stack, receiver, simulator, workspaces
):
    trace_id = "9bf92f3577b34da6a3ce929d0e0e473b"
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
        {"traceparent": f"00-{trace_id}-{PARENT_SPAN_ID}-01", "Authorization": f"Bearer {ADMIN_KEY}"},
    )
    assert status == 200 and answer["agent_status"] == "completed"
    agent_server = "llmagg.agent.v1.AgentService/InvokeCodeAgent"
    spans = spans_of_trace(receiver, trace_id, 11, agent_server, *[STREAMING] * 4, "chat sim-small", "chat sim-small")
    spans = wait_for(lambda: edge_spans(receiver, trace_id), "the gateway's spans")
    [edge] = [s for s in spans if s.parent_span_id.hex() == PARENT_SPAN_ID]
    [server] = [s for s in spans if s.name == agent_server]
    [run] = [s for s in spans if s.name == "agent.run"]
    model_calls = sorted((s for s in spans if s.name == "agent.model_call"), key=lambda s: attributes(s)["llmagg.step"])
    [tool] = [s for s in spans if s.name == "agent.tool_call"]
    calls_out = [s for s in spans if s.name == STREAMING and s.kind == s.SPAN_KIND_CLIENT]  # the agent's channel
    routers = [s for s in spans if s.name == STREAMING and s.kind == s.SPAN_KIND_SERVER]
    attempts = [s for s in spans if s.name == "chat sim-small"]
    assert server.parent_span_id == edge.span_id  # the agent's span hangs off the gateway's
    assert run.parent_span_id == server.span_id
    assert attributes(run)["llmagg.agent_status"] == "completed"
    assert attributes(run)["llmagg.client_id"] == attributes(server)["llmagg.client_id"] != ""
    assert [attributes(c)["llmagg.step"] for c in model_calls] == [1, 2]
    assert all(c.parent_span_id == run.span_id for c in model_calls)
    assert attributes(model_calls[0])["llmagg.model_used"] == "agent-sim/sim-small"
    assert tool.parent_span_id == run.span_id
    assert (attributes(tool)["llmagg.tool"], attributes(tool)["llmagg.outcome"]) == ("read_file", "ok")
    assert sorted(c.parent_span_id for c in calls_out) == sorted(c.span_id for c in model_calls)
    assert sorted(r.parent_span_id for r in routers) == sorted(c.span_id for c in calls_out)
    assert sorted(a.parent_span_id for a in attempts) == sorted(r.span_id for r in routers)
    assert all(attributes(a)["gen_ai.provider.name"] == "agent-sim" for a in attempts)
    assert all(attributes(r)["llmagg.client_id"] == attributes(run)["llmagg.client_id"] for r in routers)


def test_no_provider_client_or_own_key_reaches_a_log_a_span_or_an_error_body(
    traced_stack, receiver, simulator, openbao
):
    """Known provider keys, client keys and a BYOK key, through successes and every failure that logs."""
    plain = create_client_key(traced_stack, "leak-scan")
    own = "sk-byok-FAKE-leakscan"
    secrets = [SIM_KEY, ADMIN_KEY, plain, own]
    client = openai.OpenAI(base_url=traced_stack.base_url, api_key=plain, max_retries=0)
    bodies: list[str] = []
    for model in ("chat-model", "all-fail", "all-429", "bad-key", "hang", "no-such-model"):
        scenario(simulator, model)
        try:
            client.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}])
        except openai.APIStatusError as error:
            bodies.append(error.response.text)
    for provider in ("sim-fast", "bad-key"):  # BYOK accepted, then rejected by the provider
        try:
            client.chat.completions.create(
                model="sim-small", messages=[{"role": "user", "content": "hi"}],
                extra_body={"provider": provider}, extra_headers={"x-provider-api-key": own},
            )  # fmt: skip
        except openai.APIStatusError as error:
            bodies.append(error.response.text)
    for key in ("sk-wrong-FAKE-leakscan", plain):  # refused by the gateway; a plain key on an admin route
        bodies.append(str(admin_call(traced_stack, "GET", "/v1/admin/accounts", key=key)[1]))
    trace_id = "7bf92f3577b34da6a3ce929d0e0e4739"
    last = traced_chat(traced_stack, trace_id, api_key=plain)
    spans_of_trace(receiver, trace_id, at_least=2)  # spans end in order: every earlier one is exported too
    [gateway] = [p for p in traced_stack.processes if p.name == "gateway"]
    wait_for(lambda: last._request_id in gateway.output(), "Envoy's access log line of the last request")
    assert len(bodies) >= 6 and any("insufficient_scope" in b for b in bodies)
    assert any('"code": "all_candidates_failed"' in b or "all_candidates_failed" in b for b in bodies)
    dumped = b"".join(s.SerializeToString() for s in receiver.spans)
    outputs = {process.name: process.output() for process in traced_stack.processes}
    assert {"credentials", "router", "gateway"} <= set(outputs)  # OpenBao is the session's: its log is checked too
    outputs["openbao"] = (openbao.state_dir.parent / "openbao.log").read_text()
    for secret in secrets:
        assert secret.encode() not in dumped, secret
        assert not [b for b in bodies if secret in b], secret
        for name, text in outputs.items():
            assert secret not in text, (secret, name)


@pytest.fixture(scope="module")
def unsampled_receiver():
    with span_receiver() as receiver:
        yield receiver


@pytest.fixture(scope="module")
def unsampled_stack(unsampled_receiver, router_config, tmp_path_factory, make_stack):
    """Tracing on, at ratio 0: Envoy samples no request, the services start no trace of their own."""
    stack = make_stack(tmp_path_factory.mktemp("unsampled"), otlp_endpoint=unsampled_receiver.endpoint, trace_ratio=0)
    env = {**ROUTER_TEST_ENV, "LLMAGG_CONFIG": str(router_config), **unsampled_receiver.environment()}
    with stack.running(env):
        yield stack


def test_at_ratio_0_a_request_envoy_did_not_sample_leaves_no_span_anywhere(unsampled_stack, unsampled_receiver):
    client = openai.OpenAI(base_url=unsampled_stack.base_url, api_key=ADMIN_KEY, max_retries=0)
    # Envoy's decision is the request's: a caller's sampled traceparent does not overrule it.
    client.chat.completions.create(
        model="chat-model",
        messages=[{"role": "user", "content": "hi"}],
        extra_headers={"traceparent": f"00-{'d' * 32}-{PARENT_SPAN_ID}-01"},
    )
    # A request Envoy is told to trace (x-client-trace-id) is traced by every service: once its spans from
    # each process the first request went through are in, anything that request left would be too.
    trace_id = "cbf92f3577b34da6a3ce929d0e0e473d"
    client.chat.completions.create(
        model="chat-model",
        messages=[{"role": "user", "content": "hi"}],
        extra_headers={"traceparent": f"00-{trace_id}-{PARENT_SPAN_ID}-01", "x-client-trace-id": "force"},
    )
    spans_of_trace(unsampled_receiver, trace_id, 2, SERVER)
    wait_for(lambda: edge_spans(unsampled_receiver, trace_id), "the gateway's spans")
    others = [(s.name, unsampled_receiver.service_of[s.span_id]) for s in unsampled_receiver.spans
              if s.trace_id.hex() != trace_id]  # fmt: skip
    assert others == []
