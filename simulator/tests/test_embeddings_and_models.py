"""Embeddings (base64 by default in the SDK, float on request) and the model list."""

from __future__ import annotations

import json
import math

import openai
import pytest

from .helpers import json_headers


def test_the_model_list_has_the_fixed_ids_owned_by_the_provider(client, provider):
    models = list(client.models.list())
    assert [m.id for m in models] == ["sim-small", "sim-large", "sim-embed"]
    assert {(m.object, m.owned_by) for m in models} == {("model", provider)}
    assert all(isinstance(m.created, int) for m in models)


def test_one_model_can_be_retrieved_and_an_unknown_one_is_a_404(client):
    assert client.models.retrieve("sim-large").id == "sim-large"
    with pytest.raises(openai.NotFoundError) as caught:
        client.models.retrieve("gpt-nope")
    assert caught.value.code == "model_not_found"


def test_default_embeddings_travel_as_base64_and_the_sdk_decodes_them(sim, client, provider):
    raw = client.embeddings.with_raw_response.create(model="sim-embed", input=["alpha", "beta gamma"])
    wire = json.loads(raw.http_response.content)
    assert all(isinstance(item["embedding"], str) for item in wire["data"])  # base64 on the wire
    assert sim.requests(provider)[-1]["body"]["encoding_format"] == "base64"  # because the SDK asked for it
    parsed = raw.parse()
    assert [item.index for item in parsed.data] == [0, 1]
    for item in parsed.data:
        assert len(item.embedding) == 8 and math.hypot(*item.embedding) == pytest.approx(1.0, abs=1e-5)
    assert parsed.data[0].embedding != parsed.data[1].embedding
    assert (parsed.usage.prompt_tokens, parsed.usage.total_tokens) == (3, 3)
    assert parsed.model == "sim-embed" and parsed.object == "list"


def test_float_embeddings_are_the_same_vectors_as_the_base64_ones(client):
    raw = client.embeddings.with_raw_response.create(model="sim-embed", input="alpha", encoding_format="float")
    as_float = raw.parse().data[0].embedding
    assert all(isinstance(value, float) for value in json.loads(raw.http_response.content)["data"][0]["embedding"])
    as_base64 = client.embeddings.create(model="sim-embed", input="alpha").data[0].embedding
    assert as_float == pytest.approx(as_base64, abs=1e-6)


def test_embeddings_are_deterministic_per_text_and_honour_dimensions(client):
    first = client.embeddings.create(model="sim-embed", input="same text", dimensions=16)
    again = client.embeddings.create(model="sim-embed", input=["other", "same text"], dimensions=16)
    assert len(first.data[0].embedding) == 16
    assert again.data[1].embedding == first.data[0].embedding
    assert again.data[0].embedding != first.data[0].embedding


def test_token_array_inputs_are_embedded_and_counted_per_token(client):
    result = client.embeddings.create(model="sim-embed", input=[[1, 2, 3], [4, 5]], encoding_format="float")
    assert len(result.data) == 2 and result.usage.prompt_tokens == 5


@pytest.mark.parametrize(
    "body",
    [
        {"model": "sim-embed"},
        {"model": "sim-embed", "input": ""},
        {"model": "sim-embed", "input": "x", "dimensions": 0},
    ],
    ids=["without-input", "empty-input", "zero-dimensions"],
)
def test_an_embedding_request_openai_would_refuse_is_a_400(sim, provider, raw_http, body):
    response = raw_http("POST", f"{sim.base_url(provider)}/embeddings", json.dumps(body).encode(), json_headers())
    assert response.status == 400 and response.json()["error"]["type"] == "invalid_request_error"
