"""Run the simulator as a subprocess and script it over its control API (for tests, `make demo`, `make bench`).

with SimulatorProcess(providers={"sim-ratelimited": "429"}) as sim:
    client = openai.OpenAI(base_url=sim.base_url("sim-a"), api_key="sk-test", max_retries=0)
    sim.script("sim-a", [{"type": "429", "retry_after": 2}, {"type": "cut_stream", "after_chunks": 3}])
    ...
    sim.requests("sim-a")  # what sim-a received, oldest first
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

_LISTENING = re.compile(rb"provider-simulator listening on (http://\S+)")
_SOURCE_ROOT = Path(__file__).resolve().parent.parent  # the folder holding the provider_simulator package

FaultSpec = str | Mapping[str, Any]  # "500" or {"type": "429", "retry_after": 2, "count": 3}


class SimulatorError(RuntimeError):
    """The simulator did not start, or refused a control call."""


def _as_fault(fault: FaultSpec) -> dict[str, Any]:
    return {"type": fault} if isinstance(fault, str) else dict(fault)


def _as_option(name: str, behaviour: FaultSpec) -> str:
    """A --provider option: "NAME=TYPE[,key=value...]"."""
    fault = _as_fault(behaviour)
    parameters = "".join(f",{key}={value}" for key, value in fault.items() if key not in ("type", "count"))
    return f"{name}={fault['type']}{parameters}"


class SimulatorProcess:
    """`python -m provider_simulator` on 127.0.0.1 and a free port, for as long as the object lives.

    providers: default behaviour per provider name ("429", or a fault object such as {"type": "hang"}).
    """

    def __init__(
        self,
        providers: Mapping[str, FaultSpec] | None = None,
        chunk_delay_ms: float = 0,
        timeout_s: float = 20,
    ) -> None:
        argv = [sys.executable, "-m", "provider_simulator", "--host", "127.0.0.1", "--port", "0"]
        argv += [f"--provider={_as_option(name, behaviour)}" for name, behaviour in (providers or {}).items()]
        argv += ["--chunk-delay-ms", str(chunk_delay_ms)]
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(_SOURCE_ROOT), env.get("PYTHONPATH")]))
        # stderr goes to a file: a pipe nobody drains would block the simulator once it filled up.
        self._stderr = tempfile.TemporaryFile()
        self._final_stderr = ""
        self._process = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=self._stderr, stdin=subprocess.DEVNULL, env=env
        )
        found: list[str] = []
        reader = threading.Thread(target=self._read_url, args=(found,), daemon=True)
        reader.start()
        reader.join(timeout_s)
        if not found:
            exited = self._process.poll()
            self.stop()
            state = f"it exited with status {exited}" if exited is not None else f"no port after {timeout_s:g}s"
            raise SimulatorError(f"the provider simulator did not start ({state}); stderr:\n{self.stderr_output()}")
        self.url: str = found[0]
        self.port: int = int(self.url.rsplit(":", 1)[1])

    def _read_url(self, found: list[str]) -> None:
        assert self._process.stdout is not None
        for line in self._process.stdout:
            if match := _LISTENING.search(line):
                found.append(match.group(1).decode())
                return

    def base_url(self, name: str) -> str:
        """What an OpenAI client takes as base_url for the simulated provider `name`."""
        return f"{self.url}/{name}/v1"

    def _control(self, method: str, path: str, payload: Any = None) -> Any:
        data = json.dumps(payload).encode() if payload is not None else None
        request = urllib.request.Request(
            f"{self.url}/_sim{path}", data=data, method=method, headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as refused:
            raise SimulatorError(f"{method} /_sim{path} -> {refused.code}: {refused.read().decode()}") from None

    def script(self, name: str, faults: Sequence[FaultSpec]) -> None:
        """Queue faults for `name`; each applies to `count` requests (default 1), in order, before the default."""
        self._control("POST", f"/{name}/faults", {"faults": [_as_fault(f) for f in faults]})

    def set_behaviour(self, name: str, fault: FaultSpec) -> None:
        """What `name` does once its queue is empty."""
        self._control("PUT", f"/{name}/behaviour", _as_fault(fault))

    def requests(self, name: str) -> list[dict[str, Any]]:
        """Requests `name` received, oldest first: {method, path, headers (lowercased), body (JSON or None)}."""
        return self._control("GET", f"/{name}/requests")["requests"]

    def state(self, name: str) -> dict[str, Any]:
        """{default, queue, in_flight, logged_requests} of `name`: what it does next, how many requests it holds."""
        return self._control("GET", f"/{name}")

    def reset(self, name: str | None = None) -> None:
        """Forget the queue, the request log and any set behaviour of `name` (of every provider when None)."""
        self._control("DELETE", f"/{name}" if name else "")

    @property
    def returncode(self) -> int | None:
        """None while running; 0 after a clean stop."""
        return self._process.poll()

    def stderr_output(self) -> str:
        """Everything the simulator wrote to stderr so far (still available after stop)."""
        if self._stderr.closed:
            return self._final_stderr
        self._stderr.seek(0)
        return self._stderr.read().decode(errors="replace")

    def stop(self) -> None:
        """Terminate (the simulator stops within about two seconds), killing it if it does not."""
        if self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        if self._process.stdout:
            self._process.stdout.close()
        if not self._stderr.closed:
            self._final_stderr = self.stderr_output()
            self._stderr.close()

    def __enter__(self) -> SimulatorProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
