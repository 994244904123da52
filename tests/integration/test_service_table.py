"""Walk the service table: every service starts from its row alone, reports SERVING, and Envoy routes to it."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

from llmagg.common.caller_auth import caller_tokens, callers_of
from llmagg.rpcs import peers_allowed
from llmagg.suite import SERVICES, Service, start_order
from llmagg_credentials.domain.access import RULES, caller_enum, caller_rules
from llmagg_credentials.settings import CredentialsSettings
from llmagg_devstack import Ports, Stack, clusters_healthy, grpc_serving, suite_settings


@pytest.fixture(scope="module")
def table_stack(tmp_path_factory):
    with Stack(tmp_path_factory.mktemp("table"), Ports.free()).running() as stack:
        yield stack


@pytest.mark.parametrize("service", SERVICES, ids=lambda s: s.name)
def test_the_package_imports_and_its_settings_follow_the_row(service: Service, monkeypatch):
    module, _, name = service.settings_class.partition(":")
    settings_class = getattr(importlib.import_module(module), name)
    assert settings_class.model_config["env_prefix"] == service.env_prefix
    monkeypatch.delenv(f"{service.env_prefix}PORT", raising=False)
    assert (settings_class().port, settings_class().metrics_port) == (service.port, service.metrics_port)
    monkeypatch.setenv(f"{service.env_prefix}PORT", "12345")
    assert settings_class().port == 12345
    result = subprocess.run([sys.executable, "-c", f"import {service.package}"], capture_output=True, timeout=60)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("service", SERVICES, ids=lambda s: s.name)
def test_each_service_reports_serving_under_its_grpc_name(table_stack, service: Service):
    assert grpc_serving(table_stack.address(service.name), service.grpc_service)
    assert grpc_serving(table_stack.address(service.name))


def test_envoy_has_found_every_service_healthy_through_its_generated_cluster(table_stack):
    assert clusters_healthy(table_stack.ports.admin, [s.name for s in SERVICES])


# A service that calls credentials is its folder, its proto and this row: every piece below follows it.
SCRATCH = Service(
    "scratch",
    port=50099,
    metrics_port=9199,
    calls=("credentials",),
    rpcs={"credentials": ("ListAccounts",)},
    dev={"KEY_SOURCE": "credentials", "STATE": "$run_dir/scratch.db"},
)
WITH_SCRATCH = (*SERVICES, SCRATCH)


def test_who_calls_credentials_and_what_it_may_call_follow_the_table():
    assert callers_of("credentials", WITH_SCRATCH) == ("gateway", "router", "ratelimit", "discovery", "scratch")
    assert peers_allowed("credentials", "ListAccounts", WITH_SCRATCH) == ("router", "ratelimit", "discovery", "scratch")
    assert peers_allowed("credentials", "Lease", WITH_SCRATCH) == ("router", "discovery")
    caller = caller_enum(WITH_SCRATCH)
    rules = caller_rules(caller, WITH_SCRATCH)
    assert rules["ListAccounts"] == {caller.ADMIN, caller.ROUTER, caller.RATELIMIT, caller.DISCOVERY, caller.SCRATCH}
    assert rules["Lease"] == {caller.ROUTER, caller.DISCOVERY}
    assert rules["AddAccount"] == {caller.ADMIN}
    assert {name: sorted(c.value for c in allowed) for name, allowed in RULES.items()} == {
        **{
            name: ["admin"]
            for name in ("AddAccount", "GetAccount", "UpdateAccount", "RotateAccountKey", "DeleteAccount")
        },
        **{name: ["admin"] for name in ("CreateClientKey", "ListClientKeys", "RevokeClientKey")},
        "ListAccounts": ["admin", "discovery", "ratelimit", "router"],
        "Lease": ["discovery", "router"],
        "ReportOutcome": ["router"],
    }  # the table as it stands


def test_the_token_a_new_caller_shares_with_credentials_needs_no_field_in_its_settings():
    environ = {"CREDENTIALS_SCRATCH_TOKEN": "scratch-token", "CREDENTIALS_ROUTER_TOKEN": "router-token"}
    tokens = caller_tokens("credentials", CredentialsSettings(), environ, WITH_SCRATCH)
    assert {name: token.reveal() for name, token in tokens.items()} == {
        "router": "router-token",
        "scratch": "scratch-token",
    }
    assert SCRATCH.token_variable("credentials") == "SCRATCH_CREDENTIALS_TOKEN"  # the same pair's token, its side


def test_the_dev_stack_starts_it_after_credentials_with_the_settings_of_its_row(tmp_path):
    order = [s.name for s in start_order(WITH_SCRATCH)]
    assert order.index("scratch") > order.index("credentials")
    assert suite_settings(SCRATCH, tmp_path) == {
        "SCRATCH_KEY_SOURCE": "credentials",
        "SCRATCH_STATE": f"{tmp_path.resolve()}/scratch.db",
    }
