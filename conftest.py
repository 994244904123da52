"""The one place the test session's environment is set: before anything else, for every test of the tree
(libraries, services, tools, the cross-service suites under tests/)."""

from __future__ import annotations

import os

import pytest

from llmagg_devstack import clear_suite_settings


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    """Tests run on the settings they choose: the caller's LLMAGG_*, <SERVICE>_*, GATEWAY_*, OTEL_* (and
    the like; llmagg_devstack.environment) are dropped, so they reach no test and no stack it starts."""
    clear_suite_settings(os.environ)
