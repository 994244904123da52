"""The web console (/ui) in a real browser (Debian's chromium, driven by Playwright) against a stack of its own.

A scripted workload first: one alias served by a provider that answers 429 (its account cools for 600 s), one
whose key is rejected (401: its account is disabled), one that fails (500) and one that answers, with a daily
limit of 3 requests; then discovery retires a model. Every page must show the numbers the admin API gives
(exactly), the alerts must appear, a client key must be refused, and disabling an account from the page must
disable it. Screenshots of each page go to $LLMAGG_CONSOLE_SCREENSHOTS or .run/console-screenshots/.
"""

from __future__ import annotations

import json
import os
import re
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from llmagg_devstack import write_config
from llmagg_gateway.console_routes import CONSOLE_DIR

from ..helpers import ADMIN_KEY, SIM_KEY, SIM_KEY_ENV, admin_call, create_client_key, wait_for

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = Path(os.environ.get("LLMAGG_CONSOLE_SCREENSHOTS", REPO / ".run" / "console-screenshots"))
ALIAS = "console-model"
# provider -> (behaviour, speed): tried fastest first.
PROVIDERS = {"con-429": ("429", 5), "con-401": ("401", 4), "con-500": ("500", 3), "con-ok": (None, 1)}
DAILY_LIMIT = 3  # con-ok's requests per day: the workload uses all of them
RETIRING = ("con-disc", "sim-large")
CONSOLE_ROUTES = [
    "/v1/admin/routing",
    "/v1/admin/accounts",
    "/v1/admin/discovery/catalog",
    "/v1/admin/discovery/changes",
]


def console_config(simulator) -> dict:
    model = {"id": "sim-small", "quality": 3, "context_window": 32768, "aliases": [ALIAS]}
    providers = [
        {
            "id": name,
            "name": f"Simulated {name}",
            "base_url": simulator.base_url(name),
            "speed": speed,
            "models": [{**model, "list_price": {"input": 0.5, "output": 1.5}} if name == "con-ok" else model],
            **({"limits": {"rpd": DAILY_LIMIT}} if name == "con-ok" else {}),
        }
        for name, (_, speed) in PROVIDERS.items()
    ]
    providers.append(
        {
            "id": "con-disc",
            "name": "Simulated catalogue",
            "base_url": simulator.base_url("con-disc"),
            "models": [{"id": "sim-small", "quality": 3}, {"id": "sim-large", "quality": 4}],
        }
    )
    return {
        "providers": providers,
        "accounts": [{"provider": p["id"], "alias": f"{p['id']}-acct", "api_key_env": SIM_KEY_ENV} for p in providers],
    }


@pytest.fixture(scope="module")
def console_stack(simulator, tmp_path_factory, make_stack):
    for name, (behaviour, _) in PROVIDERS.items():
        simulator.reset(name)
        if behaviour == "429":
            simulator.set_behaviour(name, {"type": "429", "retry_after": 600})
        elif behaviour:
            simulator.set_behaviour(name, behaviour)
    simulator.reset("con-disc")
    run_dir = tmp_path_factory.mktemp("console-stack")
    env = {
        SIM_KEY_ENV: SIM_KEY,
        "LLMAGG_ADMIN_KEY": ADMIN_KEY,
        "LLMAGG_CONFIG": str(write_config(run_dir / "config.yaml", console_config(simulator))),
        "DISCOVERY_MODELS_INTERVAL_S": "3600",  # at start, then only when asked
        "DISCOVERY_RETIRE_AFTER_S": "0",
        "DISCOVERY_HTTP_TIMEOUT_S": "3",
    }
    with make_stack(run_dir).running(env) as stack:
        yield stack


def chat(stack, model: str, key: str = ADMIN_KEY) -> tuple[int, dict]:
    request = urllib.request.Request(
        f"{stack.base_url}/chat/completions",
        data=json.dumps({"model": model, "messages": [{"role": "user", "content": "hi"}]}).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {key}"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


@pytest.fixture(scope="module")
def workload(console_stack, simulator):
    """Three requests through 429, 401, 500 to the answering provider; then a model retired by discovery."""
    stack = console_stack
    for _ in range(DAILY_LIMIT):
        status, body = chat(stack, ALIAS)
        assert status == 200, body
    simulator.remove_model(*RETIRING)
    status, body = admin_call(stack, "POST", "/v1/admin/discovery/refresh", {"sources": ["models"]})
    assert status == 200, body
    assert ("CHANGE_KIND_RETIRED", RETIRING[1]) in {(c["kind"], c["model"]) for c in body["changes"]}

    def settled():  # the router settles its attempts with ratelimit after answering
        status, body = admin_call(stack, "GET", "/v1/usage?group_by=provider")
        attempts = sum(row["attempts"] for row in body["data"])
        return body if status == 200 and attempts == 3 + 1 + 1 + 3 else None

    wait_for(settled, "every attempt of the workload in the usage ledger")
    return stack


def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict, bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def gateway(stack) -> str:
    return f"http://127.0.0.1:{stack.ports.gateway}"


# --- HTTP: what the gateway serves ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "content_type"),
    [("/ui", "text/html"), ("/ui/", "text/html"), ("/ui/app.js", "text/javascript"), ("/ui/style.css", "text/css")],
)
def test_the_console_loads_without_a_key_under_a_strict_policy(console_stack, path, content_type):
    status, headers, body = get(gateway(console_stack) + path)
    headers = {name.lower(): value for name, value in headers.items()}
    assert status == 200, body
    assert headers["content-type"].startswith(content_type)
    policy = headers["content-security-policy"]
    assert "default-src 'self'" in policy and "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
    assert headers["x-frame-options"] == "DENY"
    assert headers["cache-control"] == "no-store"
    assert headers["x-content-type-options"] == "nosniff"
    served = CONSOLE_DIR / ("index.html" if content_type == "text/html" else path.removeprefix("/ui/"))
    assert body == served.read_bytes()  # the file's own bytes, not an error envelope
    if content_type == "text/html":
        page = body.decode()
        assert not re.search(r"<script(?![^>]*\bsrc=)", page), "an inline script"
        assert " style=" not in page and "<style" not in page


def test_data_routes_are_not_cached(console_stack):
    status, headers, _ = get(gateway(console_stack) + "/v1/admin/routing", {"Authorization": f"Bearer {ADMIN_KEY}"})
    assert status == 200
    assert {k.lower(): v for k, v in headers.items()}["cache-control"] == "no-store"


def test_an_admin_action_must_be_json(console_stack):
    url = gateway(console_stack) + "/v1/admin/accounts/con-ok-acct"
    for content_type in ("text/plain", "application/x-www-form-urlencoded", None):
        headers = {"Authorization": f"Bearer {ADMIN_KEY}", **({"Content-Type": content_type} if content_type else {})}
        request = urllib.request.Request(url, data=b'{"enabled": false}', method="PATCH", headers=headers)
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=10)
        body = json.loads(refused.value.read())
        assert refused.value.code == 415, body
        assert body["error"]["code"] == "unsupported_media_type"
        assert "Content-Type: application/json" in body["error"]["message"]
    status, body = admin_call(console_stack, "GET", "/v1/admin/accounts/con-ok-acct")
    assert status == 200 and body["account"]["enabled"] is True  # nothing changed
    # Without a key the answer is still 401: the rule is checked after the key.
    request = urllib.request.Request(url, data=b"x", method="PATCH", headers={"Content-Type": "text/plain"})
    with pytest.raises(urllib.error.HTTPError) as anonymous:
        urllib.request.urlopen(request, timeout=10)
    assert anonymous.value.code == 401


def test_every_route_the_console_reads_refuses_a_client_key(console_stack):
    key = create_client_key(console_stack, "console client")
    for path in CONSOLE_ROUTES:
        status, body = admin_call(console_stack, "GET", path, key=key)
        assert (status, body["error"]["type"]) == (403, "permission_error"), path
