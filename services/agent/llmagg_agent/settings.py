"""Agent settings: AGENT_* environment variables, read once at start."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, field_validator
from pydantic_settings import NoDecode

from llmagg.common.settings import ServiceSettings, settings_config
from llmagg.suite import service
from llmagg_agent.domain.workspace import EVERY_KEY

DEFAULT_STATE_DIR = Path(".run") / "agent"


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
    # Which directories a request's project_directory may lie under, per caller (README, "The coding agent"):
    # a JSON object mapping a client key id, "admin" (every admin key) or "*" (every key) to a list of
    # directories, e.g. {"admin": ["/home/me/src"], "k3f9a2": ["/home/me/src/app"]}. A plain list (JSON, or
    # paths separated by ":") is granted to every key. Unset: none, for every key (`make run` grants admin
    # keys the repository it runs from).
    workspace_roots: Annotated[dict[str, list[Path]] | None, NoDecode] = None
    # Directories no project directory or file tool may reach, whatever the key: the stack's run directory
    # (`make run` passes it: it holds the admin key and OpenBao's data); the agent's state_dir always is.
    protected_paths: Annotated[list[Path], NoDecode] = Field(default_factory=list)
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

    # The longest instruction (and answer to the agent's question) and context a request may send, in
    # characters: longer ones are refused with a 400 before anything is stored.
    max_instruction_chars: int = Field(default=100_000, gt=0)
    max_context_chars: int = Field(default=1_000_000, gt=0)

    @field_validator("workspace_roots", mode="before")
    @classmethod
    def _grants(cls, value: Any) -> Any:
        if isinstance(value, str):
            text = value.strip()
            value = json.loads(text) if text.startswith(("[", "{")) else _paths(text)
        return value if value is None or isinstance(value, dict) else {EVERY_KEY: value}

    @field_validator("protected_paths", mode="before")
    @classmethod
    def _split_protected(cls, value: Any) -> Any:
        if isinstance(value, str):
            text = value.strip()
            return json.loads(text) if text.startswith("[") else _paths(text)
        return value

    def database(self) -> str:
        return self.database_url or f"sqlite:///{(self.state_dir / 'threads.db').resolve()}"

    def workspace_grants(self) -> dict[str, list[Path]]:
        return dict(self.workspace_roots or {})

    def protected_directories(self) -> list[Path]:
        return [*self.protected_paths, self.state_dir]


def _paths(text: str) -> list[str]:
    return [part for part in text.split(os.pathsep) if part]
