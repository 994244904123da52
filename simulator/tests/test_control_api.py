"""The /_sim control API: fault queues, default behaviours, request logs, resets."""

from __future__ import annotations

import json

import openai
import pytest

from llmagg_devstack import SimulatorError

from .helpers import HELLO, json_headers, sdk_for


def _outcomes(api: openai.OpenAI, times: int) -> list[int | str]:
    outcomes: list[int | str] = []
    for _ in range(times):
        try:
            api.chat.completions.create(model="m", messages=HELLO)
            outcomes.append("ok")
        except openai.APIStatusError as error:
            outcomes.append(error.status_code)
    return outcomes


def test_scripted_faults_are_consumed_in_order_then_the_default_returns(sim, client, provider):
    sim.script(provider, [{"type": "500", "count": 2}, {"type": "401"}])
    sim.script(provider, [{"type": "429", "retry_after": 1}])  # a second script appends
    assert _outcomes(client, 5) == [500, 500, 401, 429, "ok"]


def test_scripted_faults_come_before_a_set_behaviour_which_then_stays(sim, client, provider):
    sim.set_behaviour(provider, {"type": "503"})
    sim.script(provider, ["400"])
    assert _outcomes(client, 3) == [400, 503, 503]


def test_faults_belong_to_one_provider_name(sim, client, provider):
    sim.script(f"{provider}-other", ["500"])
    assert _outcomes(client, 1) == ["ok"]


def test_rejected_requests_do_not_use_up_a_fault(sim, client, provider, raw_http):
    sim.script(provider, ["500"])
    url = f"{sim.base_url(provider)}/chat/completions"
    keyless = raw_http("POST", url, json.dumps({"model": "m", "messages": HELLO}).encode(), json_headers(None))
    invalid = raw_http("POST", url, json.dumps({"model": "m"}).encode(), json_headers())
    assert (keyless.status, invalid.status) == (401, 400)
    assert _outcomes(client, 2) == [500, "ok"]


def test_the_request_log_keeps_the_exact_body_including_unknown_parameters(sim, client, provider):
    client.chat.completions.create(
        model="sim-small", messages=HELLO, seed=4, extra_body={"foo_unknown": 1, "nested": {"a": [1, None]}}
    )
    client.models.list()
    first, second = sim.requests(provider)
    assert first["method"] == "POST" and first["path"] == f"/{provider}/v1/chat/completions"
    assert first["query"] == {}
    assert first["body"] == {
        "messages": HELLO,
        "model": "sim-small",
        "seed": 4,
        "foo_unknown": 1,
        "nested": {"a": [1, None]},
    }
    assert first["headers"]["authorization"].startswith("Bearer sk-sim-") and "Authorization" not in first["headers"]
    assert first["headers"]["content-type"] == "application/json"
    assert (second["method"], second["path"], second["body"]) == ("GET", f"/{provider}/v1/models", None)


def test_logged_requests_are_numbered_in_arrival_order_across_providers(sim, provider):
    with sdk_for(sim, f"{provider}-a") as a, sdk_for(sim, f"{provider}-b") as b:
        for api in (a, b, a):
            api.models.list()
    first, third = (r["seq"] for r in sim.requests(f"{provider}-a"))
    [second] = (r["seq"] for r in sim.requests(f"{provider}-b"))
    assert first < second < third


def test_the_request_log_records_refused_and_unparsable_requests_as_well(sim, provider, raw_http):
    raw_http("POST", f"{sim.base_url(provider)}/chat/completions", b"{oops", {"Content-Type": "application/json"})
    [logged] = sim.requests(provider)
    assert logged["body"] is None and "authorization" not in logged["headers"]


def test_resetting_a_provider_restores_its_startup_default_and_forgets_its_log(sim):
    name = "sim-broken"  # started as 500
    try:
        sim.set_behaviour(name, "ok")
        sim.script(name, ["429"])
        with sdk_for(sim, name) as api:
            assert _outcomes(api, 2) == [429, "ok"]
            assert len(sim.requests(name)) == 2
            sim.reset(name)
            assert sim.requests(name) == []
            assert _outcomes(api, 1) == [500]
    finally:
        sim.reset(name)


def test_resetting_everything_empties_every_queue_and_log(sim, provider):
    sim.script(provider, ["500"])
    sim.script(f"{provider}-b", ["500"])
    with sdk_for(sim, f"{provider}-b") as api:
        assert _outcomes(api, 1) == [500]
    sim.reset()
    assert sim.requests(f"{provider}-b") == []
    with sdk_for(sim, provider) as api:
        assert _outcomes(api, 1) == ["ok"]


def test_the_state_shows_the_default_the_queue_and_what_was_logged(sim, client, provider):
    sim.set_behaviour(provider, {"type": "429", "retry_after": 5})
    sim.script(provider, [{"type": "cut_stream", "after_chunks": 1, "count": 2}, "500"])
    with pytest.raises(openai.APIConnectionError):
        client.chat.completions.create(model="m", messages=HELLO)
    state = sim.state(provider)
    assert (state["default"]["type"], state["default"]["retry_after"]) == ("429", 5)
    assert [(f["type"], f["count"]) for f in state["queue"]] == [("cut_stream", 1), ("500", 1)]
    assert state["queue"][0]["after_chunks"] == 1
    assert (state["in_flight"], state["logged_requests"]) == (0, 1)


def test_health_answers_ok(sim, raw_http):
    response = raw_http("GET", f"{sim.url}/_sim/health")
    assert response.status == 200 and response.json() == {"status": "ok"}


@pytest.mark.parametrize(
    "fault",
    [
        {"type": "explode"},
        {"type": "429", "retry_afterr": 2},
        {"type": "429", "retry_after": -1},
        {"type": "429", "retry_after": "2"},
        {"type": "500", "count": 0},
        {"type": "cut_stream", "after_chunks": 1.5},
        {"count": 1},
    ],
    ids=["unknown-type", "misspelt-key", "negative", "string-number", "zero-count", "fractional-chunks", "no-type"],
)
def test_a_fault_the_simulator_cannot_follow_is_refused_and_queues_nothing(sim, client, provider, fault):
    with pytest.raises(SimulatorError, match="-> 400"):
        sim.script(provider, ["500", fault])
    with pytest.raises(SimulatorError, match="-> 400"):
        sim.set_behaviour(provider, fault)
    assert _outcomes(client, 1) == ["ok"]


def test_a_control_body_that_is_not_json_is_refused(sim, provider, raw_http):
    response = raw_http("POST", f"{sim.url}/_sim/{provider}/faults", b"faults please")
    assert response.status == 400 and "JSON" in response.json()["error"]
