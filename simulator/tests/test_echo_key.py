"""`echo_key`: a hostile provider that answers normally but quotes the key it received, in every dialect and
auth style: in the text (cut in two across stream events), tool-call arguments, the id, the model and a field
of its own, of whole answers, of every stream event and of embeddings."""

from __future__ import annotations

import json

from .helpers import API_KEY, HELLO, WEATHER_TOOL

HALF = len(API_KEY) // 2


def test_a_whole_answer_quotes_the_key_in_its_text_id_model_and_an_extra_field(sim, client, provider):
    sim.set_behaviour(provider, {"type": "echo_key"})
    reply = client.chat.completions.create(model="m", messages=HELLO)
    assert reply.choices[0].message.content == f"Your key is {API_KEY} indeed."
    assert reply.id.endswith(f"-{API_KEY}") and reply.model == f"m-{API_KEY}"
    assert reply.model_extra["echoed_key"] == API_KEY


def test_tool_call_arguments_quote_the_key(sim, client, provider):
    sim.set_behaviour(provider, {"type": "echo_key"})
    reply = client.chat.completions.create(model="m", messages=HELLO, tools=[WEATHER_TOOL])
    [call] = reply.choices[0].message.tool_calls
    assert set(json.loads(call.function.arguments).values()) == {API_KEY}


def test_every_stream_chunk_quotes_the_key_and_the_text_splits_it_across_two_chunks(sim, client, provider):
    sim.script(provider, [{"type": "echo_key"}])
    chunks = list(client.chat.completions.create(model="m", messages=HELLO, stream=True))
    assert all(chunk.model_extra["echoed_key"] == API_KEY for chunk in chunks)
    pieces = [chunk.choices[0].delta.content for chunk in chunks if chunk.choices and chunk.choices[0].delta.content]
    assert "".join(pieces) == f"Your key is {API_KEY} indeed."
    assert " " + API_KEY[:HALF] in pieces and API_KEY[HALF:] in pieces
    assert not any(API_KEY in piece for piece in pieces)


def test_embeddings_quote_the_key_in_their_model(sim, client, provider):
    sim.set_behaviour(provider, {"type": "echo_key"})
    answer = client.embeddings.create(model="sim-embed", input="hello")
    assert answer.model == f"sim-embed-{API_KEY}" and answer.model_extra["echoed_key"] == API_KEY


def test_native_dialects_quote_the_key_from_their_own_auth_header(sim, provider, anthropic_client, gemini_client):
    sim.set_behaviour(provider, {"type": "echo_key"})
    message = anthropic_client.messages.create(model="sim-small", max_tokens=50, messages=HELLO)
    assert message.content[0].text == f"Your key is {API_KEY} indeed."
    assert message.model_extra["echoed_key"] == API_KEY
    answer = gemini_client.models.generate_content(model="sim-small", contents="Hello there")
    assert answer.text == f"Your key is {API_KEY} indeed."
    sent = sim.requests(provider)
    assert sent[1]["headers"]["x-goog-api-key"] == API_KEY  # (the anthropic 2.x SDK sends a Bearer token)
