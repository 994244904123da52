from google.api import annotations_pb2 as _annotations_pb2
from llmagg import options_pb2 as _options_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ModelState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MODEL_STATE_UNSPECIFIED: _ClassVar[ModelState]
    MODEL_STATE_ACTIVE: _ClassVar[ModelState]
    MODEL_STATE_UNCONFIRMED: _ClassVar[ModelState]
    MODEL_STATE_SUSPENDED: _ClassVar[ModelState]
    MODEL_STATE_RETIRED: _ClassVar[ModelState]

class ChangeKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CHANGE_KIND_UNSPECIFIED: _ClassVar[ChangeKind]
    CHANGE_KIND_ADDED: _ClassVar[ChangeKind]
    CHANGE_KIND_RETIRED: _ClassVar[ChangeKind]
    CHANGE_KIND_SUSPENDED: _ClassVar[ChangeKind]
    CHANGE_KIND_RESTORED: _ClassVar[ChangeKind]
    CHANGE_KIND_LIMITS_CHANGED: _ClassVar[ChangeKind]
    CHANGE_KIND_PRICING_CHANGED: _ClassVar[ChangeKind]
    CHANGE_KIND_UPDATED: _ClassVar[ChangeKind]
MODEL_STATE_UNSPECIFIED: ModelState
MODEL_STATE_ACTIVE: ModelState
MODEL_STATE_UNCONFIRMED: ModelState
MODEL_STATE_SUSPENDED: ModelState
MODEL_STATE_RETIRED: ModelState
CHANGE_KIND_UNSPECIFIED: ChangeKind
CHANGE_KIND_ADDED: ChangeKind
CHANGE_KIND_RETIRED: ChangeKind
CHANGE_KIND_SUSPENDED: ChangeKind
CHANGE_KIND_RESTORED: ChangeKind
CHANGE_KIND_LIMITS_CHANGED: ChangeKind
CHANGE_KIND_PRICING_CHANGED: ChangeKind
CHANGE_KIND_UPDATED: ChangeKind

class Pricing(_message.Message):
    __slots__ = ("prompt", "completion")
    PROMPT_FIELD_NUMBER: _ClassVar[int]
    COMPLETION_FIELD_NUMBER: _ClassVar[int]
    prompt: str
    completion: str
    def __init__(self, prompt: _Optional[str] = ..., completion: _Optional[str] = ...) -> None: ...

class CatalogModel(_message.Message):
    __slots__ = ("provider", "model", "name", "type", "state", "state_reason", "state_since", "free", "context_length", "quality", "aliases", "limits", "capabilities", "expiration_date", "pricing", "provenance", "confidence", "first_seen", "last_seen", "sources")
    class LimitsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    class ProvenanceEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    STATE_REASON_FIELD_NUMBER: _ClassVar[int]
    STATE_SINCE_FIELD_NUMBER: _ClassVar[int]
    FREE_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_LENGTH_FIELD_NUMBER: _ClassVar[int]
    QUALITY_FIELD_NUMBER: _ClassVar[int]
    ALIASES_FIELD_NUMBER: _ClassVar[int]
    LIMITS_FIELD_NUMBER: _ClassVar[int]
    CAPABILITIES_FIELD_NUMBER: _ClassVar[int]
    EXPIRATION_DATE_FIELD_NUMBER: _ClassVar[int]
    PRICING_FIELD_NUMBER: _ClassVar[int]
    PROVENANCE_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    FIRST_SEEN_FIELD_NUMBER: _ClassVar[int]
    LAST_SEEN_FIELD_NUMBER: _ClassVar[int]
    SOURCES_FIELD_NUMBER: _ClassVar[int]
    provider: str
    model: str
    name: str
    type: str
    state: ModelState
    state_reason: str
    state_since: str
    free: bool
    context_length: int
    quality: int
    aliases: _containers.RepeatedScalarFieldContainer[str]
    limits: _containers.ScalarMap[str, float]
    capabilities: _containers.RepeatedScalarFieldContainer[str]
    expiration_date: str
    pricing: Pricing
    provenance: _containers.ScalarMap[str, str]
    confidence: float
    first_seen: str
    last_seen: str
    sources: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, provider: _Optional[str] = ..., model: _Optional[str] = ..., name: _Optional[str] = ..., type: _Optional[str] = ..., state: _Optional[_Union[ModelState, str]] = ..., state_reason: _Optional[str] = ..., state_since: _Optional[str] = ..., free: _Optional[bool] = ..., context_length: _Optional[int] = ..., quality: _Optional[int] = ..., aliases: _Optional[_Iterable[str]] = ..., limits: _Optional[_Mapping[str, float]] = ..., capabilities: _Optional[_Iterable[str]] = ..., expiration_date: _Optional[str] = ..., pricing: _Optional[_Union[Pricing, _Mapping]] = ..., provenance: _Optional[_Mapping[str, str]] = ..., confidence: _Optional[float] = ..., first_seen: _Optional[str] = ..., last_seen: _Optional[str] = ..., sources: _Optional[_Iterable[str]] = ...) -> None: ...

class Credits(_message.Message):
    __slots__ = ("usd", "text")
    USD_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    usd: float
    text: str
    def __init__(self, usd: _Optional[float] = ..., text: _Optional[str] = ...) -> None: ...

class AccountStatus(_message.Message):
    __slots__ = ("alias", "free_tier", "limits", "usage_usd", "limit_usd", "limit_remaining_usd", "checked_at")
    class LimitsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    ALIAS_FIELD_NUMBER: _ClassVar[int]
    FREE_TIER_FIELD_NUMBER: _ClassVar[int]
    LIMITS_FIELD_NUMBER: _ClassVar[int]
    USAGE_USD_FIELD_NUMBER: _ClassVar[int]
    LIMIT_USD_FIELD_NUMBER: _ClassVar[int]
    LIMIT_REMAINING_USD_FIELD_NUMBER: _ClassVar[int]
    CHECKED_AT_FIELD_NUMBER: _ClassVar[int]
    alias: str
    free_tier: bool
    limits: _containers.ScalarMap[str, float]
    usage_usd: float
    limit_usd: float
    limit_remaining_usd: float
    checked_at: str
    def __init__(self, alias: _Optional[str] = ..., free_tier: _Optional[bool] = ..., limits: _Optional[_Mapping[str, float]] = ..., usage_usd: _Optional[float] = ..., limit_usd: _Optional[float] = ..., limit_remaining_usd: _Optional[float] = ..., checked_at: _Optional[str] = ...) -> None: ...

class CatalogProvider(_message.Message):
    __slots__ = ("id", "name", "tier", "state", "state_reason", "base_url", "protocol", "website", "limits", "shared_quota", "credits", "notes", "provenance", "accounts", "first_seen", "last_seen")
    class LimitsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    class ProvenanceEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    TIER_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    STATE_REASON_FIELD_NUMBER: _ClassVar[int]
    BASE_URL_FIELD_NUMBER: _ClassVar[int]
    PROTOCOL_FIELD_NUMBER: _ClassVar[int]
    WEBSITE_FIELD_NUMBER: _ClassVar[int]
    LIMITS_FIELD_NUMBER: _ClassVar[int]
    SHARED_QUOTA_FIELD_NUMBER: _ClassVar[int]
    CREDITS_FIELD_NUMBER: _ClassVar[int]
    NOTES_FIELD_NUMBER: _ClassVar[int]
    PROVENANCE_FIELD_NUMBER: _ClassVar[int]
    ACCOUNTS_FIELD_NUMBER: _ClassVar[int]
    FIRST_SEEN_FIELD_NUMBER: _ClassVar[int]
    LAST_SEEN_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    tier: str
    state: ModelState
    state_reason: str
    base_url: str
    protocol: str
    website: str
    limits: _containers.ScalarMap[str, float]
    shared_quota: bool
    credits: Credits
    notes: _containers.RepeatedScalarFieldContainer[str]
    provenance: _containers.ScalarMap[str, str]
    accounts: _containers.RepeatedCompositeFieldContainer[AccountStatus]
    first_seen: str
    last_seen: str
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., tier: _Optional[str] = ..., state: _Optional[_Union[ModelState, str]] = ..., state_reason: _Optional[str] = ..., base_url: _Optional[str] = ..., protocol: _Optional[str] = ..., website: _Optional[str] = ..., limits: _Optional[_Mapping[str, float]] = ..., shared_quota: _Optional[bool] = ..., credits: _Optional[_Union[Credits, _Mapping]] = ..., notes: _Optional[_Iterable[str]] = ..., provenance: _Optional[_Mapping[str, str]] = ..., accounts: _Optional[_Iterable[_Union[AccountStatus, _Mapping]]] = ..., first_seen: _Optional[str] = ..., last_seen: _Optional[str] = ...) -> None: ...

class Catalog(_message.Message):
    __slots__ = ("revision", "updated_at", "providers", "models")
    REVISION_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    PROVIDERS_FIELD_NUMBER: _ClassVar[int]
    MODELS_FIELD_NUMBER: _ClassVar[int]
    revision: int
    updated_at: str
    providers: _containers.RepeatedCompositeFieldContainer[CatalogProvider]
    models: _containers.RepeatedCompositeFieldContainer[CatalogModel]
    def __init__(self, revision: _Optional[int] = ..., updated_at: _Optional[str] = ..., providers: _Optional[_Iterable[_Union[CatalogProvider, _Mapping]]] = ..., models: _Optional[_Iterable[_Union[CatalogModel, _Mapping]]] = ...) -> None: ...

class CatalogChange(_message.Message):
    __slots__ = ("id", "at", "kind", "provider", "model", "source", "detail")
    ID_FIELD_NUMBER: _ClassVar[int]
    AT_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    id: int
    at: str
    kind: ChangeKind
    provider: str
    model: str
    source: str
    detail: str
    def __init__(self, id: _Optional[int] = ..., at: _Optional[str] = ..., kind: _Optional[_Union[ChangeKind, str]] = ..., provider: _Optional[str] = ..., model: _Optional[str] = ..., source: _Optional[str] = ..., detail: _Optional[str] = ...) -> None: ...

class SourceStatus(_message.Message):
    __slots__ = ("name", "enabled", "interval_s", "last_attempt_at", "last_success_at", "last_error", "consecutive_failures", "next_run_at")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ENABLED_FIELD_NUMBER: _ClassVar[int]
    INTERVAL_S_FIELD_NUMBER: _ClassVar[int]
    LAST_ATTEMPT_AT_FIELD_NUMBER: _ClassVar[int]
    LAST_SUCCESS_AT_FIELD_NUMBER: _ClassVar[int]
    LAST_ERROR_FIELD_NUMBER: _ClassVar[int]
    CONSECUTIVE_FAILURES_FIELD_NUMBER: _ClassVar[int]
    NEXT_RUN_AT_FIELD_NUMBER: _ClassVar[int]
    name: str
    enabled: bool
    interval_s: float
    last_attempt_at: str
    last_success_at: str
    last_error: str
    consecutive_failures: int
    next_run_at: str
    def __init__(self, name: _Optional[str] = ..., enabled: _Optional[bool] = ..., interval_s: _Optional[float] = ..., last_attempt_at: _Optional[str] = ..., last_success_at: _Optional[str] = ..., last_error: _Optional[str] = ..., consecutive_failures: _Optional[int] = ..., next_run_at: _Optional[str] = ...) -> None: ...

class GetCatalogRequest(_message.Message):
    __slots__ = ("provider", "free_only", "include_retired")
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    FREE_ONLY_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_RETIRED_FIELD_NUMBER: _ClassVar[int]
    provider: str
    free_only: bool
    include_retired: bool
    def __init__(self, provider: _Optional[str] = ..., free_only: _Optional[bool] = ..., include_retired: _Optional[bool] = ...) -> None: ...

class GetCatalogResponse(_message.Message):
    __slots__ = ("catalog", "sources")
    CATALOG_FIELD_NUMBER: _ClassVar[int]
    SOURCES_FIELD_NUMBER: _ClassVar[int]
    catalog: Catalog
    sources: _containers.RepeatedCompositeFieldContainer[SourceStatus]
    def __init__(self, catalog: _Optional[_Union[Catalog, _Mapping]] = ..., sources: _Optional[_Iterable[_Union[SourceStatus, _Mapping]]] = ...) -> None: ...

class WatchCatalogRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class WatchCatalogResponse(_message.Message):
    __slots__ = ("catalog", "changes")
    CATALOG_FIELD_NUMBER: _ClassVar[int]
    CHANGES_FIELD_NUMBER: _ClassVar[int]
    catalog: Catalog
    changes: _containers.RepeatedCompositeFieldContainer[CatalogChange]
    def __init__(self, catalog: _Optional[_Union[Catalog, _Mapping]] = ..., changes: _Optional[_Iterable[_Union[CatalogChange, _Mapping]]] = ...) -> None: ...

class ListChangesRequest(_message.Message):
    __slots__ = ("since", "provider", "limit")
    SINCE_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    since: str
    provider: str
    limit: int
    def __init__(self, since: _Optional[str] = ..., provider: _Optional[str] = ..., limit: _Optional[int] = ...) -> None: ...

class ListChangesResponse(_message.Message):
    __slots__ = ("changes",)
    CHANGES_FIELD_NUMBER: _ClassVar[int]
    changes: _containers.RepeatedCompositeFieldContainer[CatalogChange]
    def __init__(self, changes: _Optional[_Iterable[_Union[CatalogChange, _Mapping]]] = ...) -> None: ...

class RefreshNowRequest(_message.Message):
    __slots__ = ("sources",)
    SOURCES_FIELD_NUMBER: _ClassVar[int]
    sources: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, sources: _Optional[_Iterable[str]] = ...) -> None: ...

class RefreshNowResponse(_message.Message):
    __slots__ = ("sources", "revision", "changes")
    SOURCES_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    CHANGES_FIELD_NUMBER: _ClassVar[int]
    sources: _containers.RepeatedCompositeFieldContainer[SourceStatus]
    revision: int
    changes: _containers.RepeatedCompositeFieldContainer[CatalogChange]
    def __init__(self, sources: _Optional[_Iterable[_Union[SourceStatus, _Mapping]]] = ..., revision: _Optional[int] = ..., changes: _Optional[_Iterable[_Union[CatalogChange, _Mapping]]] = ...) -> None: ...
