"""gRPC servicer: translates requests to the CodeAgent and the contextual chat, and their results back."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import orjson
from google.api import httpbody_pb2

from llmagg.agent.v1 import agent_pb2 as pb
from llmagg.agent.v1 import agent_pb2_grpc
from llmagg.common.errors import ServiceError
from llmagg.common.grpc_interceptors import CLIENT_ID_METADATA, CLIENT_SCOPE_METADATA, metadata_value
from llmagg_agent import converters
from llmagg_agent.domain.agent import CodeAgent
from llmagg_agent.domain.contextual import chat_body
from llmagg_agent.domain.model import ChatRelay

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["AgentService"].full_name
_SSE = "text/event-stream"


def client_id(context: grpc.aio.ServicerContext) -> str | None:
    """Who is calling, as the gateway's client authentication tells (absent until it does)."""
    return metadata_value(context.invocation_metadata(), CLIENT_ID_METADATA) or None


def is_admin(context: grpc.aio.ServicerContext) -> bool:
    """Whether the caller's key is an admin key, as the gateway's client authentication tells."""
    return metadata_value(context.invocation_metadata(), CLIENT_SCOPE_METADATA) == "admin"


class AgentServicer(agent_pb2_grpc.AgentServiceServicer):
    def __init__(self, agent: CodeAgent, relay: ChatRelay, max_file_context_chars: int) -> None:
        self._agent = agent
        self._relay = relay
        self._max_file_chars = max_file_context_chars

    async def InvokeCodeAgent(self, request: pb.InvokeCodeAgentRequest, context) -> pb.CodeAgentResponse:
        thread = await self._agent.invoke(
            converters.invoke_request(request), client_id(context), context.time_remaining(), admin=is_admin(context)
        )
        return converters.code_agent_response(thread)

    async def ResumeAgent(self, request: pb.ResumeAgentRequest, context) -> pb.CodeAgentResponse:
        thread = await self._agent.resume(
            converters.resume_request(request), client_id(context), context.time_remaining(), admin=is_admin(context)
        )
        return converters.code_agent_response(thread)

    async def ContextualChat(self, request: pb.ContextualChatRequest, context) -> AsyncIterator[httpbody_pb2.HttpBody]:
        body = chat_body(converters.contextual_chat(request), self._max_file_chars)
        relayed = await self._relay.relay(body, client_id(context))
        await context.send_initial_metadata(relayed.headers)
        try:
            async for content_type, data in relayed.pieces:
                yield httpbody_pb2.HttpBody(content_type=content_type, data=data)
        except ServiceError as error:
            if not request.stream:
                raise
            # The client has its 200 and an open stream: the failure travels in-band, as the router's do.
            yield httpbody_pb2.HttpBody(
                content_type=_SSE, data=b"data: " + orjson.dumps(error.openai_error()) + b"\n\n"
            )

    async def GetThread(self, request: pb.GetThreadRequest, context) -> pb.GetThreadResponse:
        return converters.thread_response(await self._agent.thread(request.thread_id, client_id(context)))

    async def ListThreads(self, request: pb.ListThreadsRequest, context) -> pb.ListThreadsResponse:
        limit = request.limit if request.HasField("limit") else None
        summaries, token = await self._agent.threads(limit, request.page_token, client_id(context))
        return converters.threads_response(summaries, token)

    async def DeleteThread(self, request: pb.DeleteThreadRequest, context) -> pb.DeleteThreadResponse:
        deleted = await self._agent.delete(request.thread_id, client_id(context))
        return pb.DeleteThreadResponse(thread_id=request.thread_id, deleted=deleted)


def add_to_server(servicer: AgentServicer, server: grpc.aio.Server) -> None:
    agent_pb2_grpc.add_AgentServiceServicer_to_server(servicer, server)
