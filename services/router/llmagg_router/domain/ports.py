"""What the attempt loop needs from the rest of the suite, as interfaces of the router's own domain.

Each port has an in-process implementation for one machine (adapters/) and gets a networked one
when its service arrives (credentials, ratelimit, a shared Redis); `backends.py` picks them from
settings in one place. The domain never knows which it has.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

from llmagg.common.secrets import Secret
from llmagg.registry import Account
from llmagg_router.domain.catalog_view import CatalogView


class KeyOutcome(enum.Enum):
    ACCEPTED = "accepted"  # the provider took the key
    REJECTED = "rejected"  # 401/403: the key is bad, revoked or out of credit


class KeyUnavailable(Exception):
    """No key can be leased for this account now (disabled, deleted, or its source is unreachable and no
    lease is held); the walk skips the candidate without calling it."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class KeySource(Protocol):
    """Provider accounts and their keys.

    `generation` changes whenever the set of accounts changes (added, removed, re-ordered), so that
    whoever derives something from the accounts (the resolver's routable providers) can check with one
    comparison per request whether to derive it again.
    """

    generation: int

    async def start(self) -> None:
        """Begin serving (on the serving loop): read the accounts, start any background refresh."""
        ...

    async def close(self) -> None: ...

    def accounts(self, provider: str) -> tuple[Account, ...]:
        """Every account of a provider, in a stable order (rotation starts from it)."""
        ...

    def usable(self, account: Account) -> bool:
        """False while the account is disabled (its key was rejected)."""
        ...

    async def lease(self, account: Account) -> Secret | None:
        """The key to call the provider with now (None for a provider without auth); KeyUnavailable when
        there is none to be had."""
        ...

    async def report(self, account: Account, outcome: KeyOutcome) -> None:
        """What the provider said of the key; a rejection disables the account."""
        ...


class CatalogSource(Protocol):
    """The models the router may route to, kept current (the discovery service's catalogue, or the
    configuration alone). `generation` changes whenever the view does, so the resolver re-derives its
    targets with one comparison per request."""

    generation: int

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    def view(self) -> CatalogView: ...


class QuotaKey(NamedTuple):
    provider: str
    account: str
    # The model the attempt asks for; the ledger knows which models share a quota (a shared pool).
    model: str


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int


@dataclass(frozen=True)
class Reservation:
    key: QuotaKey
    granted: bool
    id: str = ""
    retry_after_s: float | None = None  # when denied: how long until the quota allows it
    estimated_tokens: int = 0
    client_id: str = ""  # who the attempt is for (the gateway's x-llmagg-client-id)


@dataclass(frozen=True)
class Observed:
    """What an attempt saw of its upstream, for the ledger to learn from and to record."""

    latency_ms: float = 0.0
    status: int = 0  # the upstream's HTTP status (0: no answer)
    headers: Mapping[str, str] = field(default_factory=dict)  # its rate-limit headers, names lowercase
    retry_after_s: float | None = None  # the wait it asked for, however it said it
    quota_id: str = ""  # Gemini's QuotaFailure quotaId of a 429
    requested_model: str = ""  # what the client asked for ("auto", an alias)
    trace_id: str = ""  # the attempt's trace, 32 hex digits, when it was sampled ("": not traced)
    # To the first content chunk of a streamed answer (None: not measured: a failure, an unstreamed answer).
    first_token_ms: float | None = None


@dataclass(frozen=True)
class Headroom:
    remaining: float  # share of the tightest window still free, 0..1
    retry_after_s: float | None = None  # when nothing is left: how long until something is


class QuotaLedger(Protocol):
    """Free-tier quotas: reserve before an attempt, settle with the truth after it."""

    async def reserve(self, key: QuotaKey, estimated_tokens: int, client_id: str = "") -> Reservation: ...

    async def settle(
        self, reservation: Reservation, usage: Usage | None, outcome: str, observed: Observed | None = None
    ) -> None:
        """Release the estimate and charge what was used (None: the provider reported nothing)."""
        ...

    async def headroom(self, keys: Sequence[QuotaKey]) -> Mapping[QuotaKey, Headroom]:
        """What is left for many keys in one call; keys it knows nothing of are left out."""
        ...


class CircuitState(enum.Enum):
    CLOSED = "closed"  # in use
    OPEN = "open"  # failing: tried only when nothing else is left
    HALF_OPEN = "half_open"  # its open window has passed: one probe may test it


class HealthStore(Protocol):
    """What the router has learned about its upstreams: cooldowns, circuits, latency.

    A circuit is named by a string: a provider's model (`provider/model`) for answers that fail, an
    endpoint (`https://host:port`) for connections that fail, so one dead host takes every model
    behind it out at once.
    """

    def cool_down(self, provider: str, account: str, model: str, seconds: float) -> None:
        """No requests to this account (for this model, or "" for the whole account) for `seconds`."""
        ...

    def cooling_for(self, provider: str, account: str, model: str) -> float:
        """Seconds until this account may be used for this model again (0 when it may now)."""
        ...

    def record_failure(self, circuit: str) -> None: ...

    def record_success(self, circuit: str) -> None: ...

    def circuit_state(self, circuit: str) -> CircuitState: ...

    def claim_probe(self, circuit: str) -> bool:
        """True for the one caller that may test a half-open circuit now; False for everyone else."""
        ...

    def record_latency(self, provider: str, model: str, latency_ms: float) -> None: ...

    def latency_ms(self, provider: str, model: str) -> float | None: ...

    def snapshot(self) -> HealthSnapshot:
        """Everything learned, as it stands now (for the routing-state view and metrics)."""
        ...


@dataclass(frozen=True)
class Cooldown:
    provider: str
    account: str
    model: str  # "" for the whole account
    remaining_s: float


@dataclass(frozen=True)
class Circuit:
    name: str  # `provider/model`, or an endpoint `scheme://host:port`
    state: CircuitState
    failures: int
    reopens_in_s: float  # until the next probe may go (0 when one may now)

    @property
    def kind(self) -> str:
        return "endpoint" if "://" in self.name else "model"


@dataclass(frozen=True)
class HealthSnapshot:
    cooldowns: tuple[Cooldown, ...]
    circuits: tuple[Circuit, ...]
    latency_ms: Mapping[tuple[str, str], float]

    @property
    def cooling_by_provider(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for cooldown in self.cooldowns:
            counts[cooldown.provider] = counts.get(cooldown.provider, 0) + 1
        return counts

    @property
    def circuits_by_state(self) -> dict[tuple[str, str], int]:
        counts: dict[tuple[str, str], int] = {}
        for circuit in self.circuits:
            if circuit.state is not CircuitState.CLOSED:
                key = (circuit.kind, circuit.state.value)
                counts[key] = counts.get(key, 0) + 1
        return counts


class RouterMetrics(Protocol):
    """What the router counts. Model ids are passed only when the registry knows them (else None),
    so nothing a client sends becomes a metric label."""

    def attempt_ended(
        self,
        operation: str,
        provider: str,
        model: str | None,
        outcome: str,
        seconds: float,
        first_chunk_s: float | None = None,
        usage: Usage | None = None,
    ) -> None: ...

    def request_ended(self, operation: str, outcome: str, seconds: float, attempts: int) -> None: ...

    def meta_choice(self, profile: str, model: str, reason: str) -> None:
        """The meta-controller put `model` ("provider/model", from the catalogue) first for an `auto`
        request of `profile`; `reason`: thompson or only_candidate."""
        ...


@dataclass(frozen=True)
class RouterPorts:
    keys: KeySource
    quota: QuotaLedger
    health: HealthStore
    metrics: RouterMetrics
    catalog: CatalogSource | None = None  # None: the configuration alone
