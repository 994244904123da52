"""Protobuf <-> the agent's domain objects. The only module that knows both."""

from __future__ import annotations

from typing import Any

from google.protobuf import struct_pb2, timestamp_pb2

from llmagg.agent.v1 import agent_pb2 as pb
from llmagg_agent.domain.contextual import ContextualChat
from llmagg_agent.domain.requests import InvokeRequest, ResumeRequest
from llmagg_agent.domain.threads import Thread, ThreadSummary


def _optional(message: Any, name: str) -> Any:
    return getattr(message, name) if message.HasField(name) else None


def invoke_request(request: pb.InvokeCodeAgentRequest) -> InvokeRequest:
    return InvokeRequest(
        instruction=request.instruction,
        **{
            name: _optional(request, name)
            for name in ("context", "language", "project_directory", "thread_id", "model_quality", "provider")
        },
    )


def resume_request(request: pb.ResumeAgentRequest) -> ResumeRequest:
    return ResumeRequest(request.thread_id, request.tool_call_id, request.human_response)


def contextual_chat(request: pb.ContextualChatRequest) -> ContextualChat:
    optional = (
        "selected_text",
        "active_file_content",
        "active_file_name",
        "language",
        "model",
        "provider",
        "model_quality",
        "max_tokens",
        "temperature",
        "top_p",
    )
    return ContextualChat(
        prompt=request.prompt,
        stream=request.stream,
        stop=list(request.stop),
        **{name: _optional(request, name) for name in optional},
    )


def _struct(values: dict[str, Any]) -> struct_pb2.Struct:
    struct = struct_pb2.Struct()
    struct.update(values)
    return struct


def _timestamp(seconds: float) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromNanoseconds(int(seconds * 1e9))
    return stamp


def _human_input(thread: Thread) -> pb.HumanInputRequest | None:
    if thread.human_input is None:
        return None
    return pb.HumanInputRequest(
        tool_call_id=thread.human_input.tool_call_id, question_for_human=thread.human_input.question
    )


def _results(thread: Thread) -> dict[str, Any]:
    """The fields a run's response and a thread's view share; unset ones stay absent."""
    fields: dict[str, Any] = {
        "thread_id": thread.thread_id,
        "agent_status": thread.status.value,
        "human_input_request": _human_input(thread),
        "request_params": _struct(thread.request_params),
    }
    for name in ("generated_code", "explanation", "model_used", "error_details"):
        if getattr(thread, name) is not None:
            fields[name] = getattr(thread, name)
    return fields


def code_agent_response(thread: Thread) -> pb.CodeAgentResponse:
    return pb.CodeAgentResponse(**_results(thread))


def _message(message: dict[str, Any]) -> pb.ThreadMessage:
    converted = pb.ThreadMessage(
        role=message.get("role") or "",
        tool_calls=[
            pb.ToolCall(
                id=call.get("id") or "",
                type=call.get("type") or "function",
                function=pb.ToolCallFunction(
                    name=(call.get("function") or {}).get("name") or "",
                    arguments=(call.get("function") or {}).get("arguments") or "",
                ),
            )
            for call in message.get("tool_calls") or []
        ],
    )
    for name in ("content", "tool_call_id", "name"):
        if isinstance(message.get(name), str):
            setattr(converted, name, message[name])
    return converted


def thread_response(thread: Thread) -> pb.GetThreadResponse:
    return pb.GetThreadResponse(
        messages=[_message(message) for message in thread.messages],
        created_at=_timestamp(thread.created_at),
        updated_at=_timestamp(thread.updated_at),
        **_results(thread),
    )


def threads_response(summaries: list[ThreadSummary], next_page_token: str) -> pb.ListThreadsResponse:
    return pb.ListThreadsResponse(
        threads=[
            pb.ThreadSummary(
                thread_id=summary.thread_id,
                agent_status=summary.status.value,
                message_count=summary.message_count,
                created_at=_timestamp(summary.created_at),
                updated_at=_timestamp(summary.updated_at),
            )
            for summary in summaries
        ],
        next_page_token=next_page_token,
    )
