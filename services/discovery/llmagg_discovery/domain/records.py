"""What sources say and what the catalogue holds: facts per source, merged records, changes.

A source never edits the catalogue: it reports `ModelFacts` / `ProviderFacts` (None where it says
nothing) and verdicts; `catalogue.Catalogue` merges them, keeping per field the value of the
highest-ranked source that states it, and records every change.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import NamedTuple


class ModelState(enum.Enum):
    ACTIVE = "active"  # routable
    UNCONFIRMED = "unconfirmed"  # known only from the community list: shown, not routed
    SUSPENDED = "suspended"  # failed N probes in a row
    RETIRED = "retired"  # gone: 410, not found, missing past the grace period, retired in the registry


class ChangeKind(enum.Enum):
    ADDED = "added"
    RETIRED = "retired"
    SUSPENDED = "suspended"
    RESTORED = "restored"  # active again after being suspended or retired
    LIMITS_CHANGED = "limits_changed"
    PRICING_CHANGED = "pricing_changed"
    UPDATED = "updated"  # another field (context length, name, expiration date, ...)


class ModelKey(NamedTuple):
    provider: str
    model: str


class ProbeOutcome(enum.Enum):
    OK = "ok"  # it answered
    FAILED = "failed"  # 5xx, timeout, connection refused, an answer that does not parse: counts toward suspension
    GONE = "gone"  # 410, or "model not found": retired at once
    INCONCLUSIVE = "inconclusive"  # 429, 401/403 (the account, not the model): says nothing of the model


@dataclass(frozen=True)
class Verdict:
    outcome: ProbeOutcome
    detail: str = ""


@dataclass(frozen=True)
class Pricing:
    prompt: str = ""
    completion: str = ""

    @property
    def free(self) -> bool:
        return _is_zero(self.prompt) and _is_zero(self.completion)


def _is_zero(price: str) -> bool:
    try:
        return float(price) == 0
    except ValueError:
        return False


@dataclass(frozen=True)
class ModelFacts:
    """What one source says of one model; None: it says nothing of that field."""

    name: str | None = None
    type: str | None = None
    free: bool | None = None
    context_length: int | None = None
    quality: int | None = None
    aliases: tuple[str, ...] | None = None
    limits: Mapping[str, float] | None = None
    capabilities: tuple[str, ...] | None = None
    expiration_date: str | None = None
    pricing: Pricing | None = None
    retired_on: str | None = None  # the source says it is gone since then
    retired_reason: str | None = None
    # The source names the model by a display name only (the community list): not an id to route to.
    display_name_only: bool = False


MODEL_FIELDS = (
    "name",
    "type",
    "free",
    "context_length",
    "quality",
    "aliases",
    "limits",
    "capabilities",
    "expiration_date",
    "pricing",
)


@dataclass(frozen=True)
class AccountStatus:
    """What a provider's API says about one account (OpenRouter's /api/v1/key)."""

    alias: str
    free_tier: bool
    limits: Mapping[str, float] = field(default_factory=dict)
    usage_usd: float = 0.0
    limit_usd: float | None = None
    limit_remaining_usd: float | None = None
    checked_at: float = 0.0


@dataclass(frozen=True)
class ProviderFacts:
    name: str | None = None
    tier: str | None = None
    base_url: str | None = None
    protocol: str | None = None
    website: str | None = None
    limits: Mapping[str, float] | None = None
    shared_quota: bool | None = None
    credits_usd: float | None = None
    credits_text: str | None = None
    notes: tuple[str, ...] | None = None
    retired_on: str | None = None
    retired_reason: str | None = None
    free_tier_ended_on: str | None = None


PROVIDER_FIELDS = (
    "name",
    "tier",
    "base_url",
    "protocol",
    "website",
    "limits",
    "shared_quota",
    "credits_usd",
    "credits_text",
    "notes",
    "free_tier_ended_on",
)


@dataclass(frozen=True)
class SourceReport:
    """One run of one source."""

    source: str
    providers: Mapping[str, ProviderFacts] = field(default_factory=dict)
    models: Mapping[ModelKey, ModelFacts] = field(default_factory=dict)
    # Providers whose whole model list this report holds: a model of theirs it does not list is
    # missing from it (and retired after the grace period).
    complete_for: frozenset[str] = frozenset()
    # The report lists models by their API ids (a provider's own /models): absence from it means the
    # model is gone, whoever else lists it. Otherwise absence only counts for entries no one else lists.
    authoritative: bool = False
    verdicts: Mapping[ModelKey, Verdict] = field(default_factory=dict)
    accounts: Mapping[str, tuple[AccountStatus, ...]] = field(default_factory=dict)  # provider -> its accounts
    problems: tuple[str, ...] = ()  # what went wrong for parts of it (a provider's list that failed, ...)


@dataclass
class Sighting:
    """When a source listed a model: first and last time, and since when it no longer does."""

    first: float
    last: float
    missing_since: float | None = None


@dataclass
class ProbeRecord:
    last_at: float = 0.0
    last_outcome: str = ""
    last_ok_at: float = 0.0
    consecutive_failures: int = 0
    gone: str = ""  # why a probe found it gone ("" while it answers)


@dataclass
class ModelRecord:
    """One (provider, model) of the catalogue: each source's latest facts, and what follows from them."""

    key: ModelKey
    claims: dict[str, ModelFacts]
    sightings: dict[str, Sighting]
    first_seen: float
    probe: ProbeRecord = field(default_factory=ProbeRecord)
    state: ModelState = ModelState.ACTIVE
    state_reason: str = ""
    state_since: float = 0.0


@dataclass
class ProviderRecord:
    id: str
    claims: dict[str, ProviderFacts]
    first_seen: float
    last_seen: float
    accounts: tuple[AccountStatus, ...] = ()
    state: ModelState = ModelState.ACTIVE
    state_reason: str = ""


@dataclass(frozen=True)
class Change:
    at: float
    kind: ChangeKind
    provider: str
    model: str  # "" for the provider itself
    source: str
    detail: str
    id: int = 0  # given by the store


@dataclass(frozen=True)
class MergedModel:
    """A model as the catalogue shows it: each field from the highest-ranked source that states it."""

    provider: str
    model: str
    name: str
    type: str
    state: ModelState
    state_reason: str
    state_since: float
    free: bool
    context_length: int
    quality: int
    aliases: tuple[str, ...]
    limits: Mapping[str, float]
    capabilities: tuple[str, ...]
    expiration_date: str
    pricing: Pricing | None
    provenance: Mapping[str, str]
    confidence: float
    first_seen: float
    last_seen: float
    sources: tuple[str, ...]


@dataclass(frozen=True)
class MergedProvider:
    id: str
    name: str
    tier: str
    state: ModelState
    state_reason: str
    base_url: str
    protocol: str
    website: str
    limits: Mapping[str, float]
    shared_quota: bool
    credits_usd: float
    credits_text: str
    notes: tuple[str, ...]
    provenance: Mapping[str, str]
    accounts: tuple[AccountStatus, ...]
    first_seen: float
    last_seen: float


@dataclass(frozen=True)
class CatalogueSnapshot:
    revision: int
    updated_at: float
    providers: tuple[MergedProvider, ...]
    models: tuple[MergedModel, ...]
