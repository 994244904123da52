from google.api import annotations_pb2 as _annotations_pb2
from llmagg import options_pb2 as _options_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class QuotaKey(_message.Message):
    __slots__ = ("provider", "account", "model")
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    provider: str
    account: str
    model: str
    def __init__(self, provider: _Optional[str] = ..., account: _Optional[str] = ..., model: _Optional[str] = ...) -> None: ...

class ReserveRequest(_message.Message):
    __slots__ = ("key", "estimated_tokens", "client_id", "lease_requests", "reservation_id")
    KEY_FIELD_NUMBER: _ClassVar[int]
    ESTIMATED_TOKENS_FIELD_NUMBER: _ClassVar[int]
    CLIENT_ID_FIELD_NUMBER: _ClassVar[int]
    LEASE_REQUESTS_FIELD_NUMBER: _ClassVar[int]
    RESERVATION_ID_FIELD_NUMBER: _ClassVar[int]
    key: QuotaKey
    estimated_tokens: int
    client_id: str
    lease_requests: int
    reservation_id: str
    def __init__(self, key: _Optional[_Union[QuotaKey, _Mapping]] = ..., estimated_tokens: _Optional[int] = ..., client_id: _Optional[str] = ..., lease_requests: _Optional[int] = ..., reservation_id: _Optional[str] = ...) -> None: ...

class ReserveResponse(_message.Message):
    __slots__ = ("granted", "reservation_id", "retry_after_s", "reason", "requests", "tokens", "valid_for_s", "remaining")
    GRANTED_FIELD_NUMBER: _ClassVar[int]
    RESERVATION_ID_FIELD_NUMBER: _ClassVar[int]
    RETRY_AFTER_S_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    REQUESTS_FIELD_NUMBER: _ClassVar[int]
    TOKENS_FIELD_NUMBER: _ClassVar[int]
    VALID_FOR_S_FIELD_NUMBER: _ClassVar[int]
    REMAINING_FIELD_NUMBER: _ClassVar[int]
    granted: bool
    reservation_id: str
    retry_after_s: float
    reason: str
    requests: int
    tokens: int
    valid_for_s: float
    remaining: float
    def __init__(self, granted: _Optional[bool] = ..., reservation_id: _Optional[str] = ..., retry_after_s: _Optional[float] = ..., reason: _Optional[str] = ..., requests: _Optional[int] = ..., tokens: _Optional[int] = ..., valid_for_s: _Optional[float] = ..., remaining: _Optional[float] = ...) -> None: ...

class Settlement(_message.Message):
    __slots__ = ("reservation_id", "key", "client_id", "estimated_tokens", "usage_known", "prompt_tokens", "completion_tokens", "outcome", "latency_ms", "upstream_status", "upstream_headers", "retry_after_s", "quota_id", "ended_at", "leased", "requested_model", "trace_id", "first_token_ms")
    class UpstreamHeadersEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    RESERVATION_ID_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    CLIENT_ID_FIELD_NUMBER: _ClassVar[int]
    ESTIMATED_TOKENS_FIELD_NUMBER: _ClassVar[int]
    USAGE_KNOWN_FIELD_NUMBER: _ClassVar[int]
    PROMPT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    COMPLETION_TOKENS_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    LATENCY_MS_FIELD_NUMBER: _ClassVar[int]
    UPSTREAM_STATUS_FIELD_NUMBER: _ClassVar[int]
    UPSTREAM_HEADERS_FIELD_NUMBER: _ClassVar[int]
    RETRY_AFTER_S_FIELD_NUMBER: _ClassVar[int]
    QUOTA_ID_FIELD_NUMBER: _ClassVar[int]
    ENDED_AT_FIELD_NUMBER: _ClassVar[int]
    LEASED_FIELD_NUMBER: _ClassVar[int]
    REQUESTED_MODEL_FIELD_NUMBER: _ClassVar[int]
    TRACE_ID_FIELD_NUMBER: _ClassVar[int]
    FIRST_TOKEN_MS_FIELD_NUMBER: _ClassVar[int]
    reservation_id: str
    key: QuotaKey
    client_id: str
    estimated_tokens: int
    usage_known: bool
    prompt_tokens: int
    completion_tokens: int
    outcome: str
    latency_ms: float
    upstream_status: int
    upstream_headers: _containers.ScalarMap[str, str]
    retry_after_s: float
    quota_id: str
    ended_at: float
    leased: bool
    requested_model: str
    trace_id: str
    first_token_ms: float
    def __init__(self, reservation_id: _Optional[str] = ..., key: _Optional[_Union[QuotaKey, _Mapping]] = ..., client_id: _Optional[str] = ..., estimated_tokens: _Optional[int] = ..., usage_known: _Optional[bool] = ..., prompt_tokens: _Optional[int] = ..., completion_tokens: _Optional[int] = ..., outcome: _Optional[str] = ..., latency_ms: _Optional[float] = ..., upstream_status: _Optional[int] = ..., upstream_headers: _Optional[_Mapping[str, str]] = ..., retry_after_s: _Optional[float] = ..., quota_id: _Optional[str] = ..., ended_at: _Optional[float] = ..., leased: _Optional[bool] = ..., requested_model: _Optional[str] = ..., trace_id: _Optional[str] = ..., first_token_ms: _Optional[float] = ...) -> None: ...

class LeaseReturn(_message.Message):
    __slots__ = ("reservation_id", "requests", "tokens", "unclaimed")
    RESERVATION_ID_FIELD_NUMBER: _ClassVar[int]
    REQUESTS_FIELD_NUMBER: _ClassVar[int]
    TOKENS_FIELD_NUMBER: _ClassVar[int]
    UNCLAIMED_FIELD_NUMBER: _ClassVar[int]
    reservation_id: str
    requests: int
    tokens: int
    unclaimed: bool
    def __init__(self, reservation_id: _Optional[str] = ..., requests: _Optional[int] = ..., tokens: _Optional[int] = ..., unclaimed: _Optional[bool] = ...) -> None: ...

class SettleRequest(_message.Message):
    __slots__ = ("settlements", "returns", "batch_id")
    SETTLEMENTS_FIELD_NUMBER: _ClassVar[int]
    RETURNS_FIELD_NUMBER: _ClassVar[int]
    BATCH_ID_FIELD_NUMBER: _ClassVar[int]
    settlements: _containers.RepeatedCompositeFieldContainer[Settlement]
    returns: _containers.RepeatedCompositeFieldContainer[LeaseReturn]
    batch_id: str
    def __init__(self, settlements: _Optional[_Iterable[_Union[Settlement, _Mapping]]] = ..., returns: _Optional[_Iterable[_Union[LeaseReturn, _Mapping]]] = ..., batch_id: _Optional[str] = ...) -> None: ...

class SettleResponse(_message.Message):
    __slots__ = ("settled", "refused")
    SETTLED_FIELD_NUMBER: _ClassVar[int]
    REFUSED_FIELD_NUMBER: _ClassVar[int]
    settled: int
    refused: _containers.RepeatedCompositeFieldContainer[RefusedItem]
    def __init__(self, settled: _Optional[int] = ..., refused: _Optional[_Iterable[_Union[RefusedItem, _Mapping]]] = ...) -> None: ...

class RefusedItem(_message.Message):
    __slots__ = ("list", "index", "reason")
    LIST_FIELD_NUMBER: _ClassVar[int]
    INDEX_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    list: str
    index: int
    reason: str
    def __init__(self, list: _Optional[str] = ..., index: _Optional[int] = ..., reason: _Optional[str] = ...) -> None: ...

class HeadroomRequest(_message.Message):
    __slots__ = ("keys",)
    KEYS_FIELD_NUMBER: _ClassVar[int]
    keys: _containers.RepeatedCompositeFieldContainer[QuotaKey]
    def __init__(self, keys: _Optional[_Iterable[_Union[QuotaKey, _Mapping]]] = ...) -> None: ...

class KeyHeadroom(_message.Message):
    __slots__ = ("key", "remaining", "retry_after_s")
    KEY_FIELD_NUMBER: _ClassVar[int]
    REMAINING_FIELD_NUMBER: _ClassVar[int]
    RETRY_AFTER_S_FIELD_NUMBER: _ClassVar[int]
    key: QuotaKey
    remaining: float
    retry_after_s: float
    def __init__(self, key: _Optional[_Union[QuotaKey, _Mapping]] = ..., remaining: _Optional[float] = ..., retry_after_s: _Optional[float] = ...) -> None: ...

class HeadroomResponse(_message.Message):
    __slots__ = ("headroom",)
    HEADROOM_FIELD_NUMBER: _ClassVar[int]
    headroom: _containers.RepeatedCompositeFieldContainer[KeyHeadroom]
    def __init__(self, headroom: _Optional[_Iterable[_Union[KeyHeadroom, _Mapping]]] = ...) -> None: ...

class QueryUsageRequest(_message.Message):
    __slots__ = ("start", "end", "bucket", "group_by", "client_id", "provider", "account", "model")
    START_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    BUCKET_FIELD_NUMBER: _ClassVar[int]
    GROUP_BY_FIELD_NUMBER: _ClassVar[int]
    CLIENT_ID_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    start: str
    end: str
    bucket: str
    group_by: _containers.RepeatedScalarFieldContainer[str]
    client_id: str
    provider: str
    account: str
    model: str
    def __init__(self, start: _Optional[str] = ..., end: _Optional[str] = ..., bucket: _Optional[str] = ..., group_by: _Optional[_Iterable[str]] = ..., client_id: _Optional[str] = ..., provider: _Optional[str] = ..., account: _Optional[str] = ..., model: _Optional[str] = ...) -> None: ...

class UsageRow(_message.Message):
    __slots__ = ("bucket_start", "provider", "account", "model", "client_id", "outcome", "requests", "prompt_tokens", "completion_tokens", "total_tokens", "latency_ms_avg", "cost_avoided_usd", "attempts")
    BUCKET_START_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    CLIENT_ID_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    REQUESTS_FIELD_NUMBER: _ClassVar[int]
    PROMPT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    COMPLETION_TOKENS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_TOKENS_FIELD_NUMBER: _ClassVar[int]
    LATENCY_MS_AVG_FIELD_NUMBER: _ClassVar[int]
    COST_AVOIDED_USD_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    bucket_start: str
    provider: str
    account: str
    model: str
    client_id: str
    outcome: str
    requests: int
    prompt_tokens: float
    completion_tokens: float
    total_tokens: float
    latency_ms_avg: float
    cost_avoided_usd: float
    attempts: int
    def __init__(self, bucket_start: _Optional[str] = ..., provider: _Optional[str] = ..., account: _Optional[str] = ..., model: _Optional[str] = ..., client_id: _Optional[str] = ..., outcome: _Optional[str] = ..., requests: _Optional[int] = ..., prompt_tokens: _Optional[float] = ..., completion_tokens: _Optional[float] = ..., total_tokens: _Optional[float] = ..., latency_ms_avg: _Optional[float] = ..., cost_avoided_usd: _Optional[float] = ..., attempts: _Optional[int] = ...) -> None: ...

class QueryUsageResponse(_message.Message):
    __slots__ = ("object", "start", "end", "bucket", "data")
    OBJECT_FIELD_NUMBER: _ClassVar[int]
    START_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    BUCKET_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    object: str
    start: str
    end: str
    bucket: str
    data: _containers.RepeatedCompositeFieldContainer[UsageRow]
    def __init__(self, object: _Optional[str] = ..., start: _Optional[str] = ..., end: _Optional[str] = ..., bucket: _Optional[str] = ..., data: _Optional[_Iterable[_Union[UsageRow, _Mapping]]] = ...) -> None: ...

class ListRecentAttemptsRequest(_message.Message):
    __slots__ = ("limit",)
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    limit: int
    def __init__(self, limit: _Optional[int] = ...) -> None: ...

class RecentAttempt(_message.Message):
    __slots__ = ("at", "client_id", "provider", "account", "model", "outcome", "prompt_tokens", "completion_tokens", "latency_ms", "cost_avoided_usd", "requested_model", "trace_id", "first_token_ms")
    AT_FIELD_NUMBER: _ClassVar[int]
    CLIENT_ID_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    PROMPT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    COMPLETION_TOKENS_FIELD_NUMBER: _ClassVar[int]
    LATENCY_MS_FIELD_NUMBER: _ClassVar[int]
    COST_AVOIDED_USD_FIELD_NUMBER: _ClassVar[int]
    REQUESTED_MODEL_FIELD_NUMBER: _ClassVar[int]
    TRACE_ID_FIELD_NUMBER: _ClassVar[int]
    FIRST_TOKEN_MS_FIELD_NUMBER: _ClassVar[int]
    at: str
    client_id: str
    provider: str
    account: str
    model: str
    outcome: str
    prompt_tokens: int
    completion_tokens: int
    latency_ms: float
    cost_avoided_usd: float
    requested_model: str
    trace_id: str
    first_token_ms: float
    def __init__(self, at: _Optional[str] = ..., client_id: _Optional[str] = ..., provider: _Optional[str] = ..., account: _Optional[str] = ..., model: _Optional[str] = ..., outcome: _Optional[str] = ..., prompt_tokens: _Optional[int] = ..., completion_tokens: _Optional[int] = ..., latency_ms: _Optional[float] = ..., cost_avoided_usd: _Optional[float] = ..., requested_model: _Optional[str] = ..., trace_id: _Optional[str] = ..., first_token_ms: _Optional[float] = ...) -> None: ...

class ListRecentAttemptsResponse(_message.Message):
    __slots__ = ("object", "data")
    OBJECT_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    object: str
    data: _containers.RepeatedCompositeFieldContainer[RecentAttempt]
    def __init__(self, object: _Optional[str] = ..., data: _Optional[_Iterable[_Union[RecentAttempt, _Mapping]]] = ...) -> None: ...

class GetQuotaWindowsRequest(_message.Message):
    __slots__ = ("keys",)
    KEYS_FIELD_NUMBER: _ClassVar[int]
    keys: _containers.RepeatedCompositeFieldContainer[QuotaKey]
    def __init__(self, keys: _Optional[_Iterable[_Union[QuotaKey, _Mapping]]] = ...) -> None: ...

class QuotaWindow(_message.Message):
    __slots__ = ("key", "name", "applies_to", "dimension", "used", "limit", "resets_in_s", "resets_at")
    KEY_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    APPLIES_TO_FIELD_NUMBER: _ClassVar[int]
    DIMENSION_FIELD_NUMBER: _ClassVar[int]
    USED_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    RESETS_IN_S_FIELD_NUMBER: _ClassVar[int]
    RESETS_AT_FIELD_NUMBER: _ClassVar[int]
    key: QuotaKey
    name: str
    applies_to: str
    dimension: str
    used: float
    limit: float
    resets_in_s: float
    resets_at: str
    def __init__(self, key: _Optional[_Union[QuotaKey, _Mapping]] = ..., name: _Optional[str] = ..., applies_to: _Optional[str] = ..., dimension: _Optional[str] = ..., used: _Optional[float] = ..., limit: _Optional[float] = ..., resets_in_s: _Optional[float] = ..., resets_at: _Optional[str] = ...) -> None: ...

class GetQuotaWindowsResponse(_message.Message):
    __slots__ = ("windows",)
    WINDOWS_FIELD_NUMBER: _ClassVar[int]
    windows: _containers.RepeatedCompositeFieldContainer[QuotaWindow]
    def __init__(self, windows: _Optional[_Iterable[_Union[QuotaWindow, _Mapping]]] = ...) -> None: ...
