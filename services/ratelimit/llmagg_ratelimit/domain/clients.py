"""Limits per client key at the edge: requests per minute, checked by the gateway on every request of a
key with limits (Envoy's rate-limit service; `limited_clients` says which keys), and token budgets per day and month, charged when attempts settle and
enforced on the client's next request."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from llmagg.gateway_limits import LimitedClients
from llmagg_ratelimit.domain.limits import LIMIT_PLACEHOLDER, LIMIT_WINDOWS, _part
from llmagg_ratelimit.domain.ports import Entry
from llmagg_ratelimit.domain.windows import Dimension, bounds

CLIENT_LIMIT_NAMES = ("rpm", "tpd", "tpmonth")
ADMIN_SCOPE = "admin"


@dataclass(frozen=True)
class ClientLimits:
    rpm: int | None = None
    tpd: int | None = None
    tpmonth: int | None = None

    @classmethod
    def of(cls, mapping: Mapping[str, int | None]) -> ClientLimits:
        unknown = set(mapping) - set(CLIENT_LIMIT_NAMES)
        if unknown:
            raise ValueError(f"unknown client limits {sorted(unknown)}; known: {', '.join(CLIENT_LIMIT_NAMES)}")
        values = {}
        for name, value in mapping.items():
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
                raise ValueError(f"client limit {name} must be a whole number of at least 0, got {value!r}")
            values[name] = value or None  # 0: no limit
        return cls(**values)

    @property
    def any(self) -> bool:
        return any(getattr(self, name) for name in CLIENT_LIMIT_NAMES)

    def merged(self, other: ClientLimits) -> ClientLimits:
        """These limits with `other`'s where it sets one."""
        return ClientLimits(*(getattr(other, n) or getattr(self, n) for n in CLIENT_LIMIT_NAMES))


class ClientPolicy:
    def __init__(self, default: ClientLimits, overrides: Mapping[str, ClientLimits] | None = None) -> None:
        self.default = default
        self._overrides = dict(overrides or {})

    def limits(self, client_id: str, scope: str = "client") -> ClientLimits:
        """The key's own limits if it has some, else the defaults; admin keys (they manage the suite)
        have none unless they are given their own."""
        override = self._overrides.get(client_id)
        if override:
            return self.default.merged(override)
        return ClientLimits() if scope == ADMIN_SCOPE else self.default

    def limited_clients(self) -> LimitedClients:
        """Whose requests have something to check (the gateway asks about no other): `limits` is not
        empty for them."""
        named = frozenset(client for client, own in self._overrides.items() if self.default.merged(own).any)
        return LimitedClients(every_client=self.default.any, ids=named)

    def _entry(self, client_id: str, name: str, limit: int | None, amount: int, now: float) -> Entry:
        dimension, window = LIMIT_WINDOWS[name]
        start, end = bounds(window, now)
        return Entry(
            counter=f"c|{_part(client_id)}|{name}|{int(start)}",
            dimension=dimension,
            amount=amount,
            limit=limit,
            limit_key=None,
            expires_at=end,
            label=f"{name} {LIMIT_PLACEHOLDER} of client {client_id}",
        )

    def check(self, client_id: str, hits: int, now: float, scope: str = "client") -> list[Entry]:
        """What one request checks: counts against the requests per minute, needs tokens left in each budget."""
        limits = self.limits(client_id, scope)
        entries = [self._entry(client_id, "rpm", limits.rpm, hits, now)]
        for name in ("tpd", "tpmonth"):
            limit = getattr(limits, name)
            if limit is not None:
                entries.append(self._entry(client_id, name, limit, 0, now))
        return entries

    def charge(self, client_id: str, tokens: int, now: float) -> list[Entry]:
        """The token budgets' counters, charged with what an attempt used."""
        limits = self.limits(client_id)
        return [self._entry(client_id, name, getattr(limits, name), tokens, now) for name in ("tpd", "tpmonth")]

    @staticmethod
    def is_requests(entry: Entry) -> bool:
        return entry.dimension is Dimension.REQUESTS
