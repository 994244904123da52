"""Work a request's answer need not wait for: its log line, its metrics, its spans' last attributes (with
the times they had), what the meta-controller and affinity learn from it. Whoever delivers the answer may
take that work (`AfterAnswer`) and run it right after writing the answer, in the same step of the event
loop. Health and circuits are updated at once (routing reads them); a request running meanwhile may see
the rest a moment later, as if it had come a moment sooner. Without a taker the work runs at once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)


class AfterAnswer:
    """Synchronous work kept until `run()`; each piece runs once, in the order given, even when one fails."""

    __slots__ = ("_work",)

    def __init__(self) -> None:
        self._work: list[tuple[Callable[..., object], tuple[Any, ...]]] = []

    def run(self) -> None:
        work, self._work = self._work, []
        for function, args in work:
            try:
                function(*args)
            except Exception:  # the answer is out: a failure here is only logged
                log.exception("work after the answer failed")

    def keep(self, function: Callable[..., object], *args: Any) -> None:
        self._work.append((function, args))


def after_answer(after: AfterAnswer | None, function: Callable[..., object], *args: Any) -> None:
    """`function(*args)` after the answer when `after` takes it, else now."""
    if after is None:
        function(*args)
    else:
        after.keep(function, *args)
