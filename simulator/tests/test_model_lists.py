"""Each provider's model list is scriptable: models added and taken off show in every dialect's list (and the
SDKs read them), a model taken off answers 404, a model can be made to answer 410; OpenRouter's own routes."""

from __future__ import annotations

import json

import anthropic
import cohere
import openai
import pytest
from google.genai import errors as genai_errors

from llmagg_devstack import SimulatorError

from .helpers import API_KEY

HELLO = [{"role": "user", "content": "hi"}]


def test_a_model_added_and_one_taken_off_show_in_every_dialect(
    sim, provider, client, anthropic_client, gemini_client, cohere_client
):
    sim.add_model(provider, {"id": "sim-new", "context_length": 65536})
    sim.remove_model(provider, "sim-large")
    expected = ["sim-small", "sim-embed", "sim-new"]
    assert [m.id for m in client.models.list()] == expected
    assert [m.id for m in anthropic_client.models.list()] == expected
    assert [m.name.removeprefix("models/") for m in gemini_client.models.list()] == expected
    listed = cohere_client.models.list()
    assert [m.name for m in listed.models] == expected
    assert [m.context_length for m in listed.models][-1] == 65536
    assert sim.state(provider)["removed"] == ["sim-large"]


def test_a_model_taken_off_answers_404_in_its_dialect_and_a_new_one_answers(sim, provider, client, anthropic_client):
    sim.set_models(provider, ["sim-small", "sim-new"])
    with pytest.raises(openai.NotFoundError) as caught:
        client.chat.completions.create(model="sim-large", messages=HELLO)
    assert caught.value.code == "model_not_found"
    with pytest.raises(anthropic.NotFoundError):
        anthropic_client.messages.create(model="sim-large", max_tokens=5, messages=HELLO)
    reply = client.chat.completions.create(model="sim-new", messages=HELLO)
    assert reply.choices[0].message.content == f"Hello from {provider} (sim-new)."


def test_a_model_made_to_answer_410_does_so_in_every_dialect_and_others_are_untouched(
    sim, provider, client, anthropic_client, gemini_client, cohere_client
):
    sim.set_model_behaviour(provider, "sim-large", "410")
    with pytest.raises(openai.APIStatusError) as caught:
        client.chat.completions.create(model="sim-large", messages=HELLO)
    assert (caught.value.status_code, caught.value.code) == (410, "model_not_found")
    with pytest.raises(anthropic.APIStatusError) as claude:
        anthropic_client.messages.create(model="sim-large", max_tokens=5, messages=HELLO)
    assert claude.value.status_code == 410
    with pytest.raises(genai_errors.ClientError) as gemini:
        gemini_client.models.generate_content(model="sim-large", contents="hi")
    assert gemini.value.code == 410
    with pytest.raises(cohere.core.ApiError) as co:
        cohere_client.chat(model="sim-large", messages=HELLO)
    assert co.value.status_code == 410
    assert client.chat.completions.create(model="sim-small", messages=HELLO).choices[0].message.content
    assert sim.state(provider)["model_behaviours"]["sim-large"]["type"] == "410"


def test_openrouter_lists_models_with_prices_and_says_what_a_key_is(sim, provider, raw_http):
    sim.set_models(
        provider, [{"id": "org/free-model:free"}, {"id": "org/paid", "free": False, "expiration_date": "2026-12-31"}]
    )
    root = f"{sim.url}/{provider}/api/v1"
    listed = json.loads(raw_http("GET", f"{root}/models").body)["data"]
    assert [(m["id"], m["pricing"]["prompt"], m["expiration_date"]) for m in listed] == [
        ("org/free-model:free", "0", None),
        ("org/paid", "0.000001", "2026-12-31"),
    ]
    assert listed[0]["context_length"] == 32768 and "tools" in listed[0]["supported_parameters"]
    key = raw_http("GET", f"{root}/key", headers={"Authorization": f"Bearer {API_KEY}"})
    assert json.loads(key.body)["data"]["is_free_tier"] is True
    assert raw_http("GET", f"{root}/key").status == 401
    chat = openai.OpenAI(base_url=root, api_key=API_KEY, max_retries=0).chat.completions.create(
        model="org/free-model:free", messages=HELLO
    )
    assert chat.choices[0].message.content == f"Hello from {provider} (org/free-model:free)."


def test_a_reset_restores_the_list_and_bad_lists_are_refused(sim, provider, client):
    sim.set_models(provider, ["only-one"])
    sim.set_model_behaviour(provider, "only-one", "410")
    sim.reset(provider)
    assert [m.id for m in client.models.list()] == ["sim-small", "sim-large", "sim-embed"]
    assert client.chat.completions.create(model="sim-large", messages=HELLO).choices
    with pytest.raises(SimulatorError, match="an id or an object with an `id`"):
        sim.set_models(provider, [{"name": "no id"}])
