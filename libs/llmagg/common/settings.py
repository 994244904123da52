"""Typed settings read once from the environment, one prefix per service (ROUTER_*, ...)."""

from __future__ import annotations

from pydantic_settings import BaseSettings, SettingsConfigDict


class ServiceSettings(BaseSettings):
    """Fields every gRPC service has. Subclasses set `model_config` with their env prefix."""

    model_config = SettingsConfigDict(env_prefix="LLMAGG_", extra="ignore", env_ignore_empty=True)

    host: str = "127.0.0.1"
    port: int = 0
    log_level: str = "INFO"
    # gRPC message size limit both ways; grpc's default 4 MiB is too small for long prompts.
    max_message_bytes: int = 32 * 1024 * 1024
    # On SIGTERM: report NOT_SERVING for `drain_s` so Envoy stops sending, then finish in-flight
    # RPCs for at most `grace_s`.
    drain_s: float = 0.0
    grace_s: float = 10.0
