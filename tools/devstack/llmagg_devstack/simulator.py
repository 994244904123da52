"""Run the provider simulator as a child process and script it over its control API.

with SimulatorProcess(providers={"sim-ratelimited": "429"}) as sim:
    client = openai.OpenAI(base_url=sim.base_url("sim-a"), api_key="sk-test", max_retries=0)
    sim.script("sim-a", [{"type": "429", "retry_after": 2}, {"type": "cut_stream", "after_chunks": 3}])
    ...
    sim.requests("sim-a")  # what sim-a received, oldest first
"""

from __future__ import annotations

import json
import re
import sys
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from llmagg_devstack.processes import ManagedProcess, ProcessError

LISTENING = re.compile(r"provider-simulator listening on (http://\S+)\n")

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


def simulator_argv(providers: Mapping[str, FaultSpec] | None = None, chunk_delay_ms: float = 0) -> list[str]:
    argv = [sys.executable, "-m", "llmagg_simulator", "--host", "127.0.0.1", "--port", "0"]
    argv += [f"--provider={_as_option(name, behaviour)}" for name, behaviour in (providers or {}).items()]
    return [*argv, "--chunk-delay-ms", str(chunk_delay_ms)]


class SimulatorProcess(ManagedProcess):
    """`python -m llmagg_simulator` on 127.0.0.1 and a free port, until stop().

    providers: default behaviour per provider name ("429", or a fault object such as {"type": "hang"}).
    """

    def __init__(
        self,
        providers: Mapping[str, FaultSpec] | None = None,
        chunk_delay_ms: float = 0,
        timeout_s: float = 30,
        log_path: Path | None = None,
        die_with_launcher: bool = False,
    ) -> None:
        argv = simulator_argv(providers, chunk_delay_ms)
        super().__init__("provider-simulator", argv, log_path=log_path, die_with_launcher=die_with_launcher)
        try:
            self.url: str = self.wait_for_line(LISTENING, timeout_s, "its listening line").group(1)
        except ProcessError as problem:
            self.stop()
            raise SimulatorError(f"the provider simulator did not start: {problem}") from None
        self.port: int = int(self.url.rsplit(":", 1)[1])

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

    def set_models(self, name: str, models: Sequence[str | Mapping[str, Any]]) -> dict[str, Any]:
        """What `name`'s model lists show from now on (ids, or {id, name, context_length, free, expiration_date,
        embeds}); models taken off answer requests with their dialect's 404."""
        return self._control("PUT", f"/{name}/models", {"models": list(models)})

    def add_model(self, name: str, model: str | Mapping[str, Any]) -> dict[str, Any]:
        return self._control("POST", f"/{name}/models", model)

    def remove_model(self, name: str, model: str) -> dict[str, Any]:
        """Take `model` off `name`'s lists: requests for it get the dialect's 404 from now on."""
        return self._control("DELETE", f"/{name}/models/{model}")

    def set_model_behaviour(self, name: str, model: str, fault: FaultSpec) -> dict[str, Any]:
        """What every request for one model gets, e.g. "410" (the model is gone), ahead of queue and default."""
        return self._control("PUT", f"/{name}/models/{model}/behaviour", _as_fault(fault))

    def requests(self, name: str) -> list[dict[str, Any]]:
        """Requests `name` received in any dialect, oldest first: {seq, method, path, query, headers (lowercased),
        body (JSON or None)}."""
        return self._control("GET", f"/{name}/requests")["requests"]

    def state(self, name: str) -> dict[str, Any]:
        """{default, queue, in_flight, logged_requests} of `name`: what it does next, how many requests it holds."""
        return self._control("GET", f"/{name}")

    def reset(self, name: str | None = None) -> None:
        """Forget the queue, the request log and any set behaviour of `name` (of every provider when None)."""
        self._control("DELETE", f"/{name}" if name else "")

    def __enter__(self) -> SimulatorProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
