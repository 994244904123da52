"""Scripted faults in the Gemini dialect: google.rpc errors (RESOURCE_EXHAUSTED with RetryInfo, ...), broken streams."""

from __future__ import annotations

import json

import httpx2
import pytest
from google.genai import errors
from google.genai import types as genai_types

from .helpers import collect, gemini_for, wait_until_idle

ECHO_FIVE = "echo: one two three four five"
RPC = "type.googleapis.com/google.rpc."


def _generate(api, contents: str = "Hello there"):
    return api.models.generate_content(model="sim-small", contents=contents)


def _stream(api, contents: str = ECHO_FIVE):
    return api.models.generate_content_stream(model="sim-small", contents=contents)


def _details(error: errors.APIError) -> dict[str, dict]:
    return {detail["@type"].removeprefix(RPC): detail for detail in error.details["error"].get("details", [])}


def test_a_429_is_resource_exhausted_with_quota_failure_and_retry_info(sim, gemini_client, provider):
    sim.script(provider, [{"type": "429", "retry_after": 2.5}])
    with pytest.raises(errors.ClientError) as caught:
        _generate(gemini_client)
    error = caught.value
    assert (error.code, error.status) == (429, "RESOURCE_EXHAUSTED")
    assert error.message.startswith("You exceeded your current quota") and error.message.endswith(
        "\nPlease retry in 2.5s."
    )
    details = _details(error)
    assert set(details) == {"QuotaFailure", "Help", "RetryInfo"}
    assert details["RetryInfo"]["retryDelay"] == "2s"  # whole seconds, rounded down, as Google sends it
    [violation] = details["QuotaFailure"]["violations"]
    assert violation["quotaId"] == "GenerateRequestsPerMinutePerProjectPerModel-FreeTier"
    assert violation["quotaDimensions"] == {"location": "global", "model": "sim-small"}
    assert "retry-after" not in error.response.headers  # the Gemini API documents no rate-limit headers
    assert len(sim.requests(provider)) == 1  # without retry_options the SDK does not retry


def test_the_sdks_retry_options_retry_a_429_into_the_default_behaviour(sim, provider):
    retry = genai_types.HttpRetryOptions(attempts=2, initial_delay=0, max_delay=0, jitter=0, http_status_codes=[429])
    sim.script(provider, ["429"])
    with gemini_for(sim, provider, retry_options=retry) as api:
        assert _generate(api).text == f"Hello from {provider} (sim-small)."
    assert len(sim.requests(provider)) == 2


@pytest.mark.parametrize(
    ("fault", "exception", "code", "status", "message"),
    [
        (
            "500",
            errors.ServerError,
            500,
            "INTERNAL",
            "An internal error has occurred. Please retry or report in "
            "https://developers.generativeai.google/guide/troubleshooting",
        ),
        ("503", errors.ServerError, 503, "UNAVAILABLE", "The model is overloaded. Please try again later."),
        ("401", errors.ClientError, 400, "INVALID_ARGUMENT", "API key not valid. Please pass a valid API key."),
        (
            "400",
            errors.ClientError,
            400,
            "INVALID_ARGUMENT",
            "Invalid value at 'generation_config.temperature': must be between 0.0 and 2.0.",
        ),
        (
            "context_length",
            errors.ClientError,
            400,
            "INVALID_ARGUMENT",
            "The input token count (1200000) exceeds the maximum number of tokens allowed (1048576).",
        ),
    ],
)
def test_an_error_fault_raises_the_sdks_error_with_its_code_and_status(
    sim, gemini_client, provider, fault, exception, code, status, message
):
    sim.script(provider, [fault])
    with pytest.raises(exception) as caught:
        _generate(gemini_client)
    assert (caught.value.code, caught.value.status, caught.value.message) == (code, status, message)


def test_a_bad_key_is_a_400_with_the_api_key_invalid_reason(sim, gemini_client, provider):
    sim.script(provider, ["401"])
    with pytest.raises(errors.ClientError) as caught:
        _generate(gemini_client)
    info = _details(caught.value)["ErrorInfo"]
    assert (info["reason"], info["domain"]) == ("API_KEY_INVALID", "googleapis.com")


def test_an_error_fault_refuses_a_stream_before_it_starts_and_applies_to_the_models_list(sim, gemini_client, provider):
    sim.script(provider, ["429", "503"])
    received, error = collect(_stream(gemini_client))
    assert received == [] and isinstance(error, errors.ClientError) and error.code == 429
    with pytest.raises(errors.ServerError):
        list(gemini_client.models.list())


def test_a_stream_error_sends_an_error_chunk_after_n_chunks(sim, gemini_client, provider):
    sim.script(provider, [{"type": "stream_error", "after_chunks": 2}])
    received, error = collect(_stream(gemini_client))
    assert [c.text for c in received] == ["one", " two"]
    assert type(error) is errors.ServerError
    assert (error.code, error.status, error.message) == (
        503,
        "UNAVAILABLE",
        "The model is overloaded. Please try again later.",
    )


def test_a_cut_stream_drops_the_connection_after_n_chunks_never_the_finishing_one(sim, gemini_client, provider):
    sim.script(provider, [{"type": "cut_stream", "after_chunks": 2}, {"type": "cut_stream", "after_chunks": 50}])
    received, error = collect(_stream(gemini_client))
    assert isinstance(error, httpx2.RemoteProtocolError) and [c.text for c in received] == ["one", " two"]
    received, error = collect(_stream(gemini_client))
    assert isinstance(error, httpx2.RemoteProtocolError)
    assert "".join(c.text for c in received) == "one two three four"  # the last word came with finishReason
    assert all(c.candidates[0].finish_reason is None for c in received)


def test_a_cut_stream_fault_truncates_a_whole_response(sim, gemini_client, provider):
    sim.script(provider, ["cut_stream"])
    with pytest.raises(httpx2.RemoteProtocolError):
        _generate(gemini_client)


def test_malformed_json_makes_the_sdk_raise_for_a_response_and_for_a_stream(sim, gemini_client, provider):
    sim.script(provider, ["malformed_json", "malformed_json"])
    with pytest.raises(json.JSONDecodeError):
        _generate(gemini_client)
    received, error = collect(_stream(gemini_client))
    assert received == [] and isinstance(error, errors.UnknownApiResponseError)


def test_a_hang_trips_the_client_timeout_and_ends_when_the_client_leaves(sim, provider):
    sim.script(provider, ["hang"])
    with gemini_for(sim, provider, timeout_s=0.3) as api, pytest.raises(httpx2.ReadTimeout):
        _generate(api)
    assert wait_until_idle(sim, provider) == 0
