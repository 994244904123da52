"""What the meta-controller has learned of each (task profile, model): additive sums, so that router
replicas can each add what they saw to one shared store (Valkey) and read the totals back, and the
port that keeps them. Recording never does I/O on the request path: a store batches its writes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Protocol


@dataclass
class ArmStats:
    """One model's record on one task profile. Quality is a mass in [0, 1] per judged answer: `good`
    gets the score and `bad` the rest, so `good / (good + bad)` is the mean quality."""

    successes: float = 0.0
    failures: float = 0.0
    good: float = 0.0
    bad: float = 0.0
    ttft_ms_sum: float = 0.0  # time to first content (or to the answer when not streamed)
    ttft_n: float = 0.0
    tps_sum: float = 0.0  # completion tokens per second
    tps_n: float = 0.0

    def add(self, other: ArmStats) -> None:  # field by field: twice on every request's learning
        self.successes += other.successes
        self.failures += other.failures
        self.good += other.good
        self.bad += other.bad
        self.ttft_ms_sum += other.ttft_ms_sum
        self.ttft_n += other.ttft_n
        self.tps_sum += other.tps_sum
        self.tps_n += other.tps_n

    def scaled(self, factor: float) -> ArmStats:
        return ArmStats(**{f.name: getattr(self, f.name) * factor for f in fields(self)})

    def clamped(self) -> ArmStats:
        """Every sum at least 0: replicas that each discount their own stale view can push a shared
        total below zero, and a negative count must never reach a Beta distribution."""
        return ArmStats(**{f.name: max(0.0, getattr(self, f.name)) for f in fields(self)})

    def as_dict(self) -> dict[str, float]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def of(cls, values: Mapping[str, float]) -> ArmStats:
        known = {f.name for f in fields(cls)}
        return cls(**{k: max(0.0, float(v)) for k, v in values.items() if k in known})

    @property
    def attempts(self) -> float:
        return self.successes + self.failures

    @property
    def success_rate(self) -> float | None:
        return self.successes / self.attempts if self.attempts else None

    @property
    def quality(self) -> float | None:
        judged = self.good + self.bad
        return self.good / judged if judged else None

    @property
    def ttft_ms(self) -> float | None:
        return self.ttft_ms_sum / self.ttft_n if self.ttft_n else None

    @property
    def tokens_per_s(self) -> float | None:
        return self.tps_sum / self.tps_n if self.tps_n else None


@dataclass(frozen=True)
class Served:
    """Which model served a request, on which profile, for whom: what client feedback on it updates."""

    profile: str
    arm: str  # "provider/model"
    client: str = ""  # the client key id that asked (x-llmagg-client-id): only it (or an admin) gives feedback


class RoutingStatsStore(Protocol):
    def stats(self, profile: str) -> Mapping[str, ArmStats]:
        """What is known of every model on `profile` (arm -> stats); local, no I/O."""
        ...

    def snapshot(self) -> dict[str, dict[str, ArmStats]]:
        """Every profile's stats (for /v1/admin/routing)."""
        ...

    def record(self, profile: str, arm: str, delta: ArmStats) -> None:
        """Add what one attempt or one judgement taught; written out in the background."""
        ...

    def remember(self, request_id: str, served: Served) -> None:
        """Keep which model served `request_id`, so that feedback on it can find it."""
        ...

    async def served(self, request_id: str) -> Served | None: ...

    async def forget(self, request_id: str) -> bool:
        """Drop `request_id` so feedback on it is taken once: True only for the one call that dropped it."""
        ...

    async def start(self) -> None: ...

    async def close(self) -> None: ...
