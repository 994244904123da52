"""Typed settings read once from the environment, one prefix per service (ROUTER_*, ...)."""

from __future__ import annotations

from typing import Literal

from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from llmagg.common.grpc_client import KEEPALIVE_S
from llmagg.suite import service


def settings_config(name: str) -> SettingsConfigDict:
    """The settings of service `name` (a row of the service table): its variables start with NAME_."""
    return SettingsConfigDict(env_prefix=service(name).env_prefix, extra="ignore", env_ignore_empty=True)


class ServiceSettings(BaseSettings):
    """Fields every gRPC service has. Subclasses set `model_config = settings_config(name)` and the port."""

    model_config = SettingsConfigDict(env_prefix="LLMAGG_", extra="ignore", env_ignore_empty=True)

    host: str = "127.0.0.1"
    port: int = 0
    metrics_port: int = 0  # Prometheus /metrics; 0: none
    log_level: str = "INFO"
    # json: one object per line, for collectors (the default); text: lines a person reads (make run).
    log_format: Literal["json", "text"] = "json"
    # gRPC message size limit both ways; grpc's default 4 MiB is too small for long prompts.
    max_message_bytes: int = 32 * 1024 * 1024
    # Request metadata (HTTP headers through Envoy) up to this size; the gateway refuses bigger
    # headers with a 431 before they get here, so nothing between the two limits fails unexplained.
    max_metadata_bytes: int = 96 * 1024
    # On SIGTERM: report NOT_SERVING for `drain_s` so Envoy's health checks (every second, two
    # failures) stop sending new requests, then finish in-flight RPCs for at most `grace_s`; what is
    # still running near its end is told the server is shutting down.
    drain_s: float = 3.0
    grace_s: float = 10.0
    # The token the gateway sends with every request to this service (<NAME>_GATEWAY_TOKEN): without it
    # (or the token of a peer the service table names, <NAME>_<PEER>_TOKEN) a call is refused
    # (llmagg.common.caller_auth).
    gateway_token: SecretStr | None = None
    # Clients of the suite ping every this many seconds on idle connections; the server accepts that.
    keepalive_s: float = KEEPALIVE_S
    # How often readiness checks (Vault, Redis, ...) are run to set the health status.
    readiness_interval_s: float = 5.0
