"""The harness runs every test on the suite's own settings: what the caller exported (the README has a
user export LLMAGG_ADMIN_KEY; an operator may have OTEL_* or <SERVICE>_* set) reaches neither a test
nor a process the dev stack starts, unless a test sets it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from llmagg_devstack import ManagedProcess

from .helpers import wait_for

ROOT = Path(__file__).resolve().parents[1]
# What a caller may have exported, each meant to break a stack if it got through.
EXPORTED = {
    "LLMAGG_ADMIN_KEY": "x",
    "LLMAGG_CONFIG": "/nonexistent",
    "LLMAGG_RUN_DIR": "/nonexistent",
    "ROUTER_PORT": "1",
    "CREDENTIALS_VAULT_ADDR": "http://127.0.0.1:9",
    "RATELIMIT_STORE": "redis",
    "AGENT_MODEL": "nonexistent-model",
    "DISCOVERY_SQLITE_PATH": "/nonexistent/discovery.sqlite3",
    "GATEWAY_CLIENT_AUTH": "off",
    "OPENBAO_PORT": "1",
    "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9",
    "OTEL_SERVICE_NAME": "nonexistent",
    "OTEL_TRACES_SAMPLER_ARG": "0",
    "ROUTER_WORKERS": "3",
}


def leaked(environ: dict[str, str]) -> dict[str, str]:
    return {name: environ[name] for name in EXPORTED if environ.get(name) == EXPORTED[name]}


def test_a_child_of_the_dev_stack_gets_none_of_the_callers_settings():
    child = ManagedProcess("env", [sys.executable, "-c", "import json, os; print(json.dumps(dict(os.environ)))"])
    try:
        wait_for(lambda: child.returncode is not None, "the child to print its environment")
    finally:
        child.stop()
    assert child.returncode == 0, child.output()
    assert leaked(json.loads(child.output())) == {}
    assert leaked(dict(os.environ)) == {}


def test_settings_the_caller_exported_do_not_reach_the_tests():
    """The test above, in a pytest run started with every such setting exported."""
    result = subprocess.run(
        [
            sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
            f"{Path(__file__).relative_to(ROOT)}::test_a_child_of_the_dev_stack_gets_none_of_the_callers_settings",
        ],
        cwd=ROOT,
        env={**os.environ, **EXPORTED},
        capture_output=True,
        text=True,
        timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
