"""Keep `make run`'s children running: restart one that exits, as a cluster would, and say so.

A child that exits is started again after a back-off (1 s, doubling up to 30 s) and reported back once
it is ready again. The back-off starts over once a child has stayed up for STABLE_S. A child that keeps
failing (CRASH_LOOP fast failures in a row) is reported with the end of its log, and is still restarted
every 30 s: like Kubernetes' CrashLoopBackOff, the stack never gives up on a child by itself, since what
broke it (a port, a dependency, a file) may be mended while it runs. Only the launcher stopping (Ctrl-C,
SIGTERM, a closed terminal) stops the children.

Nothing here blocks: the launcher calls `tick()` in its loop, between printing the services' logs.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from llmagg.common.backoff import Backoff
from llmagg_devstack.processes import ManagedProcess

FIRST_DELAY_S = 1.0
MAX_DELAY_S = 30.0
STABLE_S = 60.0  # up (and ready) this long: its next exit starts the back-off over
READY_TIMEOUT_S = 60.0  # restarted but not ready within this: stopped, counted as a failure
CRASH_LOOP = 5
_RESTART_BACKOFF = Backoff(FIRST_DELAY_S, MAX_DELAY_S)


def describe_exit(returncode: int) -> str:
    if returncode < 0:
        return f"signal {-returncode}"
    if returncode > 128 and returncode - 128 in signal.Signals._value2member_map_:
        return f"signal {returncode - 128}"  # a wrapper (a shell) reporting its child's signal
    return f"status {returncode}"


def delay_after(failures: int) -> float:
    """The back-off before the restart that follows `failures` fast failures in a row (1, 2, 4, ... 30 s)."""
    return _RESTART_BACKOFF.delay(failures)


@dataclass
class _Child:
    process: ManagedProcess
    ready: Callable[[], bool]
    ready_at: float | None  # when it was last found ready; None while (re)starting
    started_at: float
    failures: int = 0  # exits in a row, each before it had stayed up STABLE_S
    restart_at: float | None = None  # set while it waits for its restart


@dataclass
class Supervisor:
    """Watches children that are up and ready now; `ready` is polled after each restart until it holds."""

    say: Callable[[str], None]
    clock: Callable[[], float] = time.monotonic
    _children: list[_Child] = field(default_factory=list)

    def watch(self, process: ManagedProcess, ready: Callable[[], bool]) -> None:
        now = self.clock()
        self._children.append(_Child(process, ready, ready_at=now, started_at=now))

    def watch_all(self, children: Iterable[tuple[ManagedProcess, Callable[[], bool]]]) -> None:
        for process, ready in children:
            self.watch(process, ready)

    def tick(self) -> None:
        for child in self._children:
            self._tick(child)

    def _tick(self, child: _Child) -> None:
        now, process = self.clock(), child.process
        if child.restart_at is not None:
            if now >= child.restart_at:
                child.restart_at = None
                child.started_at, child.ready_at = now, None
                try:
                    process.restart()
                except OSError as exc:
                    self._exited(child, now, f"could not start: {exc}")
            return
        returncode = process.returncode
        if returncode is not None:
            self._exited(child, now, describe_exit(returncode))
        elif child.ready_at is None:
            if _holds(child.ready):
                child.ready_at = now
                self.say(f"{process.name} is back")
            elif now - child.started_at > READY_TIMEOUT_S:
                process.stop_now()
                self._exited(child, now, f"not ready within {READY_TIMEOUT_S:g} s")

    def _exited(self, child: _Child, now: float, why: str) -> None:
        stable = child.ready_at is not None and now - child.ready_at >= STABLE_S
        child.failures = 1 if stable else child.failures + 1
        delay = delay_after(child.failures)
        child.restart_at = now + delay
        name = child.process.name
        self.say(f"{name} exited ({why}); restarting in {delay:g} s")
        if child.failures == CRASH_LOOP:
            self.say(
                f"{name} keeps failing ({CRASH_LOOP} times in a row, none up {STABLE_S:g} s): still restarting it, "
                f"at most every {MAX_DELAY_S:g} s, until Ctrl-C. Its log ({child.process.log_path}) ends:\n"
                f"{child.process.log_tail(10)}"
            )


def _holds(condition: Callable[[], bool]) -> bool:
    try:
        return bool(condition())
    except Exception:
        return False
