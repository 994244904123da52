"""Protobuf <-> the OpenAI-shaped dicts the domain works with. The only module that knows both."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from google.protobuf import json_format

from llmagg.router.v1 import router_pb2 as pb
from llmagg_router.domain.catalog import CatalogEntry
from llmagg_router.domain.request_record import Route

_QUALITY_NAMES = {
    pb.MODEL_QUALITY_FASTEST: "fastest",
    pb.MODEL_QUALITY_BALANCED: "balanced",
    pb.MODEL_QUALITY_BEST_QUALITY: "best_quality",
}


def _message_to_dict(message: pb.ChatMessage) -> dict[str, Any]:
    out: dict[str, Any] = {"role": message.role}
    if message.content_parts:
        out["content"] = [json_format.MessageToDict(part) for part in message.content_parts]
    elif message.HasField("content"):
        out["content"] = message.content
    if message.name:
        out["name"] = message.name
    if message.tool_call_id:
        out["tool_call_id"] = message.tool_call_id
    if message.tool_calls:
        out["tool_calls"] = [
            {
                "id": c.id,
                "type": c.type or "function",
                "function": {"name": c.function.name, "arguments": c.function.arguments},
            }
            for c in message.tool_calls
        ]
    return out


def chat_request_to_body(request: pb.ChatRequest) -> dict[str, Any]:
    body: dict[str, Any] = json_format.MessageToDict(request.extra) if request.HasField("extra") else {}
    # Chat or StreamChat decides streaming, not a stray `stream` in extra.
    body.pop("stream", None)
    body.pop("stream_options", None)
    body["model"] = request.model
    body["messages"] = [_message_to_dict(m) for m in request.messages]
    if request.provider:
        body["provider"] = request.provider
    if request.model_quality in _QUALITY_NAMES:
        body["model_quality"] = _QUALITY_NAMES[request.model_quality]
    for name in ("temperature", "top_p", "max_tokens"):
        if request.HasField(name):
            body[name] = getattr(request, name)
    if request.stop:
        body["stop"] = list(request.stop)
    return body


def stream_request_to_body(request: pb.StreamChatRequest) -> dict[str, Any]:
    body = chat_request_to_body(request.chat)
    body["stream"] = True
    if request.include_usage:
        body["stream_options"] = {"include_usage": True}
    return body


def embed_request_to_body(request: pb.EmbedRequest) -> dict[str, Any]:
    body: dict[str, Any] = {"model": request.model, "input": list(request.input), "encoding_format": "float"}
    if request.provider:
        body["provider"] = request.provider
    if request.HasField("dimensions"):
        body["dimensions"] = request.dimensions
    return body


def _tool_calls(calls: list[dict[str, Any]] | None) -> list[pb.ToolCall]:
    return [
        pb.ToolCall(
            id=call.get("id") or "",
            type=call.get("type") or "",
            index=call.get("index") or 0,
            function=pb.ToolCallFunction(
                name=(call.get("function") or {}).get("name") or "",
                arguments=(call.get("function") or {}).get("arguments") or "",
            ),
        )
        for call in calls or ()
    ]


def _usage(usage: dict[str, Any] | None) -> pb.Usage | None:
    if not usage:
        return None
    return pb.Usage(
        prompt_tokens=usage.get("prompt_tokens") or 0,
        completion_tokens=usage.get("completion_tokens") or 0,
        total_tokens=usage.get("total_tokens") or 0,
    )


def _route(route: Route) -> pb.RouteInfo:
    return pb.RouteInfo(provider=route.provider, model=route.model, account=route.account, attempts=route.attempts)


def _content(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if isinstance(value, str):
        return {"content": value}
    return {"content": "".join(p.get("text", "") for p in value if isinstance(p, dict))}


def _envelope(body: dict[str, Any], route: Route) -> dict[str, Any]:
    """The fields a chat response and a stream chunk share."""
    return {
        "id": body.get("id") or "",
        "created": body.get("created") or 0,
        "model": body.get("model") or route.model,
        "usage": _usage(body.get("usage")),
        "route": _route(route),
    }


def chat_response(body: dict[str, Any], route: Route) -> pb.ChatResponse:
    choices = []
    for choice in body.get("choices") or ():
        message = choice.get("message") or {}
        choices.append(
            pb.ChatChoice(
                index=choice.get("index") or 0,
                finish_reason=choice.get("finish_reason") or "",
                message=pb.ChatMessage(
                    role=message.get("role") or "assistant",
                    tool_calls=_tool_calls(message.get("tool_calls")),
                    **_content(message.get("content")),
                ),
            )
        )
    return pb.ChatResponse(choices=choices, **_envelope(body, route))


def stream_response(chunk: dict[str, Any], route: Route) -> pb.StreamChatResponse:
    choices = []
    for choice in chunk.get("choices") or ():
        delta = choice.get("delta") or {}
        choices.append(
            pb.StreamChoice(
                index=choice.get("index") or 0,
                finish_reason=choice.get("finish_reason") or "",
                delta=pb.ChatDelta(
                    role=delta.get("role") or "",
                    tool_calls=_tool_calls(delta.get("tool_calls")),
                    **_content(delta.get("content")),
                ),
            )
        )
    return pb.StreamChatResponse(choices=choices, **_envelope(chunk, route))


def embed_response(body: dict[str, Any], route: Route) -> pb.EmbedResponse:
    return pb.EmbedResponse(
        model=body.get("model") or route.model,
        embeddings=[
            pb.Embedding(index=item.get("index") or 0, values=item.get("embedding") or [])
            for item in body.get("data") or ()
        ],
        usage=_usage(body.get("usage")),
        route=_route(route),
    )


def models_response(entries: list[CatalogEntry], chains: list[str]) -> pb.ListModelsResponse:
    return pb.ListModelsResponse(
        models=[pb.Model(**{**asdict(e), "limits": dict(e.limits)}) for e in entries], fallback_chains=chains
    )


def openai_models_json(entries: list[CatalogEntry], chains: list[str], created: int) -> dict[str, Any]:
    data: list[dict[str, Any]] = [
        {"id": "auto", "object": "model", "created": created, "owned_by": "llmagg", "type": "router"}
    ]
    data += [
        {"id": name, "object": "model", "created": created, "owned_by": "llmagg", "type": "fallback_chain"}
        for name in chains
    ]
    data += [
        {
            **asdict(e),
            "context_length": e.context_window,
            "limits": dict(e.limits),
            "capabilities": list(e.capabilities),
            "object": "model",
            "created": created,
            "owned_by": e.provider,
        }
        for e in entries
    ]
    return {"object": "list", "data": data}


def openai_alias_json(name: str, routes: list[str], created: int) -> dict[str, Any]:
    """A name chat resolves that the list does not show (an alias, an id several providers serve)."""
    return {
        "id": name,
        "object": "model",
        "created": created,
        "owned_by": "llmagg",
        "type": "alias",
        "routes_to": routes,
    }
