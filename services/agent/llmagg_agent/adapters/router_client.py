"""The router over gRPC: the agent's model calls and the contextual chat's relay.

Both send OpenAI chat bodies through the router's CreateChatCompletion, the RPC the gateway serves
`/v1/chat/completions` with: every field (tools, tool_choice, provider, model_quality) reaches the
router as JSON, and its answer comes back byte for byte. Each call carries the gateway's request id,
the client id and the service token; the channel (llmagg.common.grpc_client) adds the caller's trace
context, so the router's spans nest under the agent's.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc
import orjson
from google.api import httpbody_pb2

from llmagg.common.errors import ErrorKind, ServiceError
from llmagg.common.grpc_client import service_channel
from llmagg.common.grpc_interceptors import CLIENT_ID_METADATA, SERVICE_TOKEN_METADATA
from llmagg.common.logging import request_id
from llmagg.common.rpc_errors import service_error
from llmagg.common.secrets import Secret
from llmagg.router.v1 import router_pb2, router_pb2_grpc
from llmagg_agent.domain.model import ModelReply, ModelRequest, RelayedChat

_ROUTE_HEADERS = ("x-llmagg-provider", "x-llmagg-model", "x-llmagg-account", "x-llmagg-attempts")
_JSON = "application/json"


def _metadata(client_id: str | None, token: str | None) -> list[tuple[str, str]]:
    metadata: list[tuple[str, str]] = []
    if token:
        metadata.append((SERVICE_TOKEN_METADATA, token))
    if rid := request_id.get():
        metadata.append(("x-request-id", rid))
    if client_id:
        metadata.append((CLIENT_ID_METADATA, client_id))
    return metadata


def _assistant_message(answer: Any) -> dict[str, Any]:
    """The answer's message as the agent keeps it: role, content and tool calls only."""
    try:
        message = answer["choices"][0]["message"]
    except (KeyError, IndexError, TypeError):
        raise ServiceError(
            ErrorKind.UNAVAILABLE, "The router's answer had no message.", code="malformed_answer"
        ) from None
    content = message.get("content")
    if isinstance(content, list):  # content parts: their text
        content = "".join(part.get("text") or "" for part in content if isinstance(part, dict))
    kept: dict[str, Any] = {"role": "assistant", "content": content if isinstance(content, str) else None}
    calls = [
        {
            "id": call.get("id"),
            "type": "function",
            "function": {
                "name": (call.get("function") or {}).get("name"),
                "arguments": (call.get("function") or {}).get("arguments"),
            },
        }
        for call in message.get("tool_calls") or []
        if isinstance(call, dict)
    ]
    if calls:
        kept["tool_calls"] = calls
    return kept


class RouterClient:
    """ModelClient and ChatRelay on one channel to the router."""

    def __init__(self, address: str, token: str | None = None, max_message_bytes: int = 32 * 1024 * 1024) -> None:
        self.address = address
        self._token = Secret(token) if token else None
        self._channel = service_channel(
            address,
            [
                ("grpc.max_receive_message_length", max_message_bytes),
                ("grpc.max_send_message_length", max_message_bytes),
            ],
        )
        self._stub = router_pb2_grpc.RouterServiceStub(self._channel)

    def _call(self, body: dict[str, Any], client_id: str | None, timeout_s: float | None) -> Any:
        async def request() -> AsyncIterator[router_pb2.CreateChatCompletionRequest]:
            yield router_pb2.CreateChatCompletionRequest(
                http_body=httpbody_pb2.HttpBody(content_type=_JSON, data=orjson.dumps(body))
            )

        token = self._token.reveal() if self._token else None
        return self._stub.CreateChatCompletion(request(), metadata=_metadata(client_id, token), timeout=timeout_s)

    async def complete(self, request: ModelRequest) -> ModelReply:
        body: dict[str, Any] = {"model": request.model, "messages": request.messages}
        if request.tools:
            body["tools"] = request.tools
            body["tool_choice"] = "auto"
        if request.provider:
            body["provider"] = request.provider
        if request.model_quality:
            body["model_quality"] = request.model_quality
        call = self._call(body, request.client_id, request.timeout_s)
        try:
            data = b"".join([piece.data async for piece in call])
        except grpc.aio.AioRpcError as error:
            raise service_error(error, "router") from None
        try:
            answer = orjson.loads(data)
        except orjson.JSONDecodeError:
            raise ServiceError(
                ErrorKind.UNAVAILABLE, "The router's answer was not JSON.", code="malformed_answer"
            ) from None
        model_used = "/".join(str(part) for part in (answer.get("provider"), answer.get("model")) if part)
        return ModelReply(_assistant_message(answer), model_used)

    async def relay(self, body: dict[str, Any], client_id: str | None) -> RelayedChat:
        call = self._call(body, client_id, None)  # the router bounds its own streams

        async def pieces() -> AsyncIterator[tuple[str, bytes]]:
            try:
                async for piece in call:
                    yield piece.content_type, piece.data
            except grpc.aio.AioRpcError as error:
                raise service_error(error, "router") from None
            finally:
                call.cancel()

        relayed = pieces()
        try:
            first = await anext(relayed)
        except StopAsyncIteration:
            raise ServiceError(ErrorKind.UNAVAILABLE, "The router answered nothing.", code="empty_answer") from None
        metadata = await call.initial_metadata()
        headers = tuple((key, value) for key, value in metadata or () if key in _ROUTE_HEADERS)

        async def everything() -> AsyncIterator[tuple[str, bytes]]:
            try:
                yield first
                async for piece in relayed:
                    yield piece
            finally:
                await relayed.aclose()  # a reader that stops early ends the call to the router too

        return RelayedChat(headers, everything())

    async def close(self) -> None:
        await self._channel.close()
