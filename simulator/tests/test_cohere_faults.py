"""Scripted faults in the Cohere dialect: {"id", "message"} errors, the SDK's error classes, broken streams."""

from __future__ import annotations

import logging

import cohere
import httpx
import pytest
from cohere.core.api_error import ApiError

from .helpers import cohere_for, collect, wait_until_idle

pytestmark = pytest.mark.filterwarnings("ignore:The `__fields__` attribute is deprecated")
HELLO = [{"role": "user", "content": "Hello there"}]
ECHO_FIVE = [{"role": "user", "content": "echo: one two three four five"}]


def _chat(api, messages=HELLO):
    return api.chat(model="sim-small", messages=messages)


def _text(events) -> str:
    return "".join(e.delta.message.content.text for e in events if e.type == "content-delta")


def test_a_429_is_too_many_requests_with_retry_after(sim, cohere_client, provider):
    sim.script(provider, [{"type": "429", "retry_after": 2.5}])
    with pytest.raises(cohere.TooManyRequestsError) as caught:
        _chat(cohere_client)
    error = caught.value
    assert error.status_code == 429 and error.headers["retry-after"] == "3"  # whole seconds, rounded up
    assert error.body["message"] == "You are past the per minute request limit, please wait and try again later."
    assert len(sim.requests(provider)) == 1


@pytest.mark.parametrize(
    ("fault", "exception", "status", "message"),
    [
        ("500", cohere.InternalServerError, 500, "internal server error, this has been reported to our developers"),
        ("503", cohere.ServiceUnavailableError, 503, "service unavailable, please try again later"),
        ("401", cohere.UnauthorizedError, 401, "invalid api token"),
        (
            "400",
            cohere.BadRequestError,
            400,
            "invalid request: cannot specify both frequency_penalty and presence_penalty.",
        ),
        (
            "context_length",
            cohere.BadRequestError,
            400,
            "too many tokens: total number of tokens in the prompt cannot exceed 4081 - received 4292. Try using a "
            "shorter prompt, or enabling prompt truncating. See https://docs.cohere.com/reference/generate for more "
            "details.",
        ),
    ],
)
def test_an_error_fault_raises_the_sdks_error_for_its_status(
    sim, cohere_client, provider, fault, exception, status, message
):
    sim.script(provider, [fault])
    with pytest.raises(exception) as caught:
        _chat(cohere_client)
    assert (caught.value.status_code, caught.value.body["message"]) == (status, message)


def test_an_error_fault_refuses_a_stream_before_it_starts(sim, cohere_client, provider):
    sim.script(provider, ["429"])
    received, error = collect(cohere_client.chat_stream(model="m", messages=HELLO))
    assert received == [] and isinstance(error, cohere.TooManyRequestsError)


def test_a_stream_error_ends_the_stream_with_an_error_finish_after_n_deltas(sim, cohere_client, provider):
    sim.script(provider, [{"type": "stream_error", "after_chunks": 2}])
    received, error = collect(cohere_client.chat_stream(model="m", messages=ECHO_FIVE))
    assert error is None  # the SDK hands the failure over as the last event rather than raising
    assert _text(received) == "one two"
    end = received[-1]
    assert (end.type, end.delta.finish_reason) == ("message-end", "ERROR")
    assert end.delta.error == "internal server error, this has been reported to our developers"


def test_a_stream_error_fault_on_a_whole_chat_is_service_unavailable(sim, cohere_client, provider):
    sim.script(provider, ["stream_error"])
    with pytest.raises(cohere.ServiceUnavailableError):
        _chat(cohere_client)


def test_a_cut_stream_drops_the_connection_after_n_deltas_never_the_message_end(sim, cohere_client, provider):
    sim.script(provider, [{"type": "cut_stream", "after_chunks": 2}, {"type": "cut_stream", "after_chunks": 50}])
    received, error = collect(cohere_client.chat_stream(model="m", messages=ECHO_FIVE))
    assert isinstance(error, httpx.RemoteProtocolError) and _text(received) == "one two"
    received, error = collect(cohere_client.chat_stream(model="m", messages=ECHO_FIVE))
    assert isinstance(error, httpx.RemoteProtocolError)
    assert [e.type for e in received][-1] == "content-end" and _text(received) == "one two three four five"


def test_a_cut_stream_fault_truncates_a_whole_chat(sim, cohere_client, provider):
    sim.script(provider, ["cut_stream"])
    with pytest.raises(httpx.RemoteProtocolError):
        _chat(cohere_client)


def test_a_malformed_chat_is_an_sdk_api_error_with_status_200(sim, cohere_client, provider):
    sim.script(provider, ["malformed_json"])
    with pytest.raises(ApiError) as caught:
        _chat(cohere_client)
    assert caught.value.status_code == 200 and caught.value.body.startswith('{"id": "sim-broken"')


def test_a_malformed_stream_event_is_logged_and_its_text_lost_by_the_sdk(sim, cohere_client, provider, caplog):
    sim.script(provider, ["malformed_json"])
    with caplog.at_level(logging.WARNING):
        received, error = collect(cohere_client.chat_stream(model="m", messages=ECHO_FIVE))
    assert error is None and received[-1].delta.finish_reason == "COMPLETE"
    assert _text(received) == " two three four five"  # the first delta did not parse and the SDK skipped it
    assert any("Failed to parse SSE data field as JSON" in record.getMessage() for record in caplog.records)


def test_a_hang_trips_the_client_timeout_and_ends_when_the_client_leaves(sim, provider):
    sim.script(provider, ["hang"])
    with cohere_for(sim, provider, timeout=0.3) as api, pytest.raises(httpx.ReadTimeout):
        _chat(api)
    assert wait_until_idle(sim, provider) == 0
