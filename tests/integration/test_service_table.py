"""Walk the service table: every service starts from its row alone, reports SERVING, and Envoy routes to it."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

from llmagg.suite import SERVICES, Service
from llmagg_devstack.processes import grpc_serving
from llmagg_devstack.stack import Ports, Stack, clusters_healthy


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
