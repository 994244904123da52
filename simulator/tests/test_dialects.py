"""One provider name speaks every dialect: the same reply, one fault queue, one request log, dialect-shaped 404s."""

from __future__ import annotations

import anthropic
import cohere
import openai
import pytest
from google.genai import errors

from .helpers import (
    API_KEY,
    anthropic_for,
    cohere_for,
    gemini_for,
    json_headers,
    provider_root,
    sdk_for,
)

pytestmark = [
    pytest.mark.filterwarnings("ignore:The `__fields__` attribute is deprecated"),
    pytest.mark.filterwarnings("ignore:Inheritance class AiohttpClientSession:DeprecationWarning"),
]


def _ask_each_dialect(sim, provider: str, text: str) -> dict[str, str]:
    """The reply text of `text` from the provider in each dialect, through each official SDK."""
    user = [{"role": "user", "content": text}]
    with (
        sdk_for(sim, provider) as openai_api,
        anthropic_for(sim, provider) as anthropic_api,
        gemini_for(sim, provider) as gemini_api,
        cohere_for(sim, provider) as cohere_api,
    ):
        return {
            "openai": openai_api.chat.completions.create(model="sim-small", messages=user).choices[0].message.content,
            "anthropic": anthropic_api.messages.create(model="sim-small", max_tokens=99, messages=user).content[0].text,
            "gemini": gemini_api.models.generate_content(model="sim-small", contents=text).text,
            "cohere": cohere_api.chat(model="sim-small", messages=user).message.content[0].text,
        }


def test_every_dialect_gives_the_same_reply_and_logs_in_arrival_order(sim, provider):
    assert set(_ask_each_dialect(sim, provider, "Hello there").values()) == {f"Hello from {provider} (sim-small)."}
    assert set(_ask_each_dialect(sim, provider, "echo: same words").values()) == {"same words"}
    logged = sim.requests(provider)
    assert [r["path"].removeprefix(f"/{provider}") for r in logged[:4]] == [
        "/v1/chat/completions",
        "/v1/messages",
        "/v1beta/models/sim-small:generateContent",
        "/v2/chat",
    ]
    assert [r["seq"] for r in logged] == sorted(r["seq"] for r in logged)
    assert all(set(r) == {"seq", "method", "path", "query", "headers", "body"} for r in logged)


def test_one_fault_queue_serves_every_dialect_in_turn(sim, provider):
    sim.script(provider, ["429", "500", "503"])
    with (
        anthropic_for(sim, provider) as anthropic_api,
        gemini_for(sim, provider) as gemini_api,
        cohere_for(sim, provider) as cohere_api,
    ):
        with pytest.raises(anthropic.RateLimitError):
            anthropic_api.messages.create(model="m", max_tokens=9, messages=[{"role": "user", "content": "x"}])
        with pytest.raises(errors.ServerError) as gemini_error:
            gemini_api.models.generate_content(model="m", contents="x")
        with pytest.raises(cohere.ServiceUnavailableError):
            cohere_api.chat(model="m", messages=[{"role": "user", "content": "x"}])
    assert gemini_error.value.code == 500
    assert sim.state(provider)["queue"] == []


def test_get_models_answers_anthropic_clients_in_their_shape_and_others_in_openais(sim, provider):
    with sdk_for(sim, provider) as openai_api, anthropic_for(sim, provider) as anthropic_api:
        openai_models = openai_api.models.list()
        anthropic_models = anthropic_api.models.list()
        assert openai_api.models.retrieve("sim-large").owned_by == provider
        assert anthropic_api.models.retrieve("sim-large").display_name == "Sim Large"
    assert [m.id for m in openai_models.data] == [m.id for m in anthropic_models.data]
    assert {m.object for m in openai_models.data} == {"model"} and {m.type for m in anthropic_models.data} == {"model"}
    assert (anthropic_models.has_more, anthropic_models.last_id) == (False, "sim-embed")


@pytest.mark.parametrize(
    ("path", "body"),
    [
        (
            "/v1/nowhere",
            {
                "error": {
                    "message": "Invalid URL (GET /v1/nowhere)",
                    "type": "invalid_request_error",
                    "param": None,
                    "code": None,
                }
            },
        ),
        (
            "/v1beta/nowhere",
            {"error": {"code": 404, "message": "Method not found: GET /v1beta/nowhere.", "status": "NOT_FOUND"}},
        ),
    ],
)
def test_an_unknown_route_is_a_404_in_the_shape_of_its_dialect(sim, provider, raw_http, path, body):
    response = raw_http("GET", f"{provider_root(sim, provider)}{path}", headers=json_headers())
    assert (response.status, response.json()) == (404, body)


def test_an_unknown_cohere_route_is_a_404_with_a_message(sim, provider, raw_http):
    response = raw_http("GET", f"{provider_root(sim, provider)}/v2/nowhere", headers=json_headers())
    assert (response.status, response.json()["message"]) == (404, "GET /v2/nowhere: not found")


def test_requests_refused_for_a_missing_key_use_up_no_fault_in_any_dialect(sim, provider, raw_http):
    sim.script(provider, ["500"])
    root, plain = provider_root(sim, provider), {"Content-Type": "application/json"}
    refused = [
        raw_http("POST", f"{root}/v1/messages", b"{}", plain),
        raw_http("POST", f"{root}/v1beta/models/m:generateContent", b"{}", plain),
        raw_http("POST", f"{root}/v2/chat", b"{}", plain),
    ]
    assert [r.status for r in refused] == [401, 403, 401]
    assert sim.state(provider)["queue"][0]["type"] == "500"


def test_a_stream_error_in_the_openai_dialect_is_an_error_chunk_the_sdk_raises(sim, provider):
    sim.script(provider, [{"type": "stream_error", "after_chunks": 1}])
    received = []
    with sdk_for(sim, provider) as api, pytest.raises(openai.APIError) as caught:
        for chunk in api.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "echo: one two"}], stream=True
        ):
            received.append(chunk.choices[0].delta.content)
    assert received == ["", "one"]
    assert caught.value.body == {
        "message": "The server had an error while processing your request.",
        "type": "server_error",
        "param": None,
        "code": None,
    }


def test_the_tests_cannot_reach_a_real_host(sim):
    with (
        anthropic.Anthropic(api_key=API_KEY, max_retries=0, timeout=2) as api,
        pytest.raises(anthropic.APIConnectionError) as caught,
    ):
        api.models.list()
    chain, error = [], caught.value
    while error is not None:
        chain.append(str(error))
        error = error.__cause__ or error.__context__
    assert any("the simulator tests reach loopback only, not 'api.anthropic.com'" in text for text in chain)
