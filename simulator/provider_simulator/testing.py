"""Run the simulator as a subprocess and script it (for tests, `make demo` and `make bench`)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
import threading
import urllib.request
from typing import Any

_LISTENING = re.compile(rb"listening on (http://\S+)")


class SimulatorError(RuntimeError):
    pass


class SimulatorProcess:
    def __init__(
        self, providers: dict[str, str] | None = None, chunk_delay_ms: float = 0, timeout_s: float = 20
    ) -> None:
        argv = [sys.executable, "-m", "provider_simulator", "--host", "127.0.0.1", "--port", "0"]
        argv += [f"--provider={name}={behaviour}" for name, behaviour in (providers or {}).items()]
        argv += ["--chunk-delay-ms", str(chunk_delay_ms)]
        # stderr goes to a file: a pipe nobody drains would block the simulator once it filled up.
        self._stderr = tempfile.TemporaryFile()
        self._process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=self._stderr, stdin=subprocess.DEVNULL)
        found: list[str] = []
        reader = threading.Thread(target=self._read_url, args=(found,), daemon=True)
        reader.start()
        reader.join(timeout_s)
        if not found:
            self.stop()
            self._stderr.seek(0)
            stderr = self._stderr.read().decode(errors="replace")
            raise SimulatorError(f"the provider simulator did not start: {stderr[-2000:]}")
        self.url = found[0]

    def _read_url(self, found: list[str]) -> None:
        assert self._process.stdout is not None
        for line in self._process.stdout:
            match = _LISTENING.search(line)
            if match:
                found.append(match.group(1).decode())
                return

    def base_url(self, provider: str) -> str:
        return f"{self.url}/{provider}/v1"

    def _control(self, method: str, path: str, payload: Any = None) -> Any:
        data = json.dumps(payload).encode() if payload is not None else None
        request = urllib.request.Request(
            f"{self.url}/_sim{path}", data=data, method=method, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())

    def script(self, provider: str, faults: list[dict[str, Any]]) -> None:
        self._control("POST", f"/{provider}/faults", {"faults": faults})

    def set_behaviour(self, provider: str, fault: dict[str, Any]) -> None:
        self._control("PUT", f"/{provider}/behaviour", fault)

    def requests(self, provider: str) -> list[dict[str, Any]]:
        return self._control("GET", f"/{provider}/requests")["requests"]

    def reset(self, provider: str | None = None) -> None:
        self._control("DELETE", f"/{provider}" if provider else "")

    def stop(self) -> None:
        if self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        if self._process.stdout:
            self._process.stdout.close()

    def __enter__(self) -> SimulatorProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
