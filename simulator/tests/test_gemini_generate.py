"""The Gemini API (`/<name>/v1beta/models/...`) as the official google-genai SDK sees it."""

from __future__ import annotations

from itertools import islice

import pytest
from google.genai import errors
from google.genai import types as genai_types

from .helpers import API_KEY, gemini_for, json_body, provider_root

# google-genai's async client subclasses aiohttp's ClientSession, which aiohttp warns about.
pytestmark = pytest.mark.filterwarnings("ignore:Inheritance class AiohttpClientSession:DeprecationWarning")

WEATHER = genai_types.FunctionDeclaration(
    name="get_weather",
    description="Weather in a city",
    parameters=genai_types.Schema(
        type="OBJECT",
        properties={"city": {"type": "STRING"}, "unit": {"type": "STRING"}, "days": {"type": "INTEGER"}},
        required=["city", "unit"],
    ),
)
TIME = genai_types.FunctionDeclaration(
    name="get_time",
    parameters_json_schema={"type": "object", "properties": {"zone": {"type": "string"}}, "required": ["zone"]},
)
TOOLS = [genai_types.Tool(function_declarations=[WEATHER, TIME])]


def _config(**options) -> genai_types.GenerateContentConfig:
    return genai_types.GenerateContentConfig(**options)


def test_generate_content_says_hello_with_stop_and_usage_metadata(gemini_client, provider):
    response = gemini_client.models.generate_content(
        model="sim-small", contents="Hello there", config=_config(system_instruction="Be brief.")
    )
    assert response.text == f"Hello from {provider} (sim-small)."
    [candidate] = response.candidates
    assert (candidate.content.role, candidate.finish_reason, candidate.index) == ("model", "STOP", 0)
    usage = response.usage_metadata
    assert (usage.prompt_token_count, usage.candidates_token_count, usage.total_token_count) == (4, 4, 8)
    assert response.model_version == "sim-small" and response.response_id


async def test_the_async_client_echoes_the_last_user_turn(gemini_client):
    response = await gemini_client.aio.models.generate_content(
        model="sim-large",
        contents=[
            genai_types.Content(role="user", parts=[genai_types.Part(text="echo: first")]),
            genai_types.Content(role="model", parts=[genai_types.Part(text="first")]),
            genai_types.Content(role="user", parts=[genai_types.Part(text="echo: two  spaces")]),
        ],
    )
    assert response.text == "two  spaces" and response.usage_metadata.candidates_token_count == 2


def test_max_output_tokens_cuts_the_reply_with_max_tokens(gemini_client):
    response = gemini_client.models.generate_content(
        model="m", contents="echo: one two three four", config=_config(max_output_tokens=2)
    )
    assert (response.text, response.candidates[0].finish_reason) == ("one two", "MAX_TOKENS")
    assert response.usage_metadata.candidates_token_count == 2


def test_a_stop_sequence_ends_the_reply_before_it(gemini_client):
    response = gemini_client.models.generate_content(
        model="m", contents="echo: one two STOP three", config=_config(stop_sequences=["STOP"])
    )
    assert (response.text, response.candidates[0].finish_reason) == ("one two ", "STOP")


def test_function_declarations_get_one_call_of_the_first_with_required_args_set(gemini_client):
    response = gemini_client.models.generate_content(model="m", contents="Hello there", config=_config(tools=TOOLS))
    [call] = response.function_calls
    assert (call.name, call.args) == ("get_weather", {"city": "sim", "unit": "sim"})
    assert response.candidates[0].finish_reason == "STOP" and response.text is None


@pytest.mark.parametrize(
    ("calling", "expected"),
    [
        (
            genai_types.FunctionCallingConfig(mode="ANY", allowed_function_names=["get_time"]),
            ("get_time", {"zone": "sim"}),
        ),
        (genai_types.FunctionCallingConfig(mode="NONE"), None),
    ],
)
def test_the_function_calling_config_picks_the_allowed_function_or_none(gemini_client, calling, expected):
    response = gemini_client.models.generate_content(
        model="m",
        contents="Hello there",
        config=_config(tools=TOOLS, tool_config=genai_types.ToolConfig(function_calling_config=calling)),
    )
    calls = response.function_calls
    assert ((calls[0].name, calls[0].args) if calls else None) == expected


def test_the_request_log_shows_the_camel_case_body_and_the_key_header(sim, gemini_client, provider):
    gemini_client.models.generate_content(
        model="sim-small", contents="Hello there", config=_config(system_instruction="sys", max_output_tokens=9)
    )
    [logged] = sim.requests(provider)
    assert (logged["method"], logged["path"]) == ("POST", f"/{provider}/v1beta/models/sim-small:generateContent")
    assert logged["headers"]["x-goog-api-key"] == API_KEY and "authorization" not in logged["headers"]
    assert logged["body"]["contents"] == [{"role": "user", "parts": [{"text": "Hello there"}]}]
    assert logged["body"]["systemInstruction"]["parts"] == [{"text": "sys"}]
    assert logged["body"]["generationConfig"] == {"maxOutputTokens": 9}


def test_the_key_may_come_in_the_query_and_without_one_the_caller_is_unregistered(sim, provider, raw_http):
    url = f"{provider_root(sim, provider)}/v1beta/models/sim-small:generateContent"
    body = json_body({"contents": [{"parts": [{"text": "echo: by query"}]}]})
    by_query = raw_http("POST", f"{url}?key={API_KEY}", body, {"Content-Type": "application/json"})
    assert by_query.json()["candidates"][0]["content"]["parts"] == [{"text": "by query"}]
    assert sim.requests(provider)[-1]["query"] == {"key": API_KEY}
    keyless = raw_http("POST", url, body, {"Content-Type": "application/json"})
    assert keyless.status == 403 and keyless.json()["error"]["status"] == "PERMISSION_DENIED"
    assert keyless.json()["error"]["message"].startswith("Method doesn't allow unregistered callers")


def test_an_empty_key_from_the_sdk_is_refused_as_permission_denied(sim, provider):
    with gemini_for(sim, provider, headers={"x-goog-api-key": ""}) as api, pytest.raises(errors.ClientError) as caught:
        api.models.generate_content(model="m", contents="Hello there")
    assert (caught.value.code, caught.value.status) == (403, "PERMISSION_DENIED")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"contents": []}, "* GenerateContentRequest.contents: contents is not specified\n"),
        ({"contents": [{"role": "assistant", "parts": [{"text": "x"}]}]}, "Please use a valid role: user, model."),
        (
            {"contents": [{"parts": [{"text": "x"}]}], "generationConfig": {"maxOutputTokens": 0}},
            "* GenerateContentRequest.generation_config.max_output_tokens: must be positive.\n",
        ),
    ],
)
def test_a_body_the_api_would_refuse_is_invalid_argument(sim, provider, raw_http, body, message):
    response = raw_http(
        "POST",
        f"{provider_root(sim, provider)}/v1beta/models/m:generateContent",
        json_body(body),
        {"Content-Type": "application/json", "x-goog-api-key": API_KEY},
    )
    assert (response.status, response.json()) == (
        400,
        {"error": {"code": 400, "message": message, "status": "INVALID_ARGUMENT"}},
    )


def test_the_api_also_reads_snake_case_field_names(sim, provider, raw_http):
    body = {
        "contents": [{"role": "user", "parts": [{"text": "echo: one two three"}]}],
        "system_instruction": {"parts": [{"text": "Be brief."}]},
        "generation_config": {"max_output_tokens": 2},
    }
    response = raw_http(
        "POST",
        f"{provider_root(sim, provider)}/v1beta/models/m:generateContent",
        json_body(body),
        {"Content-Type": "application/json", "x-goog-api-key": API_KEY},
    ).json()
    assert response["candidates"][0]["content"]["parts"] == [{"text": "one two"}]
    assert (response["candidates"][0]["finishReason"], response["usageMetadata"]["promptTokenCount"]) == (
        "MAX_TOKENS",
        6,  # "Be brief." and "echo: one two three"
    )


def test_streaming_without_alt_sse_and_unknown_methods_are_refused(sim, provider, raw_http):
    base, headers = f"{provider_root(sim, provider)}/v1beta/models", {"x-goog-api-key": API_KEY}
    body = json_body({"contents": [{"parts": [{"text": "x"}]}]})
    unsse = raw_http("POST", f"{base}/m:streamGenerateContent", body, headers)
    assert (unsse.status, unsse.json()["error"]["status"]) == (400, "INVALID_ARGUMENT")
    unknown = raw_http("POST", f"{base}/m:predictTheFuture", body, headers)
    assert (unknown.status, unknown.json()["error"]["status"]) == (404, "NOT_FOUND")


def test_the_models_list_pages_by_token_as_the_sdk_pager_follows(sim, gemini_client, provider):
    models = list(islice(gemini_client.models.list(config={"page_size": 2}), 5))  # bounded, should paging break
    assert [m.name for m in models] == ["models/sim-small", "models/sim-large", "models/sim-embed"]
    small, embed = models[0], models[2]
    assert (small.display_name, small.input_token_limit, small.output_token_limit) == ("Sim Small", 8192, 2048)
    assert small.supported_actions == ["generateContent", "countTokens"] and embed.supported_actions == ["embedContent"]
    assert [r["query"] for r in sim.requests(provider)] == [{"pageSize": "2"}, {"pageSize": "2", "pageToken": "2"}]


def test_a_model_is_got_by_name_and_an_unknown_one_is_not_found(gemini_client):
    assert gemini_client.models.get(model="sim-large").output_token_limit == 8192
    with pytest.raises(errors.ClientError) as caught:
        gemini_client.models.get(model="nope")
    assert (caught.value.code, caught.value.status) == (404, "NOT_FOUND")
