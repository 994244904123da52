"""Agent settings: AGENT_* environment variables, read once at start."""

from __future__ import annotations

import ipaddress
import json
import os
from pathlib import Path
from typing import Annotated, Any

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import NoDecode

from llmagg.common.settings import ServiceSettings, settings_config
from llmagg.suite import service

DEFAULT_STATE_DIR = Path(".run") / "agent"


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class AgentSettings(ServiceSettings):
    model_config = settings_config("agent")

    port: int = service("agent").port
    metrics_port: int = service("agent").metrics_port
    # Where the router listens (the dev stack passes it from the service table's `calls`).
    router_address: str = f"127.0.0.1:{service('router').port}"
    # The service token shared with the router (the dev stack makes one per run): sent with every call.
    router_token: str = ""
    # Where the agent keeps files of its own: the default SQLite database (the dev stack passes its run dir).
    state_dir: Path = DEFAULT_STATE_DIR
    # sqlite:///path/threads.db or postgresql://user@host/db; empty: SQLite in state_dir.
    database_url: str = ""
    # What the agent asks the router for: a model id, alias, chain name or "auto". The request's
    # model_quality and provider are passed along.
    model: str = "auto"
    # Directories under which a request's project_directory must lie. Unset: the home directory of the
    # user running the service while the gateway and the service listen on loopback only, else none
    # (every project directory is refused until a network deployment names its roots).
    # A JSON list or paths separated by ":"; "[]" allows none.
    workspace_roots: Annotated[list[Path] | None, NoDecode] = None
    # Where the gateway listens (GATEWAY_HOST, as `make run` takes it): decides the default roots above.
    gateway_host: str = Field(default="127.0.0.1", validation_alias=AliasChoices("AGENT_GATEWAY_HOST", "GATEWAY_HOST"))
    # A run (one invoke or resume) makes at most this many model calls, and ends by this deadline. The
    # answer comes only at the end of a run, and Envoy resets a stream that stays silent for 5 minutes:
    # the default ends the run first, saved, so that an invoke on the same thread can go on from there.
    max_steps: int = Field(default=25, ge=1)
    run_deadline_s: float = Field(default=280.0, gt=0)
    # File tools: largest file read or written, most directory entries listed.
    max_read_bytes: int = Field(default=1024 * 1024, gt=0)
    max_write_bytes: int = Field(default=1024 * 1024, gt=0)
    max_list_entries: int = Field(default=1000, gt=0)
    # Contextual chat: the active file is cut to this many characters.
    max_file_context_chars: int = Field(default=20_000, gt=0)
    # How long another replica waits for a thread a crashed replica held (its run's deadline plus this).
    lease_margin_s: float = Field(default=30.0, ge=0)

    @field_validator("workspace_roots", mode="before")
    @classmethod
    def _split_roots(cls, value: Any) -> Any:
        if isinstance(value, str):
            text = value.strip()
            return json.loads(text) if text.startswith("[") else [part for part in text.split(os.pathsep) if part]
        return value

    def database(self) -> str:
        return self.database_url or f"sqlite:///{(self.state_dir / 'threads.db').resolve()}"

    def allowed_roots(self) -> list[Path]:
        if self.workspace_roots is not None:
            return list(self.workspace_roots)
        if is_loopback(self.gateway_host) and is_loopback(self.host):
            return [Path.home()]
        return []
