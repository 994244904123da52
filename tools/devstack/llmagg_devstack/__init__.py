"""The dev stack: starts the suite for `make run`/`make demo`, the tests and the bench.

This is its public API: tests and the bench import these names from `llmagg_devstack` only, never
from one of its modules. Each is imported on first use, so that reading one (the conftest's
`clear_suite_settings`) does not load the whole stack.
"""

from __future__ import annotations

import importlib
from typing import Any

_PUBLIC = {
    "containers": ("IMAGE_DESCRIPTOR", "PodmanLauncher"),
    "demo": ("AGENT_HINTS", "DEMO_KEY_ENV", "banner", "demo_config"),
    "dependencies": (
        "CREDENTIALS_POLICY",
        "STARTERS",
        "OpenBao",
        "Valkey",
        "needed",
        "start_openbao",
        "start_postgres",
        "start_valkey",
    ),
    "environment": ("clear_suite_settings",),
    "otlp": ("span_receiver",),
    "postgres": ("running_postgres",),
    "processes": ("ManagedProcess", "ProcessError", "ephemeral_range", "free_port", "grpc_serving"),
    "simulator": ("LISTENING", "SimulatorError", "SimulatorProcess"),
    "stack": ("ROOT", "Ports", "Stack", "clusters_healthy", "envoy_binary", "suite_settings", "write_config"),
}
_MODULE_OF = {name: module for module, names in _PUBLIC.items() for name in names}
__all__ = sorted(_MODULE_OF)


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'llmagg_devstack' has no public name {name!r}")
    value = getattr(importlib.import_module(f"llmagg_devstack.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
