"""Every hop exports OTLP spans: one trace across the gateway, the router and each fallback attempt."""

from __future__ import annotations

import urllib.request

import openai
import pytest

from ..helpers import (
    ADMIN_KEY,
    ROUTER_TEST_ENV,
    SIM_KEY,
    admin_call,
    arrivals,
    create_client_key,
    scenario,
    span_receiver,
    tracing_env,
    wait_for,
)

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_SPAN_ID = "00f067aa0ba902b7"


@pytest.fixture(scope="module")
def receiver():
    yield from span_receiver()


@pytest.fixture(scope="module")
def traced_stack(receiver, router_config, tmp_path_factory, make_stack):
    stack = make_stack(tmp_path_factory.mktemp("traced"))
    env = {
        **ROUTER_TEST_ENV,
        "LLMAGG_CONFIG": str(router_config),
        **tracing_env(receiver),
    }
    with stack.running(env):
        yield stack


def spans_of_trace(receiver, trace_id: str, at_least: int):
    def enough():
        spans = [s for s in receiver.spans if s.trace_id.hex() == trace_id]
        return spans if len(spans) >= at_least else None

    return wait_for(enough, f"{at_least} spans of trace {trace_id}")


def traced_chat(stack, trace_id: str, model: str = "chat-model", api_key: str = ADMIN_KEY):
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
    traced_chat(traced_stack, trace_id)
    spans_of_trace(receiver, trace_id, at_least=2)  # the server span and its attempt have been exported
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
    spans_of_trace(receiver, trace_id, at_least=2)
    assert not [s for s in receiver.spans if "Health" in s.name]


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
