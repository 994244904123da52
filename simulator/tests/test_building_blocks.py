"""The pure parts, without a server: fault parsing, the per-provider queue and log, durations, vectors."""

from __future__ import annotations

import math

import pytest

from llmagg_simulator.faults import Fault, FaultError, parse_behaviour_option, parse_fault
from llmagg_simulator.openai_chat import simulated_reply, stream_chunks
from llmagg_simulator.openai_embeddings import vector
from llmagg_simulator.openai_errors import go_duration
from llmagg_simulator.replies import Shaped, reply_text, shape_reply, sim_arguments
from llmagg_simulator.state import MAX_LOGGED_REQUESTS, ProviderState, ScriptedFault


def test_a_fault_parses_from_a_name_or_an_object_with_parameters_and_count():
    assert parse_fault("500") == (Fault("500"), 1)
    assert parse_fault({"type": "429", "retry_after": 2, "count": 3}) == (Fault("429", retry_after=2.0), 3)
    assert parse_fault({"type": "cut_stream", "after_chunks": 3.0}) == (Fault("cut_stream", after_chunks=3), 1)
    assert parse_fault({"type": "stream_error", "after_chunks": 1}) == (Fault("stream_error", after_chunks=1), 1)


@pytest.mark.parametrize(
    ("option", "name", "fault"),
    [
        ("sim-fast=ok", "sim-fast", Fault("ok")),
        ("sim-ratelimited=429", "sim-ratelimited", Fault("429")),
        ("sim-slow=slow_first_byte,delay_s=0.25", "sim-slow", Fault("slow_first_byte", delay_s=0.25)),
    ],
)
def test_provider_options_name_a_behaviour_and_its_parameters(option, name, fault):
    assert parse_behaviour_option(option) == (name, fault)


@pytest.mark.parametrize(
    "option", ["sim-x", "=429", "sim-x=", "sim-x=explode", "sim-x=429,count=2", "sim-x=429,retry_after=soon"]
)
def test_malformed_provider_options_are_refused(option):
    with pytest.raises(FaultError):
        parse_behaviour_option(option)


def test_the_queue_hands_out_each_fault_count_times_then_the_default():
    state = ProviderState(Fault("503"))
    state.queue.extend([ScriptedFault(Fault("429"), 2), ScriptedFault(Fault("hang"), 1)])
    assert [state.next_fault().type for _ in range(5)] == ["429", "429", "hang", "503", "503"]


def test_the_request_log_keeps_only_the_most_recent_requests():
    state = ProviderState(Fault())
    for number in range(MAX_LOGGED_REQUESTS + 5):
        state.requests.append({"body": number})
    assert len(state.requests) == MAX_LOGGED_REQUESTS == 1000
    assert state.requests[0]["body"] == 5 and state.requests[-1]["body"] == MAX_LOGGED_REQUESTS + 4


@pytest.mark.parametrize(
    ("seconds", "duration"),
    [
        (0, "0s"),
        (0.012, "12ms"),
        (0.5, "500ms"),
        (1, "1s"),
        (18.6, "18.6s"),
        (90, "1m30s"),
        (360, "6m0s"),
        (3723, "1h2m3s"),
    ],
)
def test_reset_durations_are_written_like_go_durations(seconds, duration):
    assert go_duration(seconds) == duration


def test_vectors_are_unit_length_and_depend_only_on_the_text_and_length():
    assert vector("abc", 8) == vector("abc", 8) != vector("abd", 8)
    assert len(vector("abc", 1536)) == 1536
    assert math.fsum(x * x for x in vector("abc", 1536)) == pytest.approx(1.0, abs=1e-4)


@pytest.mark.parametrize("text", ["", "one", "two words", " lead and trail ", "a  b   c"])
def test_streamed_content_pieces_concatenate_to_exactly_the_reply(text):
    body = {"model": "m", "messages": [{"role": "user", "content": f"echo: {text}"}]}
    chunks = stream_chunks(body, simulated_reply("p", body))
    pieces = [c["choices"][0]["delta"].get("content") for c in chunks[1:-1]]
    assert "".join(pieces) == text


@pytest.mark.parametrize(
    ("last_user_text", "reply"),
    [(None, "Hello from p (m)."), ("hi", "Hello from p (m)."), ("echo: a  b", "a  b"), ("echo:x", "x"), ("echo: ", "")],
)
def test_every_dialect_replies_hello_or_echoes(last_user_text, reply):
    assert reply_text("p", "m", last_user_text) == reply


@pytest.mark.parametrize(
    ("max_tokens", "stops", "shaped"),
    [
        (None, None, Shaped("one two  three four", "end")),
        (4, None, Shaped("one two  three four", "end")),
        (2, None, Shaped("one two", "max_tokens")),
        (None, ["three", "two"], Shaped("one ", "stop_sequence", "two")),
        (None, ["", "absent"], Shaped("one two  three four", "end")),
        (1, ["three"], Shaped("one", "max_tokens")),
        (None, ["one"], Shaped("", "stop_sequence", "one")),
    ],
)
def test_limits_cut_a_reply_at_the_earliest_stop_sequence_then_after_max_tokens_words(max_tokens, stops, shaped):
    assert shape_reply("one two  three four", max_tokens, stops) == shaped


def test_tool_arguments_set_each_required_parameter_to_sim():
    schema = {"type": "object", "properties": {"a": {}, "b": {}}, "required": ["b", 3, "a"]}
    assert sim_arguments(schema) == {"b": "sim", "a": "sim"}
    assert sim_arguments(None) == sim_arguments({"type": "object"}) == {}
