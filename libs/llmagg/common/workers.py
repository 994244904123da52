"""N processes of one service on one port, so that one machine's cores serve it (ROUTER_WORKERS=N).

The parent execs N workers, each the service itself (`python -m <package>`) told its index by
<PREFIX>WORKER. Every worker binds the service's port (and its HTTP port, <PREFIX>HTTP_PORT, where it
has one) with SO_REUSEPORT, so the kernel spreads incoming connections over them and a client (Envoy)
sees one address; worker i serves its own /metrics on
<PREFIX>METRICS_PORT + i (each process keeps its own counters and routing state: scrape each port).

The parent serves nothing itself. It holds the port(s) with a bound, never listening SO_REUSEPORT socket
while it runs, so that a program without SO_REUSEPORT cannot take it between two workers' starts.
SIGTERM or SIGINT to the parent goes on to every worker, each drains as one process alone would
(drain_s, then grace_s), and the parent exits once they all have. A worker that dies is started again
while the others serve on (a whole restart would drop their requests too); one that exits with status
2 (an invalid configuration: starting it again cannot help), or deaths more often than MAX_RESTARTS in
RESTART_WINDOW_S, stop them all and the parent exits with that status for its own supervisor to see.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass

from llmagg.common.logging import log_fields

log = logging.getLogger(__name__)

MAX_RESTARTS = 5
RESTART_WINDOW_S = 60.0
CONFIGURATION_ERROR = 2  # a service's exit status for an invalid configuration (service_cli)
_POLL_S = 0.1
_PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class WorkerPlan:
    package: str  # what `python -m` runs
    env_prefix: str  # the service's settings prefix, e.g. ROUTER_
    workers: int
    host: str
    port: int
    metrics_port: int  # 0: no worker serves metrics
    stop_timeout_s: float  # after SIGTERM, how long workers may drain before they are killed
    http_port: int = 0  # a second port every worker serves (the router's HTTP data path); 0: none

    def environment(self, index: int, port: int) -> dict[str, str]:
        p = self.env_prefix
        metrics = self.metrics_port + index if self.metrics_port else 0
        env = {f"{p}WORKERS": "1", f"{p}WORKER": str(index), f"{p}PORT": str(port), f"{p}METRICS_PORT": str(metrics)}
        if self.http_port:
            env[f"{p}HTTP_PORT"] = str(self.http_port)
        return env


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def free_or_raise(host: str, port: int) -> int:
    """`port` (a free one for 0) when nobody serves on it, else OSError: bound as a server would."""
    with socket.socket(_family(host)) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind((host, port))  # fails while anyone listens there, SO_REUSEPORT or not
        return probe.getsockname()[1]


def hold_port(host: str, port: int) -> socket.socket:
    """A socket bound to `port` (a free one for 0), never listening, that workers binding with
    SO_REUSEPORT share; OSError when another process serves on it."""
    port = free_or_raise(host, port)
    holder = socket.socket(_family(host))
    holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    holder.bind((host, port))
    return holder


def _die_with_parent() -> None:
    """In the worker, before exec: SIGTERM when the parent dies however it dies (Linux)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


class Workers:
    def __init__(self, plan: WorkerPlan, environ: Mapping[str, str] = os.environ) -> None:
        self.plan = plan
        self._environ = dict(environ)
        self._running: dict[int, subprocess.Popen] = {}
        self._deaths: deque[float] = deque()
        self._stopping = False
        self.port = plan.port

    def _start(self, index: int) -> None:
        worker = subprocess.Popen(
            [sys.executable, "-m", self.plan.package],
            env={**self._environ, **self.plan.environment(index, self.port)},
            preexec_fn=_die_with_parent if sys.platform == "linux" else None,  # the parent runs no thread
        )
        self._running[index] = worker
        log.info("worker %d started, pid %d", index, worker.pid, extra=log_fields(worker=index, pid=worker.pid))

    def _stop_all(self, sig: int = signal.SIGTERM) -> None:
        for worker in self._running.values():
            if worker.poll() is None:
                worker.send_signal(sig)
        deadline = time.monotonic() + self.plan.stop_timeout_s
        for worker in self._running.values():
            try:
                worker.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("worker pid %d still running after %gs: killed", worker.pid, self.plan.stop_timeout_s)
                worker.kill()
                worker.wait()

    def _on_signal(self, signum: int, frame: object) -> None:
        self._stopping = True

    def run(self) -> int:
        """Start the workers and supervise them until SIGTERM/SIGINT (0) or a failure (its exit status)."""
        plan = self.plan
        try:
            holder = hold_port(plan.host, plan.port)
        except OSError as exc:
            log.error("cannot serve %d workers on %s:%d: %s", plan.workers, plan.host, plan.port, exc)
            return 1
        try:
            http_holder = hold_port(plan.host, plan.http_port) if plan.http_port else contextlib.nullcontext()
        except OSError as exc:
            holder.close()
            log.error("cannot serve %d workers' HTTP on %s:%d: %s", plan.workers, plan.host, plan.http_port, exc)
            return 1
        with holder, http_holder:
            self.port = holder.getsockname()[1]
            for index in range(plan.workers if plan.metrics_port else 0):
                try:
                    free_or_raise(plan.host, plan.metrics_port + index)
                except OSError as exc:
                    port = plan.metrics_port + index
                    log.error("cannot serve worker %d's metrics on %s:%d: %s", index, plan.host, port, exc)
                    return 1
            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, self._on_signal)
            for index in range(plan.workers):
                self._start(index)
            pids = [w.pid for w in self._running.values()]
            log.info(
                "%d workers on %s:%d (pids %s)",
                plan.workers,
                plan.host,
                self.port,
                ", ".join(map(str, pids)),
                extra=log_fields(port=self.port, pids=pids),
            )
            status = self._supervise()
            self._stop_all()
        log.info("all workers stopped")
        return status

    def _supervise(self) -> int:
        while not self._stopping:
            time.sleep(_POLL_S)
            for index, worker in list(self._running.items()):
                code = worker.poll()
                if code is None or self._stopping:
                    continue
                log.warning("worker %d (pid %d) exited with status %d", index, worker.pid, code)
                if code == CONFIGURATION_ERROR:
                    return code
                now = time.monotonic()
                self._deaths.append(now)
                while self._deaths and self._deaths[0] < now - RESTART_WINDOW_S:
                    self._deaths.popleft()
                if len(self._deaths) > MAX_RESTARTS:
                    log.error("workers died %d times within %gs: stopping", len(self._deaths), RESTART_WINDOW_S)
                    return 1
                self._start(index)
        return 0
