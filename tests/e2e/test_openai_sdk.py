"""The official openai SDK through real Envoy to the router process and the provider simulator."""

from __future__ import annotations

import contextlib
import json

import openai
import pytest

from ..helpers import (
    ADMIN_KEY,
    SCENARIOS,
    SIM_KEY,
    admin_call,
    arrivals,
    create_client_key,
    post_raw,
    router_log_lines,
    scenario,
)

AUTHORIZED = {"Authorization": f"Bearer {ADMIN_KEY}"}

HELLO = [{"role": "user", "content": "Hello!"}]


@pytest.fixture(scope="module")
def client(stack, client_key) -> openai.OpenAI:
    return openai.OpenAI(base_url=stack.base_url, api_key=client_key, max_retries=0, timeout=30)


# --- the happy paths -----------------------------------------------------------------------------


def test_non_stream_chat_returns_an_openai_completion(client):
    raw = client.chat.completions.with_raw_response.create(model="sim-fast/sim-small", messages=HELLO)
    completion = raw.parse()
    assert completion.choices[0].message.content == "Hello from sim-fast (sim-small)."
    assert completion.usage.total_tokens > 0
    assert completion.model == "sim-small"
    assert completion.provider == "sim-fast"
    assert raw.headers["x-llmagg-provider"] == "sim-fast" and raw.headers["x-llmagg-attempts"] == "1"
    assert raw.headers["x-request-id"]
    assert not [h for h in raw.headers if h.startswith("grpc-")]


def test_stream_chat_delivers_every_chunk_and_usage(client):
    stream = client.chat.completions.create(
        model="chat-model", messages=[{"role": "user", "content": "echo: one two three four"}], stream=True,
        stream_options={"include_usage": True},
    )  # fmt: skip
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "one two three four"
    assert chunks[-1].choices == [] and chunks[-1].usage.total_tokens > 0
    assert {c.provider for c in chunks} == {"sim-fast"}


def test_the_sdk_stream_helper_accumulates_tool_calls(client):
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {
        "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]  # fmt: skip
    with client.chat.completions.stream(model="chat-model", messages=HELLO, tools=tools) as stream:
        final = stream.get_final_completion()
    call = final.choices[0].message.tool_calls[0]
    assert call.function.name == "get_weather" and json.loads(call.function.arguments) == {"city": "sim"}
    assert final.choices[0].finish_reason == "tool_calls"


def test_models_lists_auto_chains_and_every_routable_model(client):
    ids = {m.id for m in client.models.list()}
    assert {"auto", "e2e-chain", "sim-fast/sim-small", "sim-fast/sim-embed"} <= ids


def test_the_sdk_retrieves_one_model_as_the_list_shows_it(client, stack, client_key):
    listed = {m.id: m for m in client.models.list()}
    for model_id in ("sim-fast/sim-small", "auto", "e2e-chain"):
        assert client.models.retrieve(model_id) == listed[model_id]
    # curl users write the slash as it is; the SDK sends it as %2F.
    status, body = admin_call(stack, "GET", "/v1/models/sim-fast/sim-small", key=client_key)
    assert status == 200 and body["id"] == "sim-fast/sim-small"
    assert client.models.retrieve("sim-fast/sim-small").owned_by == "sim-fast"
    with pytest.raises(openai.NotFoundError) as raised:
        client.models.retrieve("sim-fast/no-such-model")
    assert raised.value.code == "model_not_found" and "sim-fast/no-such-model" in raised.value.message


def test_every_name_chat_resolves_is_retrievable(client, simulator):
    created = {m.id: m for m in client.models.list()}["auto"].created
    assert client.models.retrieve("chat-model").to_dict() == {
        "id": "chat-model",
        "object": "model",
        "created": created,
        "owned_by": "llmagg",
        "type": "alias",
        "routes_to": ["sim-fast/sim-small"],
    }
    shared = client.models.retrieve("sim-small")  # one id, every scenario provider serves it
    assert (shared.id, shared.type) == ("sim-small", "alias")
    assert sorted(shared.routes_to) == sorted(f"{name}/sim-small" for name in SCENARIOS)
    assert client.models.retrieve("embed-model").routes_to == ["sim-fast/sim-embed"]
    simulator.reset("sim-fast")
    assert client.chat.completions.create(model="chat-model", messages=HELLO).provider == "sim-fast"


def test_embeddings_in_the_sdks_default_base64_encoding(client):
    result = client.embeddings.create(model="embed-model", input=["alpha", "beta"])
    assert len(result.data) == 2 and len(result.data[0].embedding) == 8
    assert result.data[0].embedding != result.data[1].embedding


def test_unknown_parameters_reach_the_upstream_untouched(client, simulator):
    simulator.reset("sim-fast")
    client.chat.completions.create(
        model="sim-fast/sim-small", messages=HELLO, response_format={"type": "json_object"}, seed=11,
        extra_body={"foo_unknown": {"nested": [1, 2]}, "provider": "sim-fast", "model_quality": "fastest"},
    )  # fmt: skip
    [received] = simulator.requests("sim-fast")
    body = received["body"]
    assert body["foo_unknown"] == {"nested": [1, 2]}
    assert body["response_format"] == {"type": "json_object"} and body["seed"] == 11
    assert "provider" not in body and "model_quality" not in body  # ours, not the upstream's
    assert received["headers"]["authorization"] == f"Bearer {SIM_KEY}"  # the account key, not the client's


def test_a_fallback_chain_is_tried_in_its_order(client, simulator):
    providers = [*scenario(simulator, "chain-only"), "sim-fast"]
    simulator.reset("sim-fast")
    raw = client.chat.completions.with_raw_response.create(model="e2e-chain", messages=HELLO)
    assert raw.parse().provider == "sim-fast" and raw.headers["x-llmagg-attempts"] == "2"
    assert arrivals(simulator, providers) == ["chain-429", "sim-fast"]


# --- fallback: each scenario's providers are tried in their order, exactly once each ---------------


def test_openrouter_style_models_are_tried_in_order(client, simulator):
    providers = scenario(simulator, "openrouter-first") + scenario(simulator, "openrouter-next")
    raw = client.chat.completions.with_raw_response.create(
        model="openrouter-first", messages=HELLO, extra_body={"models": ["openrouter-first", "openrouter-next"]}
    )
    assert raw.parse().provider == "or-next" and raw.headers["x-llmagg-attempts"] == "2"
    assert arrivals(simulator, providers) == ["or-down", "or-next"]
    assert "models" not in simulator.requests("or-next")[-1]["body"]  # OpenRouter's fields stay here


def test_openrouter_style_provider_order_without_fallbacks(client, simulator):
    providers = scenario(simulator, "three-step")
    raw = client.chat.completions.with_raw_response.create(
        model="three-step", messages=HELLO, extra_body={"provider": {"order": ["step-ok"], "allow_fallbacks": False}}
    )
    assert raw.parse().provider == "step-ok" and raw.headers["x-llmagg-attempts"] == "1"
    assert arrivals(simulator, providers) == ["step-ok"]
    with pytest.raises(openai.NotFoundError) as raised:
        client.chat.completions.create(
            model="three-step", messages=HELLO, extra_body={"provider": {"only": ["sim-fast"]}}
        )
    assert raised.value.code == "no_allowed_providers" and arrivals(simulator, providers) == ["step-ok"]


def test_a_session_stays_on_one_account_while_other_requests_rotate(client, simulator):
    def account(**headers) -> str:
        raw = client.chat.completions.with_raw_response.create(
            model="sticky-model", messages=HELLO, extra_headers=headers
        )
        return raw.headers["x-llmagg-account"]

    scenario(simulator, "sticky-model")
    rotating = [account(), account()]
    assert sorted(rotating) == ["sticky-2", "sticky-acct"]
    session = [account(**{"x-session-id": "conversation-1"}) for _ in range(4)]
    assert len(set(session)) == 1


def test_a_request_that_may_wait_waits_out_a_short_rate_limit(client, simulator):
    scenario(simulator, "wait-model")
    simulator.script("wait-once", [{"type": "429", "retry_after": 1, "count": 1}])
    raw = client.chat.completions.with_raw_response.create(
        model="wait-model", messages=HELLO, extra_headers={"x-llmagg-max-wait": "5"}
    )
    assert raw.parse().provider == "wait-once" and raw.headers["x-llmagg-attempts"] == "2"
    assert len(simulator.requests("wait-once")) == 2  # the 429, then the answer after the wait


def test_without_asking_to_wait_a_short_rate_limit_is_a_429(client, simulator):
    scenario(simulator, "wait-model")
    simulator.script("wait-once", [{"type": "429", "retry_after": 30, "count": 1}])
    with pytest.raises(openai.RateLimitError):
        client.chat.completions.create(model="wait-model", messages=HELLO, extra_headers={"x-llmagg-max-wait": "5"})
    with pytest.raises(openai.BadRequestError) as raised:
        client.chat.completions.create(model="wait-model", messages=HELLO, extra_headers={"x-llmagg-max-wait": "soon"})
    assert raised.value.code == "invalid_max_wait"


def test_a_hedged_request_starts_the_next_provider_beside_a_slow_one_and_the_quick_one_answers(client, simulator):
    providers = scenario(simulator, "hedged-model")  # hedge-slow takes 20 s to start answering
    raw = client.chat.completions.with_raw_response.create(
        model="hedged-model", messages=HELLO, extra_headers={"x-llmagg-hedge": "true"}
    )
    assert raw.parse().provider == "hedge-quick"
    assert (raw.headers["x-llmagg-provider"], raw.headers["x-llmagg-attempts"]) == ("hedge-quick", "2")
    assert arrivals(simulator, providers) == ["hedge-slow", "hedge-quick"]
    with pytest.raises(openai.BadRequestError) as raised:
        client.chat.completions.create(model="hedged-model", messages=HELLO, extra_headers={"x-llmagg-hedge": "maybe"})
    assert raised.value.code == "invalid_hedge"


def test_a_429ing_provider_falls_over_to_a_healthy_one(client, simulator):
    providers = scenario(simulator, "fallback-429")
    raw = client.chat.completions.with_raw_response.create(model="fallback-429", messages=HELLO)
    assert raw.parse().provider == "rl-backup"
    assert (raw.headers["x-llmagg-provider"], raw.headers["x-llmagg-attempts"]) == ("rl-backup", "2")
    assert arrivals(simulator, providers) == ["rl-first", "rl-backup"]
    # rl-first is cooling down now, so the next request goes straight to the backup.
    raw = client.chat.completions.with_raw_response.create(model="fallback-429", messages=HELLO)
    assert raw.headers["x-llmagg-attempts"] == "1"
    assert arrivals(simulator, providers) == ["rl-first", "rl-backup", "rl-backup"]


def test_a_hanging_provider_falls_over_after_the_read_timeout(client, simulator):
    providers = scenario(simulator, "hang")
    assert client.chat.completions.create(model="hang", messages=HELLO).provider == "hang-backup"
    assert arrivals(simulator, providers) == ["hang", "hang-backup"]


def test_malformed_upstream_json_falls_over(client, simulator):
    providers = scenario(simulator, "garbled")
    assert client.chat.completions.create(model="garbled", messages=HELLO).provider == "garbled-backup"
    assert arrivals(simulator, providers) == ["garbled", "garbled-backup"]


def test_a_rejected_key_falls_over_to_the_next_account(client, simulator):
    providers = scenario(simulator, "bad-key")
    assert client.chat.completions.create(model="bad-key", messages=HELLO).provider == "bad-key-backup"
    assert arrivals(simulator, providers) == ["bad-key", "bad-key-backup"]


def test_a_stream_cut_before_any_content_falls_over(client, simulator):
    providers = scenario(simulator, "cut-early")
    chunks = list(client.chat.completions.create(model="cut-early", messages=HELLO, stream=True))
    assert {c.provider for c in chunks} == {"cut-early-backup"}
    assert (
        "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        == "Hello from cut-early-backup (sim-small)."
    )
    assert arrivals(simulator, providers) == ["cut-early", "cut-early-backup"]


def test_a_stream_cut_after_the_first_content_ends_with_an_explicit_error(client, simulator):
    providers = scenario(simulator, "cut-late")
    received = []
    with pytest.raises(openai.APIError) as caught:
        for chunk in client.chat.completions.create(model="cut-late", messages=HELLO, stream=True):
            received.append(chunk)
    assert received and all(c.provider == "cut-late" for c in received)
    assert "cut-late" in caught.value.message
    assert caught.value.code == "upstream_stream_interrupted"
    assert arrivals(simulator, providers) == ["cut-late"]  # no silent retry once content reached the client


# --- errors ----------------------------------------------------------------------------------------


def test_when_every_candidate_fails_the_client_gets_an_openai_503(client, simulator):
    providers = scenario(simulator, "all-fail")
    with pytest.raises(openai.InternalServerError) as caught:
        client.chat.completions.create(model="all-fail", messages=HELLO)
    assert arrivals(simulator, providers) == ["fail-a", "fail-b"]
    error = caught.value
    assert error.status_code == 503
    assert error.code == "all_candidates_failed" and error.type == "service_unavailable_error"
    assert "fail-a/sim-small" in error.message and "fail-b/sim-small" in error.message
    assert SIM_KEY not in error.message
    assert not [h for h in error.response.headers if h.startswith("grpc-")]


def test_router_log_lines_carry_the_gateways_request_id(client, stack):
    with pytest.raises(openai.InternalServerError) as caught:
        client.chat.completions.create(model="all-fail", messages=HELLO)
    request_id = caught.value.response.headers["x-request-id"]
    lines = router_log_lines(stack, request_id, 3)
    failed = [line for line in lines if line["msg"].startswith("attempt failed")]
    [summary] = [line for line in lines if not line["msg"].startswith("attempt failed")]
    assert [line["provider"] for line in failed] == ["fail-a", "fail-b"]
    assert summary["msg"] == f"chat all-fail failed: all_candidates_failed after 2 attempts, {summary['latency_ms']} ms"
    assert (summary["status"], summary["attempts"], summary["client_id"]) == (
        "all_candidates_failed",
        2,
        summary["client_id"],
    )


def test_every_served_request_leaves_one_log_line_saying_who_served_it(client, stack):
    raw = client.chat.completions.with_raw_response.create(model="chat-model", messages=HELLO)
    request_id = raw.headers["x-request-id"]
    [line] = router_log_lines(stack, request_id, 1)
    assert (line["model_asked"], line["provider"], line["model"], line["attempts"]) == (
        "chat-model",
        "sim-fast",
        "sim-small",
        1,
    )
    assert line["msg"].startswith("chat chat-model -> sim-fast/sim-small via sim-fast-acct: 1 attempt, ")


def test_when_every_account_is_rate_limited_the_client_gets_429_with_retry_after(client, simulator):
    providers = scenario(simulator, "all-429")
    with pytest.raises(openai.RateLimitError) as caught:
        client.chat.completions.create(model="all-429", messages=HELLO)
    error = caught.value
    assert error.code == "rate_limit_exceeded"
    assert error.response.headers["retry-after"] == "7"  # what the provider asked for
    assert arrivals(simulator, providers) == ["rl-only"]


def test_an_upstream_client_error_is_returned_without_fallback(client, simulator):
    providers = scenario(simulator, "bad-request")
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="bad-request", messages=HELLO)
    assert caught.value.status_code == 400
    assert arrivals(simulator, providers) == ["reject-400"]


def test_an_unknown_model_is_a_404_model_not_found(client):
    with pytest.raises(openai.NotFoundError) as caught:
        client.chat.completions.create(model="no-such-model", messages=HELLO)
    assert caught.value.code == "model_not_found"
    assert caught.value.type == "invalid_request_error"


def test_malformed_json_is_a_400_in_openai_shape(stack):
    status, _, body = post_raw(f"{stack.base_url}/chat/completions", b'{"model": "auto", "messages": [', AUTHORIZED)
    assert status == 400
    assert body["error"]["code"] == "invalid_json" and body["error"]["type"] == "invalid_request_error"


def test_a_missing_model_is_a_400_naming_the_parameter(stack):
    status, _, body = post_raw(
        f"{stack.base_url}/chat/completions", b'{"messages": [{"role": "user", "content": "x"}]}', AUTHORIZED
    )
    assert status == 400 and body["error"]["param"] == "model"


def test_an_unknown_url_is_a_404_in_openai_shape(stack):
    status, _, body = post_raw(f"{stack.base_url}/no/such/route", b"{}", AUTHORIZED)
    assert status == 404
    assert body["error"]["type"] == "invalid_request_error" and body["error"]["code"] == "unknown_url"


def test_without_accounts_a_chat_request_says_how_to_add_one(empty_stack):
    client = openai.OpenAI(base_url=empty_stack.base_url, api_key=ADMIN_KEY, max_retries=2)
    with pytest.raises(openai.APIStatusError) as caught:
        client.chat.completions.create(model="auto", messages=HELLO)
    error = caught.value
    assert error.status_code == 503 and error.code == "no_accounts_configured"
    assert "LLMAGG_CONFIG" in error.message and "api_key_env" in error.message
    assert "llmagg accounts add" in error.message
    assert error.response.headers["x-should-retry"] == "false"


def test_a_3_mib_prompt_passes_the_gateway_and_the_router(client, simulator):
    simulator.reset("sim-fast")
    big = "word " * (3 * 1024 * 1024 // 5)
    # A model id the registry does not list: no known context window to skip it for (sim-small's
    # 32k would, before any call: see the next test).
    client.chat.completions.create(model="sim-fast/a-long-context-model", messages=[{"role": "user", "content": big}])
    assert len(simulator.requests("sim-fast")[-1]["body"]["messages"][0]["content"]) == len(big)


def test_a_prompt_longer_than_every_candidates_window_is_a_400_before_any_call(client, simulator):
    simulator.reset("sim-fast")
    with pytest.raises(openai.BadRequestError) as raised:
        client.chat.completions.create(
            model="sim-fast/sim-small", messages=[{"role": "user", "content": "word " * 40_000}]
        )
    assert (raised.value.code, raised.value.param) == ("context_length_exceeded", "messages")
    assert simulator.requests("sim-fast") == []


def test_no_key_reaches_any_log(client, client_key, stack, simulator):
    """Every failure mode that logs (429, 401, 5xx, hang, cut stream) leaves neither key in any log line."""
    for model in ("all-fail", "all-429", "bad-key", "hang", "cut-late"):
        scenario(simulator, model)
        with contextlib.suppress(openai.APIError):
            for _ in client.chat.completions.create(model=model, messages=HELLO, stream=True):
                pass
    router_log = (stack.run_dir / "router.log").read_text()
    assert {"fail-a", "rl-only", "bad-key", "hang", "cut-late"} <= {
        json.loads(line).get("provider") for line in router_log.splitlines() if "attempt failed" in line
    }
    for process in stack.processes:
        text = process.output()
        assert SIM_KEY not in text, process.name
        assert client_key not in text, process.name


def test_a_non_ascii_model_id_passes_through_to_a_pinned_provider(client, simulator):
    raw = client.chat.completions.with_raw_response.create(model="sim-fast/模型-ü", messages=HELLO)
    assert raw.parse().model == "模型-ü"
    assert raw.headers["x-llmagg-provider"] == "sim-fast"
    assert raw.headers["x-llmagg-model"].isascii()


# --- the meta-controller -------------------------------------------------------------------------


def test_auto_says_why_it_routed_and_takes_feedback_on_the_answer(client, stack, client_key):
    # Two well-behaved providers (the stack's others fail on purpose): one is sampled, it answers.
    only = {"provider": {"only": ["sim-fast", "rl-backup"]}}
    raw = client.chat.completions.with_raw_response.create(model="auto", messages=HELLO, extra_body=only)
    completion = raw.parse()
    assert raw.headers["x-llmagg-attempts"] == "1"
    assert raw.headers["x-llmagg-route-reason"].startswith("thompson; profile=chat; of=2; sample=")
    key = {"Authorization": f"Bearer {client_key}"}
    url = f"{stack.base_url}/feedback"
    status, _, body = post_raw(url, json.dumps({"request_id": completion.id, "score": 0.25}).encode(), key)
    served = f"{completion.provider}/{completion.model}"
    assert (status, body) == (
        200,
        {"object": "feedback", "request_id": completion.id, "score": 0.25, "model": served},
    )
    status, _, body = post_raw(url, json.dumps({"request_id": "chatcmpl-none", "score": 1}).encode(), key)
    assert (status, body["error"]["code"]) == (404, "unknown_request_id")
    status, _, body = post_raw(url, json.dumps({"request_id": completion.id, "score": 2}).encode(), key)
    assert (status, body["error"]["code"], body["error"]["param"]) == (400, "invalid_score", "score")
    status, state = admin_call(stack, "GET", "/v1/admin/routing")
    assert status == 200 and state["meta_controller"]["profiles"]["chat"][served]["quality"] == 0.25


def test_feedback_is_taken_only_from_the_key_that_asked_or_an_admin(client, stack):
    completion = client.chat.completions.create(
        model="auto", messages=HELLO, extra_body={"provider": {"only": ["sim-fast"]}}
    )
    url, feedback = f"{stack.base_url}/feedback", json.dumps({"request_id": completion.id, "score": 1}).encode()
    other = {"Authorization": f"Bearer {create_client_key(stack, 'feedback-other')}"}
    status, _, body = post_raw(url, feedback, other)
    assert (status, body["error"]["code"]) == (404, "unknown_request_id")  # another client's answer: as if unknown
    status, _, body = post_raw(url, feedback, AUTHORIZED)
    assert (status, body["model"]) == (200, "sim-fast/sim-small")
    status, _, body = post_raw(url, feedback, AUTHORIZED)
    assert (status, body["error"]["code"]) == (404, "unknown_request_id")  # taken once per answer


def test_a_named_model_is_routed_as_asked(client):
    raw = client.chat.completions.with_raw_response.create(model="sim-fast/sim-small", messages=HELLO)
    assert raw.headers["x-llmagg-route-reason"] == "model asked"


def test_an_ensemble_answers_with_its_candidates(client):
    raw = client.chat.completions.with_raw_response.create(
        model="ensemble",
        messages=[{"role": "user", "content": "echo: Paris"}],
        extra_body={"ensemble": {"models": ["sim-fast/sim-small", "rl-backup/sim-small"], "strategy": "vote"}},
    )
    completion = raw.parse()
    assert completion.choices[0].message.content == "Paris"
    candidates = completion.model_extra["ensemble"]["candidates"]
    assert [(c["provider"], c["agreement"]) for c in candidates] == [("sim-fast", 1.0), ("rl-backup", 1.0)]
    # A tie in votes goes to the better score (what earlier tests taught the meta-controller), then to the first.
    best = max(candidates, key=lambda c: c["score"])
    assert [c["chosen"] for c in candidates] == [c is best for c in candidates]
    assert raw.headers["x-llmagg-provider"] == best["provider"]
    assert raw.headers["x-llmagg-route-reason"] == "ensemble; strategy=vote; answered=2/2"


ENSEMBLE_OF_TWO = {"models": ["sim-fast/sim-small", "rl-backup/sim-small"], "judge": "step-ok/sim-small"}
JUDGED = ["sim-fast", "rl-backup", "step-ok"]


def _judged(client, simulator, judge_says: dict, strategy: str = "best"):
    for name in JUDGED:
        simulator.reset(name)
    simulator.script("step-ok", [judge_says])
    raw = client.chat.completions.with_raw_response.create(
        model="ensemble",
        messages=[{"role": "user", "content": "echo: Paris"}],
        extra_body={"ensemble": {**ENSEMBLE_OF_TWO, "strategy": strategy}},
    )
    return raw, raw.parse()


def test_an_ensembles_judge_picks_the_answer_after_every_candidate_answered(client, simulator):
    raw, completion = _judged(client, simulator, {"type": "answer", "content": "Answer 2"})
    assert sorted(arrivals(simulator, JUDGED)[:2]) == ["rl-backup", "sim-fast"]
    assert arrivals(simulator, JUDGED)[2:] == ["step-ok"]
    report = completion.model_extra["ensemble"]
    assert (report["chosen_by"], [c["chosen"] for c in report["candidates"]]) == ("judge", [False, True])
    judge = report["judge"]
    assert (judge["provider"], judge["verdict"], judge["outcome"]) == ("step-ok", 2, "chosen")
    assert judge["usage"]["total_tokens"] > 0
    assert raw.headers["x-llmagg-provider"] == "rl-backup"
    assert raw.headers["x-llmagg-route-reason"] == (
        "ensemble; strategy=best; answered=2/2; judge=step-ok/sim-small; verdict=2"
    )


@pytest.mark.parametrize(
    ("judge_says", "outcome"),
    [({"type": "answer", "content": "both fine"}, "unparseable"), ({"type": "500"}, "failed")],
)
def test_an_unreadable_or_failed_judge_falls_back_to_agreement_and_heuristics(client, simulator, judge_says, outcome):
    raw, completion = _judged(client, simulator, judge_says)
    assert completion.choices[0].message.content == "Paris"
    report = completion.model_extra["ensemble"]
    assert (report["chosen_by"], report["judge"]["verdict"], report["judge"]["outcome"]) == (
        "heuristics+agreement",
        None,
        outcome,
    )
    assert arrivals(simulator, JUDGED)[2:] == ["step-ok"]  # one judge call: step-ok has one account
    chosen = next(c for c in report["candidates"] if c["chosen"])
    assert raw.headers["x-llmagg-provider"] == chosen["provider"]


def test_a_fused_ensemble_answers_with_the_judges_text(client, simulator):
    raw, completion = _judged(client, simulator, {"type": "answer", "content": "Paris, France."}, "fuse")
    assert completion.choices[0].message.content == "Paris, France."
    assert raw.headers["x-llmagg-provider"] == "step-ok"
    report = completion.model_extra["ensemble"]
    assert [(c["provider"], c["chosen"]) for c in report["candidates"]] == [("sim-fast", False), ("rl-backup", False)]
    assert (report["chosen_by"], report["judge"]["outcome"]) == ("judge", "fused")


def test_a_streamed_ensemble_streams_the_chosen_answer_with_the_report_last(client, simulator):
    for name in JUDGED:
        simulator.reset(name)
    simulator.script("step-ok", [{"type": "answer", "content": "1"}])
    stream = client.chat.completions.create(
        model="ensemble",
        messages=[{"role": "user", "content": "echo: Paris"}],
        stream=True,
        extra_body={"ensemble": {**ENSEMBLE_OF_TWO, "strategy": "best"}},
    )
    chunks = list(stream)
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "Paris"
    assert [c.choices[0].finish_reason for c in chunks] == [None, "stop"]
    report = chunks[-1].model_extra["ensemble"]
    assert [(c["provider"], c["chosen"]) for c in report["candidates"]] == [("sim-fast", True), ("rl-backup", False)]
    assert report["judge"]["verdict"] == 1 and chunks[-1].usage.total_tokens > 0
