"""Scripted faults in the Anthropic dialect: its error types and statuses, rate-limit headers, broken streams."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import anthropic
import httpx2
import pytest

from .helpers import anthropic_for, collect, wait_until_idle

HELLO = [{"role": "user", "content": "Hello there"}]
ECHO_FIVE = [{"role": "user", "content": "echo: one two three four five"}]
LIMITED = ("requests", "tokens", "input-tokens", "output-tokens")


def _create(api: anthropic.Anthropic, **options):
    return api.messages.create(model="sim-small", max_tokens=50, messages=options.pop("messages", HELLO), **options)


def test_a_429_is_a_rate_limit_error_with_retry_after_and_rfc3339_resets(sim, anthropic_client, provider):
    sim.script(provider, [{"type": "429", "retry_after": 2.5}])
    before = datetime.now(UTC).replace(microsecond=0)
    with pytest.raises(anthropic.RateLimitError) as caught:
        _create(anthropic_client)
    after = datetime.now(UTC)
    error, headers = caught.value, caught.value.response.headers
    assert (error.status_code, error.body["error"]["type"]) == (429, "rate_limit_error")
    assert error.body["error"]["message"].startswith("This request would exceed the rate limit")
    assert headers["retry-after"] == "3"  # whole seconds, rounded up
    assert error.request_id == headers["request-id"] == error.body["request_id"]
    assert {
        f"anthropic-ratelimit-{kind}-{part}" for kind in LIMITED for part in ("limit", "remaining", "reset")
    } <= set(headers.keys())
    assert (headers["anthropic-ratelimit-requests-limit"], headers["anthropic-ratelimit-requests-remaining"]) == (
        "50",
        "0",
    )
    reset = datetime.strptime(headers["anthropic-ratelimit-requests-reset"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    assert before + timedelta(seconds=3) <= reset <= after + timedelta(seconds=3)
    assert len({headers[f"anthropic-ratelimit-{kind}-reset"] for kind in LIMITED}) == 1


def test_the_sdks_own_retry_after_a_429_reaches_the_default_behaviour(sim, provider):
    sim.script(provider, [{"type": "429", "retry_after": 0}])
    with anthropic_for(sim, provider, max_retries=1) as api:
        assert _create(api).content[0].text == f"Hello from {provider} (sim-small)."
    assert len(sim.requests(provider)) == 2


@pytest.mark.parametrize(
    ("fault", "exception", "status", "error_type", "message"),
    [
        ("500", anthropic.InternalServerError, 500, "api_error", "Internal server error"),
        ("503", anthropic.OverloadedError, 529, "overloaded_error", "Overloaded"),
        ("401", anthropic.AuthenticationError, 401, "authentication_error", "invalid x-api-key"),
        ("400", anthropic.BadRequestError, 400, "invalid_request_error", "temperature: range: 0..1"),
        (
            "context_length",
            anthropic.BadRequestError,
            400,
            "invalid_request_error",
            "prompt is too long: 209541 tokens > 200000 maximum",
        ),
    ],
)
def test_an_error_fault_raises_the_sdks_exception_for_its_status_and_type(
    sim, anthropic_client, provider, fault, exception, status, error_type, message
):
    sim.script(provider, [fault])
    with pytest.raises(exception) as caught:
        _create(anthropic_client)
    assert type(caught.value) is exception
    assert (caught.value.status_code, caught.value.body["error"]) == (status, {"type": error_type, "message": message})


def test_overloaded_529_is_an_internal_server_error_to_the_sdk(sim, anthropic_client, provider):
    sim.script(provider, ["503"])
    with pytest.raises(anthropic.InternalServerError) as caught:
        _create(anthropic_client)
    assert caught.value.status_code == 529


def test_an_error_fault_refuses_a_stream_before_it_starts_and_applies_to_the_models_list(
    sim, anthropic_client, provider
):
    sim.script(provider, ["429", "500"])
    with pytest.raises(anthropic.RateLimitError):
        _create(anthropic_client, stream=True)
    with pytest.raises(anthropic.InternalServerError):
        anthropic_client.models.list()


def test_a_stream_error_sends_an_overloaded_error_event_after_n_deltas(sim, anthropic_client, provider):
    sim.script(provider, [{"type": "stream_error", "after_chunks": 2}])
    received, error = collect(_create(anthropic_client, messages=ECHO_FIVE, stream=True))
    assert [e.delta.text for e in received if e.type == "content_block_delta"] == ["one", " two"]
    assert type(error) is anthropic.APIStatusError  # raised by the SDK from the `event: error` of a 200 stream
    assert error.body == {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}


def test_a_stream_error_fault_on_a_whole_message_is_overloaded(sim, anthropic_client, provider):
    sim.script(provider, ["stream_error"])
    with pytest.raises(anthropic.OverloadedError):
        _create(anthropic_client)


def test_a_cut_stream_drops_the_connection_after_the_opening_events_and_n_deltas(sim, anthropic_client, provider):
    sim.script(provider, [{"type": "cut_stream", "after_chunks": 2}])
    with anthropic_client.messages.stream(model="m", max_tokens=50, messages=ECHO_FIVE) as stream:
        received, error = collect(stream)
        assert stream.current_message_snapshot.content[0].text == "one two"
    assert isinstance(error, httpx2.RemoteProtocolError)
    assert [e.text for e in received if e.type == "text"] == ["one", " two"]


def test_a_late_cut_still_never_delivers_the_message_delta(sim, anthropic_client, provider):
    sim.script(provider, [{"type": "cut_stream", "after_chunks": 50}])
    received, error = collect(_create(anthropic_client, messages=ECHO_FIVE, stream=True))
    assert isinstance(error, httpx2.RemoteProtocolError)
    assert [e.type for e in received][-1] == "content_block_stop"
    assert "".join(e.delta.text for e in received if e.type == "content_block_delta") == "one two three four five"


def test_a_cut_stream_fault_truncates_a_whole_message(sim, anthropic_client, provider):
    sim.script(provider, ["cut_stream"])
    with pytest.raises(anthropic.APIConnectionError):
        _create(anthropic_client)


def test_malformed_json_makes_the_sdk_raise_for_a_message_and_mid_stream(sim, anthropic_client, provider):
    sim.script(provider, ["malformed_json", "malformed_json"])
    with pytest.raises(json.JSONDecodeError):
        _create(anthropic_client)
    received, error = collect(_create(anthropic_client, stream=True))
    assert isinstance(error, json.JSONDecodeError)
    assert [e.type for e in received] == ["message_start", "content_block_start"]  # the first delta did not parse


def test_a_hang_trips_the_client_timeout_and_ends_when_the_client_leaves(sim, provider):
    sim.script(provider, ["hang"])
    with anthropic_for(sim, provider, timeout=0.3) as api, pytest.raises(anthropic.APITimeoutError):
        _create(api)
    assert wait_until_idle(sim, provider) == 0
