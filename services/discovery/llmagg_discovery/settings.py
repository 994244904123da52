"""Discovery settings: DISCOVERY_* environment variables, read once at start."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr

from llmagg.common.settings import ServiceSettings, settings_config
from llmagg.registry import SHIPPED_REGISTRY
from llmagg.suite import service

# The community list of free LLM APIs: its generated README, read raw.
DEFAULT_COMMUNITY_URL = "https://raw.githubusercontent.com/cheahjs/free-llm-api-resources/main/README.md"


class DiscoverySettings(ServiceSettings):
    model_config = settings_config("discovery")

    port: int = service("discovery").port
    metrics_port: int = service("discovery").metrics_port
    # The user's YAML: its providers join the baseline (and, with key_source=config, its accounts).
    config: Path | None = Field(default=None, validation_alias=AliasChoices("DISCOVERY_CONFIG", "LLMAGG_CONFIG"))
    registry: Path = SHIPPED_REGISTRY
    # Where account keys come from to list models and probe with: the credentials service (Lease with
    # this service's token, what `make run` uses) or LLMAGG_CONFIG and the environment.
    key_source: Literal["config", "credentials"] = "config"
    credentials_address: str | None = None
    credentials_token: SecretStr | None = None
    accounts_refresh_s: float = Field(default=30.0, gt=0)
    # Where the catalogue and its history live.
    store: Literal["sqlite", "postgres"] = "sqlite"
    sqlite_path: Path = Path(".run") / "discovery.sqlite3"
    postgres_dsn: SecretStr | None = None
    # Sources: how often each runs (seconds; 0 turns a network source off) and how long a run may take.
    community_url: str = DEFAULT_COMMUNITY_URL  # a URL or a local file (the snapshot shipped in the package)
    community_interval_s: float = Field(default=6 * 3600.0, ge=0)
    models_interval_s: float = Field(default=3600.0, ge=0)
    accounts_interval_s: float = Field(default=900.0, ge=0)
    # Probes spend free quota: each round probes at most `probe_batch` models per provider (the ones
    # probed longest ago), and every model whose last probe failed after `probe_retry_s`.
    probe_interval_s: float = Field(default=6 * 3600.0, ge=0)
    probe_retry_s: float = Field(default=300.0, gt=0)
    probe_batch: int = Field(default=2, ge=1)
    probe_request_timeout_s: float = Field(default=20.0, gt=0)
    # A model whose probes fail this many times in a row is suspended; one answering 410 or "model not
    # found" is retired at once; one missing from its provider's list this long is retired.
    suspend_after: int = Field(default=3, ge=1)
    retire_after_s: float = Field(default=3 * 86400.0, ge=0)
    source_timeout_s: float = Field(default=120.0, gt=0)
    http_timeout_s: float = Field(default=20.0, gt=0)
    backoff_base_s: float = Field(default=10.0, gt=0)
    backoff_max_s: float = Field(default=3600.0, gt=0)
