"""Session affinity: requests of one session (its `x-session-id`, else the body's `user`) go back to
the provider account that last served it while that one is healthy, so the provider's prompt cache
keeps working. Bounded in entries and in time; the session names are kept only as hashes."""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

from llmagg_router.domain.upstream import Candidate

Served = tuple[str, str, str]  # provider, account alias, model id


def session_of(session_header: str | None, body: dict[str, Any]) -> bytes | None:
    """The session a request belongs to, as a fixed-size hash; None when it names none."""
    name = session_header or body.get("user")
    if not isinstance(name, str) or not name:
        return None
    return hashlib.blake2b(name.encode(), digest_size=16).digest()


def _served(candidate: Candidate) -> Served:
    return candidate.provider.id, candidate.account.alias, candidate.model_id


class Affinity:
    def __init__(
        self, capacity: int = 100_000, ttl_s: float = 3600.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._capacity, self._ttl_s, self._clock = capacity, ttl_s, clock
        self._served: OrderedDict[bytes, tuple[Served, float]] = OrderedDict()

    def first(self, session: bytes | None, candidates: Sequence[Candidate]) -> Sequence[Candidate]:
        """The candidates with the one that last served this session first, when it is among them."""
        if session is None:
            return candidates
        entry = self._served.get(session)
        if entry is None:
            return candidates
        served, expires = entry
        if expires <= self._clock():
            del self._served[session]
            return candidates
        for position, candidate in enumerate(candidates):
            if _served(candidate) == served:
                if position == 0:
                    return candidates
                return [candidate, *candidates[:position], *candidates[position + 1 :]]
        return candidates

    def remember(self, session: bytes | None, candidate: Candidate) -> None:
        if session is None:
            return
        self._served[session] = (_served(candidate), self._clock() + self._ttl_s)
        self._served.move_to_end(session)
        if len(self._served) > self._capacity:
            self._served.popitem(last=False)
