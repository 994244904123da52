"""A streamed answer put back together is the chat.completion the provider would have sent whole."""

from llmagg_router.domain.assembly import assemble

HEAD = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 7, "model": "m"}


def chunk(*choices, **extra):
    return {**HEAD, "choices": list(choices), **extra}


def test_text_pieces_join_and_the_envelope_and_usage_are_kept():
    completion = assemble(
        [
            chunk({"index": 0, "delta": {"role": "assistant", "content": ""}}),
            chunk({"index": 0, "delta": {"content": "Hello"}}),
            chunk({"index": 0, "delta": {"content": " there"}}, system_fingerprint="fp_1"),
            chunk({"index": 0, "delta": {}, "finish_reason": "stop"}),
            {**HEAD, "choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}},
        ]
    )
    assert completion == {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 7,
        "model": "m",
        "system_fingerprint": "fp_1",
        "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Hello there"},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
    }


def test_tool_call_fragments_merge_by_index_and_a_repeated_name_is_not_doubled():
    call = {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": ""}}
    completion = assemble(
        [
            chunk({"index": 0, "delta": {"role": "assistant", "content": None, "tool_calls": [{"index": 0, **call}]}}),
            chunk({"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": '{"city": '}}]}}),
            chunk(
                {
                    "index": 0,
                    "delta": {
                        "tool_calls": [{"index": 0, "function": {"name": "get_weather", "arguments": '"Oslo"}'}}]
                    },
                }
            ),
            chunk(
                {
                    "index": 0,
                    "delta": {
                        "tool_calls": [
                            {
                                "index": 1,
                                "id": "call_2",
                                "type": "function",
                                "function": {"name": "now", "arguments": "{}"},
                            }
                        ]
                    },
                }
            ),
            chunk({"index": 0, "delta": {}, "finish_reason": "tool_calls"}),
        ]
    )
    [choice] = completion["choices"]
    assert choice["finish_reason"] == "tool_calls" and choice["message"]["content"] is None
    assert choice["message"]["tool_calls"] == [
        {
            "index": 0,
            "id": "call_1",
            "type": "function",
            "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'},
        },
        {"index": 1, "id": "call_2", "type": "function", "function": {"name": "now", "arguments": "{}"}},
    ]


def test_several_choices_stay_apart_and_unknown_delta_fields_are_kept():
    completion = assemble(
        [
            chunk({"index": 1, "delta": {"content": "B"}}, {"index": 0, "delta": {"content": "A", "reasoning": "r1"}}),
            chunk({"index": 0, "delta": {"reasoning": "r2"}, "finish_reason": "stop"}),
            chunk({"index": 1, "delta": {}, "finish_reason": "length"}),
        ]
    )
    first, second = completion["choices"]
    assert (first["index"], first["message"], first["finish_reason"]) == (
        0,
        {"role": "assistant", "content": "A", "reasoning": "r1r2"},
        "stop",
    )
    assert (second["index"], second["message"]["content"], second["finish_reason"]) == (1, "B", "length")


def test_logprobs_tokens_are_appended_in_order():
    completion = assemble(
        [
            chunk({"index": 0, "delta": {"content": "a"}, "logprobs": {"content": [{"token": "a", "logprob": -0.1}]}}),
            chunk({"index": 0, "delta": {"content": "b"}, "logprobs": {"content": [{"token": "b", "logprob": -0.2}]}}),
        ]
    )
    assert [t["token"] for t in completion["choices"][0]["logprobs"]["content"]] == ["a", "b"]


def test_a_long_answer_of_two_choices_comes_back_whole_in_every_field_its_pieces_built():
    pieces = [f"w{i} " for i in range(2000)]
    call = {"index": 0, "id": "call_1", "type": "function", "function": {"name": "write", "arguments": ""}}
    chunks = [chunk({"index": 1, "delta": {"role": "assistant", "tool_calls": [call]}})]
    for piece in pieces:
        chunks.append(chunk({"index": 0, "delta": {"reasoning_content": piece.upper(), "content": piece}}))
        chunks.append(chunk({"index": 1, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}}))
    completion = assemble(chunks)
    first, second = completion["choices"]
    assert first["message"] == {
        "role": "assistant",
        "reasoning_content": "".join(pieces).upper(),
        "content": "".join(pieces),
    }
    assert second["message"]["tool_calls"] == [{**call, "function": {"name": "write", "arguments": "".join(pieces)}}]


def test_a_value_of_another_kind_after_text_in_pieces_replaces_the_text_as_it_would_a_whole_one():
    parts = [{"type": "text", "text": "x"}]
    pieces = [chunk({"index": 0, "delta": {"content": text}}) for text in ("a", "b")]
    completion = assemble([*pieces, chunk({"index": 0, "delta": {"content": parts}})])
    assert completion["choices"][0]["message"] == {"role": "assistant", "content": parts}
