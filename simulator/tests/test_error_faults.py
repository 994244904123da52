"""Faults that answer with an OpenAI error, raised by the SDK as its matching exception."""

from __future__ import annotations

import openai
import pytest

from .helpers import HELLO, sdk_for

RATE_LIMIT_HEADERS = {
    "x-ratelimit-limit-requests",
    "x-ratelimit-remaining-requests",
    "x-ratelimit-reset-requests",
    "x-ratelimit-limit-tokens",
    "x-ratelimit-remaining-tokens",
    "x-ratelimit-reset-tokens",
}


def test_a_429_raises_rate_limit_error_carrying_retry_after_and_ratelimit_headers(sim):
    with sdk_for(sim, "sim-ratelimited") as api, pytest.raises(openai.RateLimitError) as caught:
        api.chat.completions.create(model="sim-small", messages=HELLO)
    error = caught.value
    headers = error.response.headers
    assert headers["retry-after"] == "1"
    assert RATE_LIMIT_HEADERS <= set(headers.keys())
    assert headers["x-ratelimit-remaining-requests"] == "0" and headers["x-ratelimit-reset-requests"] == "1s"
    assert (error.code, error.type, error.param) == ("rate_limit_exceeded", "requests", None)
    message = error.body["message"]
    assert message.startswith("Rate limit reached") and message.endswith("Please try again in 1s.")


def test_a_429_default_with_retry_after_from_the_command_line(sim):
    with sdk_for(sim, "sim-ratelimited-3") as api, pytest.raises(openai.RateLimitError) as caught:
        api.chat.completions.create(model="m", messages=HELLO)
    assert caught.value.response.headers["retry-after"] == "3"


def test_a_scripted_429_reports_its_own_retry_after(sim, client, provider):
    sim.script(provider, [{"type": "429", "retry_after": 2.5}])
    with pytest.raises(openai.RateLimitError) as caught:
        client.chat.completions.create(model="m", messages=HELLO)
    headers = caught.value.response.headers
    assert headers["retry-after"] == "3"  # whole seconds, rounded up
    assert headers["x-ratelimit-reset-requests"] == "2.5s"
    assert caught.value.body["message"].endswith("Please try again in 2.5s.")


def test_the_sdks_own_retry_after_a_429_reaches_the_default_behaviour(sim, provider):
    sim.script(provider, [{"type": "429", "retry_after": 0}])
    with sdk_for(sim, provider, max_retries=1) as api:
        completion = api.chat.completions.create(model="m", messages=HELLO)
    assert completion.choices[0].message.content == f"Hello from {provider} (m)."
    assert len(sim.requests(provider)) == 2


@pytest.mark.parametrize(
    ("fault", "exception", "status", "error_type", "code", "param"),
    [
        ("500", openai.InternalServerError, 500, "server_error", None, None),
        ("503", openai.InternalServerError, 503, "service_unavailable", None, None),
        ("401", openai.AuthenticationError, 401, "invalid_request_error", "invalid_api_key", None),
        ("400", openai.BadRequestError, 400, "invalid_request_error", "invalid_value", "temperature"),
        ("context_length", openai.BadRequestError, 400, "invalid_request_error", "context_length_exceeded", "messages"),
    ],
)
def test_an_error_fault_raises_the_sdks_matching_exception(
    sim, client, provider, fault, exception, status, error_type, code, param
):
    sim.script(provider, [fault])
    with pytest.raises(exception) as caught:
        client.chat.completions.create(model="m", messages=HELLO)
    error = caught.value
    assert (error.status_code, error.type, error.code, error.param) == (status, error_type, code, param)
    assert error.message


def test_a_startup_default_from_the_command_line_applies_to_every_request(sim):
    with sdk_for(sim, "sim-broken") as api:
        for _ in range(2):
            with pytest.raises(openai.InternalServerError):
                api.chat.completions.create(model="m", messages=HELLO)


def test_an_error_fault_refuses_a_stream_before_it_starts(sim, client, provider):
    sim.script(provider, [{"type": "429"}])
    with pytest.raises(openai.RateLimitError):
        client.chat.completions.create(model="m", messages=HELLO, stream=True)


def test_error_faults_also_apply_to_models_and_embeddings(sim, client, provider):
    sim.script(provider, ["500", "503"])
    with pytest.raises(openai.InternalServerError):
        client.models.list()
    with pytest.raises(openai.InternalServerError):
        client.embeddings.create(model="sim-embed", input="x")
