"""Wires the router from settings: registry + config -> resolver -> Router -> servicer -> server."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from llmagg.common.server import GrpcServer, ServiceBinding
from llmagg.router.v1 import router_pb2
from router.adapters.openai_http import OpenAIHttpAdapter
from router.domain.config import ConfigError, RoutingConfig, build_config
from router.domain.health import HealthTable
from router.domain.resolver import Resolver
from router.domain.router import Router, RouterLimits
from router.servicer import RouterServicer, add_to_server
from router.settings import RouterSettings

SERVICE_NAME = router_pb2.DESCRIPTOR.services_by_name["RouterService"].full_name


def _load_yaml(path: Path, what: str) -> Any:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read the {what} {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"the {what} {path} is not valid YAML: {exc}") from None


def load_config(settings: RouterSettings, environ: Mapping[str, str] = os.environ) -> RoutingConfig:
    shipped = (_load_yaml(settings.registry, "provider registry") or {}).get("providers") or []
    user = _load_yaml(settings.config, "configuration file") if settings.config else None
    return build_config(shipped, user, environ)


def build_router(settings: RouterSettings, config: RoutingConfig) -> Router:
    health = HealthTable(failure_threshold=settings.circuit_failure_threshold, open_for_s=settings.circuit_open_s)
    adapters = {
        "openai": OpenAIHttpAdapter(
            connect_timeout_s=settings.connect_timeout_s,
            read_timeout_s=settings.read_timeout_s,
            max_connections=settings.max_upstream_connections,
        )
    }
    resolver = Resolver(config, health, adapters.keys())
    limits = RouterLimits(
        max_attempts=settings.max_attempts,
        request_timeout_s=settings.request_timeout_s,
        default_cooldown_s=settings.default_cooldown_s,
    )
    return Router(resolver, health, adapters, limits)


def build_server(settings: RouterSettings, router: Router) -> GrpcServer:
    servicer = RouterServicer(router)
    return GrpcServer("router", settings, [ServiceBinding(SERVICE_NAME, servicer, add_to_server)])
