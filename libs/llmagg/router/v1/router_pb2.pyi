from collections.abc import Iterable as _Iterable
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar

from google.api import httpbody_pb2 as _httpbody_pb2
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper

DESCRIPTOR: _descriptor.FileDescriptor

class ModelQuality(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MODEL_QUALITY_UNSPECIFIED: _ClassVar[ModelQuality]
    MODEL_QUALITY_FASTEST: _ClassVar[ModelQuality]
    MODEL_QUALITY_BALANCED: _ClassVar[ModelQuality]
    MODEL_QUALITY_BEST_QUALITY: _ClassVar[ModelQuality]
MODEL_QUALITY_UNSPECIFIED: ModelQuality
MODEL_QUALITY_FASTEST: ModelQuality
MODEL_QUALITY_BALANCED: ModelQuality
MODEL_QUALITY_BEST_QUALITY: ModelQuality

class CreateChatCompletionRequest(_message.Message):
    __slots__ = ("http_body",)
    HTTP_BODY_FIELD_NUMBER: _ClassVar[int]
    http_body: _httpbody_pb2.HttpBody
    def __init__(self, http_body: _httpbody_pb2.HttpBody | _Mapping | None = ...) -> None: ...

class ListModelsJsonRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class CreateEmbeddingRequest(_message.Message):
    __slots__ = ("http_body",)
    HTTP_BODY_FIELD_NUMBER: _ClassVar[int]
    http_body: _httpbody_pb2.HttpBody
    def __init__(self, http_body: _httpbody_pb2.HttpBody | _Mapping | None = ...) -> None: ...

class ToolCallFunction(_message.Message):
    __slots__ = ("arguments", "name")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ARGUMENTS_FIELD_NUMBER: _ClassVar[int]
    name: str
    arguments: str
    def __init__(self, name: str | None = ..., arguments: str | None = ...) -> None: ...

class ToolCall(_message.Message):
    __slots__ = ("function", "id", "index", "type")
    ID_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    FUNCTION_FIELD_NUMBER: _ClassVar[int]
    INDEX_FIELD_NUMBER: _ClassVar[int]
    id: str
    type: str
    function: ToolCallFunction
    index: int
    def __init__(self, id: str | None = ..., type: str | None = ..., function: ToolCallFunction | _Mapping | None = ..., index: int | None = ...) -> None: ...

class ChatMessage(_message.Message):
    __slots__ = ("content", "content_parts", "name", "role", "tool_call_id", "tool_calls")
    ROLE_FIELD_NUMBER: _ClassVar[int]
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    CONTENT_PARTS_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    TOOL_CALL_ID_FIELD_NUMBER: _ClassVar[int]
    TOOL_CALLS_FIELD_NUMBER: _ClassVar[int]
    role: str
    content: str
    content_parts: _containers.RepeatedCompositeFieldContainer[_struct_pb2.Value]
    name: str
    tool_call_id: str
    tool_calls: _containers.RepeatedCompositeFieldContainer[ToolCall]
    def __init__(self, role: str | None = ..., content: str | None = ..., content_parts: _Iterable[_struct_pb2.Value | _Mapping] | None = ..., name: str | None = ..., tool_call_id: str | None = ..., tool_calls: _Iterable[ToolCall | _Mapping] | None = ...) -> None: ...

class ChatRequest(_message.Message):
    __slots__ = ("extra", "max_tokens", "messages", "model", "model_quality", "provider", "stop", "temperature", "top_p")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    MODEL_QUALITY_FIELD_NUMBER: _ClassVar[int]
    TEMPERATURE_FIELD_NUMBER: _ClassVar[int]
    TOP_P_FIELD_NUMBER: _ClassVar[int]
    MAX_TOKENS_FIELD_NUMBER: _ClassVar[int]
    STOP_FIELD_NUMBER: _ClassVar[int]
    EXTRA_FIELD_NUMBER: _ClassVar[int]
    model: str
    messages: _containers.RepeatedCompositeFieldContainer[ChatMessage]
    provider: str
    model_quality: ModelQuality
    temperature: float
    top_p: float
    max_tokens: int
    stop: _containers.RepeatedScalarFieldContainer[str]
    extra: _struct_pb2.Struct
    def __init__(self, model: str | None = ..., messages: _Iterable[ChatMessage | _Mapping] | None = ..., provider: str | None = ..., model_quality: ModelQuality | str | None = ..., temperature: float | None = ..., top_p: float | None = ..., max_tokens: int | None = ..., stop: _Iterable[str] | None = ..., extra: _struct_pb2.Struct | _Mapping | None = ...) -> None: ...

class StreamChatRequest(_message.Message):
    __slots__ = ("chat", "include_usage")
    CHAT_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_USAGE_FIELD_NUMBER: _ClassVar[int]
    chat: ChatRequest
    include_usage: bool
    def __init__(self, chat: ChatRequest | _Mapping | None = ..., include_usage: bool | None = ...) -> None: ...

class Usage(_message.Message):
    __slots__ = ("completion_tokens", "prompt_tokens", "total_tokens")
    PROMPT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    COMPLETION_TOKENS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_TOKENS_FIELD_NUMBER: _ClassVar[int]
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    def __init__(self, prompt_tokens: int | None = ..., completion_tokens: int | None = ..., total_tokens: int | None = ...) -> None: ...

class ChatChoice(_message.Message):
    __slots__ = ("finish_reason", "index", "message")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    FINISH_REASON_FIELD_NUMBER: _ClassVar[int]
    index: int
    message: ChatMessage
    finish_reason: str
    def __init__(self, index: int | None = ..., message: ChatMessage | _Mapping | None = ..., finish_reason: str | None = ...) -> None: ...

class RouteInfo(_message.Message):
    __slots__ = ("account", "attempts", "model", "provider")
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    provider: str
    model: str
    account: str
    attempts: int
    def __init__(self, provider: str | None = ..., model: str | None = ..., account: str | None = ..., attempts: int | None = ...) -> None: ...

class ChatResponse(_message.Message):
    __slots__ = ("choices", "created", "id", "model", "route", "usage")
    ID_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    CHOICES_FIELD_NUMBER: _ClassVar[int]
    USAGE_FIELD_NUMBER: _ClassVar[int]
    ROUTE_FIELD_NUMBER: _ClassVar[int]
    id: str
    created: int
    model: str
    choices: _containers.RepeatedCompositeFieldContainer[ChatChoice]
    usage: Usage
    route: RouteInfo
    def __init__(self, id: str | None = ..., created: int | None = ..., model: str | None = ..., choices: _Iterable[ChatChoice | _Mapping] | None = ..., usage: Usage | _Mapping | None = ..., route: RouteInfo | _Mapping | None = ...) -> None: ...

class ChatDelta(_message.Message):
    __slots__ = ("content", "role", "tool_calls")
    ROLE_FIELD_NUMBER: _ClassVar[int]
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    TOOL_CALLS_FIELD_NUMBER: _ClassVar[int]
    role: str
    content: str
    tool_calls: _containers.RepeatedCompositeFieldContainer[ToolCall]
    def __init__(self, role: str | None = ..., content: str | None = ..., tool_calls: _Iterable[ToolCall | _Mapping] | None = ...) -> None: ...

class StreamChoice(_message.Message):
    __slots__ = ("delta", "finish_reason", "index")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    DELTA_FIELD_NUMBER: _ClassVar[int]
    FINISH_REASON_FIELD_NUMBER: _ClassVar[int]
    index: int
    delta: ChatDelta
    finish_reason: str
    def __init__(self, index: int | None = ..., delta: ChatDelta | _Mapping | None = ..., finish_reason: str | None = ...) -> None: ...

class StreamChatResponse(_message.Message):
    __slots__ = ("choices", "created", "id", "model", "route", "usage")
    ID_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    CHOICES_FIELD_NUMBER: _ClassVar[int]
    USAGE_FIELD_NUMBER: _ClassVar[int]
    ROUTE_FIELD_NUMBER: _ClassVar[int]
    id: str
    created: int
    model: str
    choices: _containers.RepeatedCompositeFieldContainer[StreamChoice]
    usage: Usage
    route: RouteInfo
    def __init__(self, id: str | None = ..., created: int | None = ..., model: str | None = ..., choices: _Iterable[StreamChoice | _Mapping] | None = ..., usage: Usage | _Mapping | None = ..., route: RouteInfo | _Mapping | None = ...) -> None: ...

class ListModelsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class Model(_message.Message):
    __slots__ = ("aliases", "context_window", "free", "id", "provider", "provider_model", "quality", "type")
    ID_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_MODEL_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_WINDOW_FIELD_NUMBER: _ClassVar[int]
    QUALITY_FIELD_NUMBER: _ClassVar[int]
    ALIASES_FIELD_NUMBER: _ClassVar[int]
    FREE_FIELD_NUMBER: _ClassVar[int]
    id: str
    provider: str
    provider_model: str
    type: str
    context_window: int
    quality: int
    aliases: _containers.RepeatedScalarFieldContainer[str]
    free: bool
    def __init__(self, id: str | None = ..., provider: str | None = ..., provider_model: str | None = ..., type: str | None = ..., context_window: int | None = ..., quality: int | None = ..., aliases: _Iterable[str] | None = ..., free: bool | None = ...) -> None: ...

class ListModelsResponse(_message.Message):
    __slots__ = ("fallback_chains", "models")
    MODELS_FIELD_NUMBER: _ClassVar[int]
    FALLBACK_CHAINS_FIELD_NUMBER: _ClassVar[int]
    models: _containers.RepeatedCompositeFieldContainer[Model]
    fallback_chains: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, models: _Iterable[Model | _Mapping] | None = ..., fallback_chains: _Iterable[str] | None = ...) -> None: ...

class EmbedRequest(_message.Message):
    __slots__ = ("dimensions", "input", "model", "provider")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    INPUT_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    DIMENSIONS_FIELD_NUMBER: _ClassVar[int]
    model: str
    input: _containers.RepeatedScalarFieldContainer[str]
    provider: str
    dimensions: int
    def __init__(self, model: str | None = ..., input: _Iterable[str] | None = ..., provider: str | None = ..., dimensions: int | None = ...) -> None: ...

class Embedding(_message.Message):
    __slots__ = ("index", "values")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    index: int
    values: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, index: int | None = ..., values: _Iterable[float] | None = ...) -> None: ...

class EmbedResponse(_message.Message):
    __slots__ = ("embeddings", "model", "route", "usage")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    EMBEDDINGS_FIELD_NUMBER: _ClassVar[int]
    USAGE_FIELD_NUMBER: _ClassVar[int]
    ROUTE_FIELD_NUMBER: _ClassVar[int]
    model: str
    embeddings: _containers.RepeatedCompositeFieldContainer[Embedding]
    usage: Usage
    route: RouteInfo
    def __init__(self, model: str | None = ..., embeddings: _Iterable[Embedding | _Mapping] | None = ..., usage: Usage | _Mapping | None = ..., route: RouteInfo | _Mapping | None = ...) -> None: ...
