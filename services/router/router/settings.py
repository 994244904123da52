"""Router settings: ROUTER_* environment variables, read once at start."""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field
from pydantic_settings import SettingsConfigDict

from llmagg.common.settings import ServiceSettings

SHIPPED_REGISTRY = Path(__file__).parent / "data" / "providers.yaml"


class RouterSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="ROUTER_", extra="ignore", env_ignore_empty=True)

    port: int = 50051
    # The user's YAML (accounts, extra providers, fallback chains). LLMAGG_CONFIG is the documented name.
    config: Path | None = Field(default=None, validation_alias=AliasChoices("ROUTER_CONFIG", "LLMAGG_CONFIG"))
    registry: Path = SHIPPED_REGISTRY
    max_attempts: int = Field(default=6, ge=1)
    request_timeout_s: float = Field(default=300.0, gt=0)
    connect_timeout_s: float = Field(default=5.0, gt=0)
    # Longest silence from an upstream: before its first byte, and between stream chunks.
    read_timeout_s: float = Field(default=60.0, gt=0)
    default_cooldown_s: float = Field(default=30.0, ge=0)
    circuit_failure_threshold: int = Field(default=3, ge=1)
    circuit_open_s: float = Field(default=30.0, ge=0)
    max_upstream_connections: int = Field(default=512, ge=1)
