import datetime

from google.api import annotations_pb2 as _annotations_pb2
from google.api import httpbody_pb2 as _httpbody_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class InvokeCodeAgentRequest(_message.Message):
    __slots__ = ("instruction", "context", "language", "project_directory", "thread_id", "model_quality", "provider")
    INSTRUCTION_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    LANGUAGE_FIELD_NUMBER: _ClassVar[int]
    PROJECT_DIRECTORY_FIELD_NUMBER: _ClassVar[int]
    THREAD_ID_FIELD_NUMBER: _ClassVar[int]
    MODEL_QUALITY_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    instruction: str
    context: str
    language: str
    project_directory: str
    thread_id: str
    model_quality: str
    provider: str
    def __init__(self, instruction: _Optional[str] = ..., context: _Optional[str] = ..., language: _Optional[str] = ..., project_directory: _Optional[str] = ..., thread_id: _Optional[str] = ..., model_quality: _Optional[str] = ..., provider: _Optional[str] = ...) -> None: ...

class ResumeAgentRequest(_message.Message):
    __slots__ = ("thread_id", "tool_call_id", "human_response")
    THREAD_ID_FIELD_NUMBER: _ClassVar[int]
    TOOL_CALL_ID_FIELD_NUMBER: _ClassVar[int]
    HUMAN_RESPONSE_FIELD_NUMBER: _ClassVar[int]
    thread_id: str
    tool_call_id: str
    human_response: str
    def __init__(self, thread_id: _Optional[str] = ..., tool_call_id: _Optional[str] = ..., human_response: _Optional[str] = ...) -> None: ...

class HumanInputRequest(_message.Message):
    __slots__ = ("tool_call_id", "question_for_human")
    TOOL_CALL_ID_FIELD_NUMBER: _ClassVar[int]
    QUESTION_FOR_HUMAN_FIELD_NUMBER: _ClassVar[int]
    tool_call_id: str
    question_for_human: str
    def __init__(self, tool_call_id: _Optional[str] = ..., question_for_human: _Optional[str] = ...) -> None: ...

class CodeAgentResponse(_message.Message):
    __slots__ = ("generated_code", "explanation", "agent_status", "human_input_request", "request_params", "model_used", "error_details", "thread_id")
    GENERATED_CODE_FIELD_NUMBER: _ClassVar[int]
    EXPLANATION_FIELD_NUMBER: _ClassVar[int]
    AGENT_STATUS_FIELD_NUMBER: _ClassVar[int]
    HUMAN_INPUT_REQUEST_FIELD_NUMBER: _ClassVar[int]
    REQUEST_PARAMS_FIELD_NUMBER: _ClassVar[int]
    MODEL_USED_FIELD_NUMBER: _ClassVar[int]
    ERROR_DETAILS_FIELD_NUMBER: _ClassVar[int]
    THREAD_ID_FIELD_NUMBER: _ClassVar[int]
    generated_code: str
    explanation: str
    agent_status: str
    human_input_request: HumanInputRequest
    request_params: _struct_pb2.Struct
    model_used: str
    error_details: str
    thread_id: str
    def __init__(self, generated_code: _Optional[str] = ..., explanation: _Optional[str] = ..., agent_status: _Optional[str] = ..., human_input_request: _Optional[_Union[HumanInputRequest, _Mapping]] = ..., request_params: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., model_used: _Optional[str] = ..., error_details: _Optional[str] = ..., thread_id: _Optional[str] = ...) -> None: ...

class ContextualChatRequest(_message.Message):
    __slots__ = ("prompt", "selected_text", "active_file_content", "active_file_name", "language", "model", "provider", "model_quality", "stream", "max_tokens", "temperature", "top_p", "stop")
    PROMPT_FIELD_NUMBER: _ClassVar[int]
    SELECTED_TEXT_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_FILE_CONTENT_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_FILE_NAME_FIELD_NUMBER: _ClassVar[int]
    LANGUAGE_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    MODEL_QUALITY_FIELD_NUMBER: _ClassVar[int]
    STREAM_FIELD_NUMBER: _ClassVar[int]
    MAX_TOKENS_FIELD_NUMBER: _ClassVar[int]
    TEMPERATURE_FIELD_NUMBER: _ClassVar[int]
    TOP_P_FIELD_NUMBER: _ClassVar[int]
    STOP_FIELD_NUMBER: _ClassVar[int]
    prompt: str
    selected_text: str
    active_file_content: str
    active_file_name: str
    language: str
    model: str
    provider: str
    model_quality: str
    stream: bool
    max_tokens: int
    temperature: float
    top_p: float
    stop: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, prompt: _Optional[str] = ..., selected_text: _Optional[str] = ..., active_file_content: _Optional[str] = ..., active_file_name: _Optional[str] = ..., language: _Optional[str] = ..., model: _Optional[str] = ..., provider: _Optional[str] = ..., model_quality: _Optional[str] = ..., stream: _Optional[bool] = ..., max_tokens: _Optional[int] = ..., temperature: _Optional[float] = ..., top_p: _Optional[float] = ..., stop: _Optional[_Iterable[str]] = ...) -> None: ...

class ToolCallFunction(_message.Message):
    __slots__ = ("name", "arguments")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ARGUMENTS_FIELD_NUMBER: _ClassVar[int]
    name: str
    arguments: str
    def __init__(self, name: _Optional[str] = ..., arguments: _Optional[str] = ...) -> None: ...

class ToolCall(_message.Message):
    __slots__ = ("id", "type", "function")
    ID_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    FUNCTION_FIELD_NUMBER: _ClassVar[int]
    id: str
    type: str
    function: ToolCallFunction
    def __init__(self, id: _Optional[str] = ..., type: _Optional[str] = ..., function: _Optional[_Union[ToolCallFunction, _Mapping]] = ...) -> None: ...

class ThreadMessage(_message.Message):
    __slots__ = ("role", "content", "tool_calls", "tool_call_id", "name")
    ROLE_FIELD_NUMBER: _ClassVar[int]
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    TOOL_CALLS_FIELD_NUMBER: _ClassVar[int]
    TOOL_CALL_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    role: str
    content: str
    tool_calls: _containers.RepeatedCompositeFieldContainer[ToolCall]
    tool_call_id: str
    name: str
    def __init__(self, role: _Optional[str] = ..., content: _Optional[str] = ..., tool_calls: _Optional[_Iterable[_Union[ToolCall, _Mapping]]] = ..., tool_call_id: _Optional[str] = ..., name: _Optional[str] = ...) -> None: ...

class GetThreadRequest(_message.Message):
    __slots__ = ("thread_id",)
    THREAD_ID_FIELD_NUMBER: _ClassVar[int]
    thread_id: str
    def __init__(self, thread_id: _Optional[str] = ...) -> None: ...

class GetThreadResponse(_message.Message):
    __slots__ = ("thread_id", "agent_status", "human_input_request", "request_params", "model_used", "generated_code", "explanation", "error_details", "messages", "created_at", "updated_at")
    THREAD_ID_FIELD_NUMBER: _ClassVar[int]
    AGENT_STATUS_FIELD_NUMBER: _ClassVar[int]
    HUMAN_INPUT_REQUEST_FIELD_NUMBER: _ClassVar[int]
    REQUEST_PARAMS_FIELD_NUMBER: _ClassVar[int]
    MODEL_USED_FIELD_NUMBER: _ClassVar[int]
    GENERATED_CODE_FIELD_NUMBER: _ClassVar[int]
    EXPLANATION_FIELD_NUMBER: _ClassVar[int]
    ERROR_DETAILS_FIELD_NUMBER: _ClassVar[int]
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    thread_id: str
    agent_status: str
    human_input_request: HumanInputRequest
    request_params: _struct_pb2.Struct
    model_used: str
    generated_code: str
    explanation: str
    error_details: str
    messages: _containers.RepeatedCompositeFieldContainer[ThreadMessage]
    created_at: _timestamp_pb2.Timestamp
    updated_at: _timestamp_pb2.Timestamp
    def __init__(self, thread_id: _Optional[str] = ..., agent_status: _Optional[str] = ..., human_input_request: _Optional[_Union[HumanInputRequest, _Mapping]] = ..., request_params: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., model_used: _Optional[str] = ..., generated_code: _Optional[str] = ..., explanation: _Optional[str] = ..., error_details: _Optional[str] = ..., messages: _Optional[_Iterable[_Union[ThreadMessage, _Mapping]]] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ListThreadsRequest(_message.Message):
    __slots__ = ("limit", "page_token")
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    limit: int
    page_token: str
    def __init__(self, limit: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ThreadSummary(_message.Message):
    __slots__ = ("thread_id", "agent_status", "message_count", "created_at", "updated_at")
    THREAD_ID_FIELD_NUMBER: _ClassVar[int]
    AGENT_STATUS_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_COUNT_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    thread_id: str
    agent_status: str
    message_count: int
    created_at: _timestamp_pb2.Timestamp
    updated_at: _timestamp_pb2.Timestamp
    def __init__(self, thread_id: _Optional[str] = ..., agent_status: _Optional[str] = ..., message_count: _Optional[int] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ListThreadsResponse(_message.Message):
    __slots__ = ("threads", "next_page_token")
    THREADS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    threads: _containers.RepeatedCompositeFieldContainer[ThreadSummary]
    next_page_token: str
    def __init__(self, threads: _Optional[_Iterable[_Union[ThreadSummary, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class DeleteThreadRequest(_message.Message):
    __slots__ = ("thread_id",)
    THREAD_ID_FIELD_NUMBER: _ClassVar[int]
    thread_id: str
    def __init__(self, thread_id: _Optional[str] = ...) -> None: ...

class DeleteThreadResponse(_message.Message):
    __slots__ = ("thread_id", "deleted")
    THREAD_ID_FIELD_NUMBER: _ClassVar[int]
    DELETED_FIELD_NUMBER: _ClassVar[int]
    thread_id: str
    deleted: bool
    def __init__(self, thread_id: _Optional[str] = ..., deleted: _Optional[bool] = ...) -> None: ...
