"""Which environment variables are the suite's settings: what the test harness clears at its start.

A caller's shell may hold settings for the suite (the README has a user export LLMAGG_ADMIN_KEY; an
operator may have OTEL_* or ROUTER_* set). Tests run on the settings they choose themselves, so the
harness (the root conftest.py) removes these from its own environment before any test runs; every
process the dev stack starts (ManagedProcess) inherits that environment, plus what a test passes.
"""

from __future__ import annotations

from collections.abc import MutableMapping

from llmagg.suite import SERVICES
from llmagg_devstack.dependencies import STARTERS

# LLMAGG_* (the CLI, the registry, the run directory), every service's <NAME>_*, the gateway's
# GATEWAY_*, each dependency's <NAME>_* (OPENBAO_PORT), OpenTelemetry's OTEL_*, and what OpenBao's
# server and client libraries read (VAULT_*, BAO_*).
SUITE_PREFIXES: tuple[str, ...] = (
    "LLMAGG_",
    *(service.env_prefix for service in SERVICES),
    "GATEWAY_",
    *(f"{name.upper()}_" for name in STARTERS),
    "OTEL_",
    "VAULT_",
    "BAO_",
)


def suite_settings_in(environ: MutableMapping[str, str]) -> list[str]:
    return sorted(name for name in environ if name.startswith(SUITE_PREFIXES))


def clear_suite_settings(environ: MutableMapping[str, str]) -> list[str]:
    """Remove every suite setting from `environ`; the names removed."""
    names = suite_settings_in(environ)
    for name in names:
        del environ[name]
    return names
