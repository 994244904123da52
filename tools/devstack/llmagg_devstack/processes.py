"""Start, wait for and stop child processes: the one process manager of make run, the tests and bench."""

from __future__ import annotations

import contextlib
import fcntl
import os
import random
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

_POLL_S = 0.02


# Ports handed out by free_port stay reserved (a lock file held open) until this process exits.
_HELD_PORTS: dict[int, int] = {}
_PORT_LOCKS = Path(tempfile.gettempdir()) / f"llmagg-ports-{os.getuid()}"


def ephemeral_range() -> tuple[int, int]:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


def free_port() -> int:
    """A loopback port nobody listens on, for a child to bind a moment later.

    Not from the kernel's ephemeral range: any outgoing connection on the machine may take such a port
    between now and the child's bind. Below it, a lock file held until this process exits keeps other
    test runs and stacks on the machine (which pick the same way) off the port.
    """
    low, _ = ephemeral_range()
    first = 10_000
    if low - first < 1_000:  # no room below the ephemeral range: let the kernel pick
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            return sock.getsockname()[1]
    _PORT_LOCKS.mkdir(exist_ok=True)
    rng = random.SystemRandom()
    for _ in range(1_000):
        port = rng.randrange(first, low)
        if port in _HELD_PORTS:
            continue
        try:
            descriptor = os.open(_PORT_LOCKS / f"{port}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        except OSError:
            continue
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(descriptor)
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                os.close(descriptor)
                continue
        _HELD_PORTS[port] = descriptor
        return port
    raise ProcessError("no free loopback port found below the ephemeral range")


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    """Whether a server could not listen on `port` now. Asked by binding it, as the server will (with
    SO_REUSEADDR, as servers do): a socket that holds the port without accepting (a server stopping)
    answers no connection, yet keeps every other server off it."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


class ProcessError(RuntimeError):
    pass


# How the servers of the stack (Python, gRPC, Envoy, OpenBao, Valkey, PostgreSQL) say a port is taken.
_ADDRESS_IN_USE = re.compile(r"^.*address already in use.*$", re.IGNORECASE | re.MULTILINE)


class ManagedProcess:
    """A child process whose output (stdout and stderr) goes to a log file, stopped with SIGTERM then SIGKILL.

    It runs in a session of its own, so Ctrl-C reaches the launcher only and the launcher stops its
    children in order. With `die_with_launcher` it also gets SIGTERM when the launcher dies without
    doing so (killed, say): it starts through `with_launcher.py` (Linux).
    """

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        log_path: Path | None = None,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        die_with_launcher: bool = False,
        user: str | None = None,
    ) -> None:
        """`user`: run as this system user (a launcher running as root starting PostgreSQL, which refuses root)."""
        self.name = name
        if log_path is None:
            handle, temporary = tempfile.mkstemp(prefix=f"llmagg-{name}-", suffix=".log")
            os.close(handle)
            log_path, self._temporary_log = Path(temporary), True
        else:
            log_path.parent.mkdir(parents=True, exist_ok=True)
            self._temporary_log = False
        self.log_path = log_path
        self._final_output: str | None = None
        self._log = open(log_path, "wb")  # closed in stop()
        if die_with_launcher and sys.platform == "linux":
            as_user = ["--user", user] if user else []
            argv = [sys.executable, "-m", "llmagg_devstack.with_launcher", str(os.getpid()), *as_user, *argv]
            user = None  # the wrapper changes user itself, before it asks for the signal
        self._argv, self._env, self._cwd, self._user = list(argv), {**os.environ, **(env or {})}, cwd, user
        self.process = self._spawn()

    def _spawn(self) -> subprocess.Popen:
        return subprocess.Popen(
            self._argv,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=self._env,
            cwd=self._cwd,
            start_new_session=True,
            user=self._user,
        )

    def restart(self) -> None:
        """Start it again as it was started first (it is stopped first if still running); its log goes on."""
        self.stop_now()
        if self._log.closed:
            self._log = open(self.log_path, "ab")
        self.process = self._spawn()

    @property
    def returncode(self) -> int | None:
        """None while running."""
        return self.process.poll()

    def output(self) -> str:
        """Everything the process wrote so far (still available after stop)."""
        if self._final_output is not None:
            return self._final_output
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.output().splitlines()[-lines:])

    def _exited(self, what: str) -> ProcessError:
        # Reap it and read everything it wrote: the exit status and stderr say why it did not start.
        self.process.wait()
        if bind_failure := _ADDRESS_IN_USE.search(self.output()):
            return ProcessError(
                f"{self.name} could not listen: a port it needs is already in use (another `make run` still "
                f"stopping?); stop that process or choose another port (see README, Configuration). It said: "
                f"{bind_failure.group(0).strip()}"
            )
        return ProcessError(
            f"{self.name} exited with status {self.process.returncode} before {what}:\n{self.log_tail()}"
        )

    def wait_until(self, ready: Callable[[], bool], timeout_s: float, what: str) -> None:
        """Poll `ready` until it holds; fail at once with the exit status when the process ends first."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise self._exited(what)
            with contextlib.suppress(Exception):
                if ready():
                    return
            time.sleep(_POLL_S)
        self.stop()
        raise ProcessError(f"{self.name} did not get {what} within {timeout_s:g}s:\n{self.log_tail()}")

    def wait_for_line(self, pattern: re.Pattern[str], timeout_s: float, what: str) -> re.Match[str]:
        """The first match of `pattern` in the output, once the process has written it."""
        found: list[re.Match[str]] = []

        def written() -> bool:
            match = pattern.search(self.output())
            if match:
                found.append(match)
            return match is not None

        self.wait_until(written, timeout_s, what)
        return found[0]

    def stop_now(self, timeout_s: float = 10.0) -> None:
        """SIGTERM, then SIGKILL after `timeout_s`; its log stays open (see stop)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def stop(self, timeout_s: float = 10.0) -> int | None:
        self.stop_now(timeout_s)
        if not self._log.closed:
            self._log.close()
            if self._temporary_log:
                self._final_output = self.output()
                self.log_path.unlink(missing_ok=True)
        return self.process.returncode


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def grpc_serving(address: str, service: str = "") -> bool:
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    with grpc.insecure_channel(address) as channel:
        response = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=service), timeout=1)
    return response.status == health_pb2.HealthCheckResponse.SERVING
