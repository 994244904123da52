from google.protobuf import struct_pb2

from llmagg.router.v1 import router_pb2 as pb
from llmagg_router import converters
from llmagg_router.domain.request_record import Route

ROUTE = Route(provider="groq", model="llama-3.1-8b-instant", account="groq-1", attempts=2)


def test_a_typed_request_becomes_the_openai_body_with_extras_passed_through():
    extra = struct_pb2.Struct()
    extra.update({"tools": [{"type": "function", "function": {"name": "f"}}], "seed": 3})
    request = pb.ChatRequest(
        model="auto",
        provider="groq",
        model_quality=pb.MODEL_QUALITY_FASTEST,
        temperature=0.2,
        max_tokens=5,
        stop=["\n"],
        extra=extra,
        messages=[
            pb.ChatMessage(role="user", content="hi"),
            pb.ChatMessage(
                role="assistant",
                tool_calls=[pb.ToolCall(id="c1", function=pb.ToolCallFunction(name="f", arguments="{}"))],
            ),
            pb.ChatMessage(role="tool", tool_call_id="c1", content="42"),
        ],
    )
    body = converters.chat_request_to_body(request)
    assert body["model"] == "auto" and body["provider"] == "groq" and body["model_quality"] == "fastest"
    assert body["temperature"] == 0.2 and body["max_tokens"] == 5 and body["stop"] == ["\n"]
    assert body["tools"][0]["function"]["name"] == "f" and body["seed"] == 3
    assert body["messages"][1]["tool_calls"][0] == {
        "id": "c1",
        "type": "function",
        "function": {"name": "f", "arguments": "{}"},
    }
    assert body["messages"][2] == {"role": "tool", "content": "42", "tool_call_id": "c1"}


def test_unset_optional_fields_are_left_out():
    body = converters.chat_request_to_body(pb.ChatRequest(model="m", messages=[pb.ChatMessage(role="user")]))
    assert body == {"model": "m", "messages": [{"role": "user"}]}


def test_stream_requests_ask_for_usage_when_wanted():
    body = converters.stream_request_to_body(pb.StreamChatRequest(chat=pb.ChatRequest(model="m"), include_usage=True))
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}


def test_a_chat_response_carries_content_tool_calls_usage_and_route():
    body = {
        "id": "r1",
        "created": 5,
        "model": "llama",
        "choices": [
            {
                "index": 0,
                "finish_reason": "tool_calls",
                "message": {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}}],
                },
            }
        ],
        "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7},
    }
    response = converters.chat_response(body, ROUTE)
    assert response.choices[0].message.tool_calls[0].function.name == "f"
    assert not response.choices[0].message.HasField("content")
    assert response.usage.total_tokens == 7
    assert (response.route.provider, response.route.attempts) == ("groq", 2)


def test_a_usage_only_stream_chunk_converts():
    chunk = {"id": "r", "choices": [], "usage": {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3}}
    response = converters.stream_response(chunk, ROUTE)
    assert not response.choices and response.usage.total_tokens == 3


def test_openai_models_json_lists_auto_chains_and_models():
    entries = [
        converters.CatalogEntry("groq/m", "groq", "m", "chat", 8192, 3, ("m-alias",), True),
    ]
    listed = converters.openai_models_json(entries, ["coding"], created=1)
    ids = [m["id"] for m in listed["data"]]
    assert listed["object"] == "list" and ids == ["auto", "coding", "groq/m"]
    assert listed["data"][2]["owned_by"] == "groq"


def test_streaming_is_decided_by_the_rpc_not_by_extra():
    extra = struct_pb2.Struct()
    extra.update({"stream": True, "stream_options": {"include_usage": True}})
    chat = pb.ChatRequest(model="m", extra=extra)
    assert "stream" not in converters.chat_request_to_body(chat)
    assert "stream_options" not in converters.chat_request_to_body(chat)
    streamed = converters.stream_request_to_body(pb.StreamChatRequest(chat=chat))
    assert streamed["stream"] is True and "stream_options" not in streamed
