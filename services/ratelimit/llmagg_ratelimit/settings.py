"""Ratelimit settings: RATELIMIT_* environment variables, read once at start."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr

from llmagg.common.settings import ServiceSettings, settings_config
from llmagg.registry import SHIPPED_REGISTRY
from llmagg.suite import service


class RatelimitSettings(ServiceSettings):
    model_config = settings_config("ratelimit")

    port: int = service("ratelimit").port
    metrics_port: int = service("ratelimit").metrics_port
    # The user's YAML: its `providers:` add providers and change limits (the accounts come from credentials).
    config: Path | None = Field(default=None, validation_alias=AliasChoices("RATELIMIT_CONFIG", "LLMAGG_CONFIG"))
    registry: Path = SHIPPED_REGISTRY
    # Where the quota counters live (backends.py): memory (this replica alone) or redis (Redis/Valkey,
    # shared by every replica; atomic server-side scripts).
    store: Literal["memory", "redis"] = "memory"
    redis_url: SecretStr = SecretStr("redis://127.0.0.1:6379/0")
    redis_prefix: str = "llmagg"  # every key starts with it: stacks sharing one server stay apart
    redis_timeout_s: float = Field(default=0.5, gt=0)
    # While Redis is unreachable each replica decides alone on this share of what it last saw left of
    # each limit (0.5: two replicas together stay within it); it says so in health and logs, and gives
    # Redis what it granted as soon as Redis answers again.
    local_share: float = Field(default=0.5, gt=0, le=1)
    # The usage ledger: sqlite (a file) or postgres (postgres_dsn).
    usage_store: Literal["sqlite", "postgres"] = "sqlite"
    usage_path: Path = Path(".run/usage.sqlite3")
    postgres_dsn: SecretStr | None = None
    # A reservation never settled (its router died) is forgotten after this; its estimate stays charged.
    reservation_ttl_s: float = Field(default=960.0, gt=0)
    # Leases: the router may spend several requests of a key without a call per attempt, for at most
    # this long (0: every attempt reserves alone), and at most this share of what each limit has left.
    lease_s: float = Field(default=1.0, ge=0, le=60)
    lease_share: float = Field(default=0.25, gt=0, le=1)
    # Client limits at the gateway, per client key (0: none): requests per minute, tokens per day and
    # per month; `client_limits` sets them per key id as JSON: {"<id>": {"rpm": 10, "tpd": 100000}}.
    client_rpm: int = Field(default=0, ge=0)
    client_tpd: int = Field(default=0, ge=0)
    client_tpmonth: int = Field(default=0, ge=0)
    client_limits: dict[str, dict[str, int]] = Field(default_factory=dict)
    # Limits as the registry ships them, or kept current by the discovery service's catalogue
    # (WatchCatalog; what `make run` uses).
    catalog: Literal["registry", "discovery"] = "registry"
    discovery_address: str | None = None  # host:port of the discovery service
    discovery_token: SecretStr | None = None  # the service token discovery knows ratelimit by
    # Per-account limit overrides come from the credentials service (its account listing).
    credentials_address: str | None = None
    credentials_token: SecretStr | None = None
    accounts_refresh_s: float = Field(default=5.0, gt=0)
