"""The meta-controller's stats in this process only (tests, a single replica): lost at restart."""

from __future__ import annotations

from collections import OrderedDict, defaultdict
from collections.abc import Mapping

from llmagg_router.domain.routing_stats import ArmStats, Served

REMEMBERED_REQUESTS = 10_000  # feedback is for recent requests: older ones are forgotten first


class MemoryRoutingStats:
    def __init__(self, remembered: int = REMEMBERED_REQUESTS, served: OrderedDict[str, Served] | None = None) -> None:
        self._stats: dict[str, dict[str, ArmStats]] = defaultdict(dict)
        self._served: OrderedDict[str, Served] = OrderedDict() if served is None else served
        self._remembered = remembered

    @property
    def remembered(self) -> OrderedDict[str, Served]:
        """Which model served each recent request (shared with a store that takes this one's place)."""
        return self._served

    def stats(self, profile: str) -> Mapping[str, ArmStats]:
        return self._stats.get(profile, {})

    def snapshot(self) -> dict[str, dict[str, ArmStats]]:
        return {profile: dict(arms) for profile, arms in self._stats.items()}

    def record(self, profile: str, arm: str, delta: ArmStats) -> None:
        self._stats[profile].setdefault(arm, ArmStats()).add(delta)

    def remember(self, request_id: str, served: Served) -> None:
        self._served[request_id] = served
        self._served.move_to_end(request_id)
        while len(self._served) > self._remembered:
            self._served.popitem(last=False)

    async def served(self, request_id: str) -> Served | None:
        return self._served.get(request_id)

    async def forget(self, request_id: str) -> bool:
        return self.forget_now(request_id)

    def forget_now(self, request_id: str) -> bool:
        return self._served.pop(request_id, None) is not None

    async def start(self) -> None:
        pass

    async def close(self) -> None:
        pass
