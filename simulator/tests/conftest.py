"""One real simulator subprocess for the whole run; each test talks to a provider name of its own.

The SDKs under test reach only loopback: host names other than loopback's do not resolve during a test, and the
environment variables through which the SDKs pick up keys, base URLs or clouds are cleared.
"""

from __future__ import annotations

import ipaddress
import itertools
import os
import re
import socket
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import openai
import pytest

from llmagg_devstack import SimulatorProcess

from .helpers import (
    API_KEY,
    RawResponse,
    anthropic_for,
    async_anthropic_for,
    async_cohere_for,
    cohere_for,
    gemini_for,
    sdk_for,
)

# Providers whose startup default comes from --provider (the rest default to ok).
STARTUP_DEFAULTS: dict[str, Any] = {
    "sim-ratelimited": "429",
    "sim-ratelimited-3": {"type": "429", "retry_after": 3},
    "sim-broken": "500",
}
_names = itertools.count()


# Variables the SDKs read for keys, endpoints, profiles or clouds (anthropic, google-genai, cohere, openai).
SDK_ENVIRONMENT = re.compile(r"^(ANTHROPIC_|GOOGLE_|GEMINI_|CO_API_|OPENAI_)")


def _is_loopback(host: Any) -> bool:
    if isinstance(host, bytes):
        host = host.decode()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(str(host)).is_loopback
    except ValueError:
        return False


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    resolve = socket.getaddrinfo

    def loopback_getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if not _is_loopback(host):
            raise OSError(f"the simulator tests reach loopback only, not {host!r}")
        return resolve(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", loopback_getaddrinfo)
    for name in [name for name in os.environ if SDK_ENVIRONMENT.match(name)]:
        monkeypatch.delenv(name)


@pytest.fixture(scope="session")
def sim() -> Iterator[SimulatorProcess]:
    simulator = SimulatorProcess(providers=STARTUP_DEFAULTS)
    try:
        yield simulator
    finally:
        simulator.stop()
    # Every fault the tests provoked was deliberate: the simulator itself must not have failed or lingered.
    assert simulator.returncode == 0, simulator.output()
    assert simulator.output() == f"provider-simulator listening on {simulator.url}\n"


@pytest.fixture
def provider(sim: SimulatorProcess, request: pytest.FixtureRequest) -> str:
    """A provider name no other test uses, freshly reset."""
    name = f"{re.sub(r'[^A-Za-z0-9_]+', '-', request.node.name).strip('-')[:60]}-{next(_names)}"
    sim.reset(name)
    return name


Make = Callable[[SimulatorProcess, str], Any]


def _sdk_fixture(make: Make) -> Any:
    """A fixture yielding the client `make` builds for the test's provider, closed after the test."""

    @pytest.fixture
    def fixture(sim: SimulatorProcess, provider: str) -> Iterator[Any]:
        with make(sim, provider) as api:
            yield api

    return fixture


def _async_sdk_fixture(make: Make) -> Any:
    """A fixture returning an async client; the test closes it (`async with`) on its own event loop."""

    @pytest.fixture
    def fixture(sim: SimulatorProcess, provider: str) -> Any:
        return make(sim, provider)

    return fixture


client = _sdk_fixture(sdk_for)
anthropic_client = _sdk_fixture(anthropic_for)
gemini_client = _sdk_fixture(gemini_for)
cohere_client = _sdk_fixture(cohere_for)
async_client = _async_sdk_fixture(
    lambda sim, provider: openai.AsyncOpenAI(
        base_url=sim.base_url(provider), api_key=API_KEY, max_retries=0, timeout=10
    )
)
async_anthropic_client = _async_sdk_fixture(async_anthropic_for)
async_cohere_client = _async_sdk_fixture(async_cohere_for)


@pytest.fixture(scope="session")
def raw_http() -> Callable[..., RawResponse]:
    """Plain HTTP, for what the SDK never sends (bad JSON, no key) or hides (the bytes on the wire)."""

    def call(method: str, url: str, body: bytes | None = None, headers: dict[str, str] | None = None) -> RawResponse:
        request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return RawResponse(
                    response.status, {k.lower(): v for k, v in response.headers.items()}, response.read()
                )
        except urllib.error.HTTPError as error:
            return RawResponse(error.code, {k.lower(): v for k, v in error.headers.items()}, error.read())

    return call
