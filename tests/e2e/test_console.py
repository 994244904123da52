"""The web console (/ui) in a real browser (Debian's chromium, driven by Playwright) against a stack of its own.

A scripted workload first: one alias served by a provider that answers 429 (its account cools for 600 s), one
whose key is rejected (401: its account is disabled), one that fails (500) and one that answers, with a daily
limit of 3 requests (the last one streamed; every one traced to a span receiver); then discovery retires a model. Every page must show the numbers the admin API gives
(exactly), the alerts must appear, a client key must be refused, and disabling an account from the page must
disable it. Screenshots of each page go to $LLMAGG_CONSOLE_SCREENSHOTS or .run/console-screenshots/.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from llmagg_devstack import banner, span_receiver, write_config
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
JAEGER_UI = "http://jaeger.console.test:16686"  # the stack's --jaeger-ui: the Requests page's trace links
CONSOLE_ROUTES = [
    "/v1/admin/routing",
    "/v1/admin/accounts",
    "/v1/admin/discovery/catalog",
    "/v1/admin/discovery/changes",
    "/v1/admin/usage/recent",
    "/v1/admin/keys",
]
CONSOLE_ACTIONS = [("/v1/admin/quotas", {"keys": []})]


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
def receiver():
    with span_receiver() as receiver:
        yield receiver


@pytest.fixture(scope="module")
def console_stack(simulator, tmp_path_factory, make_stack, receiver):
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
        **receiver.environment(),
    }
    with make_stack(run_dir, otlp_endpoint=receiver.endpoint, jaeger_ui=JAEGER_UI).running(env) as stack:
        yield stack


def chat(stack, model: str, key: str = ADMIN_KEY, stream: bool = False) -> tuple[int, dict]:
    """One chat completion; streamed, its answer is the list of its events' JSON (without [DONE])."""
    body = {"model": model, "messages": [{"role": "user", "content": "hi"}], **({"stream": True} if stream else {})}
    request = urllib.request.Request(
        f"{stack.base_url}/chat/completions",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {key}"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            text = response.read()
            if not stream:
                return response.status, json.loads(text)
            events = [line.removeprefix(b"data: ") for line in text.splitlines() if line.startswith(b"data: ")]
            return response.status, {"events": [json.loads(e) for e in events if e != b"[DONE]"]}
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


@pytest.fixture(scope="module")
def workload(console_stack, simulator):
    """Three requests through 429, 401, 500 to the answering provider (the last one streamed); then a model
    retired by discovery."""
    stack = console_stack
    for number in range(DAILY_LIMIT):
        status, body = chat(stack, ALIAS, stream=number == DAILY_LIMIT - 1)
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


def test_make_runs_banner_names_the_console_and_it_answers(console_stack):
    [line] = [line for line in banner(console_stack, "auto", "").splitlines() if "web console" in line]
    url = line.split()[2]
    assert url == f"{gateway(console_stack)}/ui"
    assert get(url)[0] == 200


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
    for path, body in CONSOLE_ACTIONS:
        status, answer = admin_call(console_stack, "POST", path, body, key=key)
        assert (status, answer["error"]["type"]) == (403, "permission_error"), path


# --- The browser ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no browser: {CHROMIUM} is missing (apt-get install chromium; .ci/run installs it)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is in requirements.txt: make venv")
    sync_api.expect.set_options(timeout=20_000)  # a busy machine: the page refreshes every 3 s
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def screenshots() -> Path:
    shutil.rmtree(SCREENSHOTS, ignore_errors=True)
    SCREENSHOTS.mkdir(parents=True)
    print(f"\nconsole screenshots: {SCREENSHOTS}")
    return SCREENSHOTS


@pytest.fixture
def page(browser, workload):
    context = browser.new_context(viewport={"width": 1400, "height": 900}, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(20_000)
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page
    context.close()
    assert not [e for e in errors if "Content Security Policy" in e or "Refused" in e], errors


def sign_in(page, stack, key: str = ADMIN_KEY) -> None:
    page.goto(gateway(stack) + "/ui")
    page.fill("#key", key)
    page.click("#signin-form button[type=submit]")


def show(page, name: str) -> None:
    page.click(f"#nav a[data-page={name}]")
    page.wait_for_selector(f"#page[data-page={name}]")


def by_testid(page, name: str):
    return page.locator(f"[data-testid={name}]")


def usage_rows(stack, query: str) -> list[dict]:
    status, body = admin_call(stack, "GET", f"/v1/usage?{query}")
    assert status == 200, body
    return body["data"]


def integer(value: float) -> str:
    return f"{round(value):,}"


def ms(value: float) -> str:
    """As the page's Math.round writes it (half up, where Python's round() goes to even)."""
    return f"{math.floor(value + 0.5)} ms"


def usd(value: float) -> str:
    return f"${value:.2f}" if value >= 1 else f"${value:.6f}"


def test_a_client_key_or_a_wrong_key_is_refused_at_sign_in(page, workload):
    from playwright.sync_api import expect

    sign_in(page, workload, create_client_key(workload, "console browser client"))
    expect(page.locator("#signin-error")).to_contain_text("not an admin key")
    expect(page.locator("#app")).to_be_hidden()
    assert page.evaluate("sessionStorage.length") == 0 and page.evaluate("localStorage.length") == 0
    sign_in(page, workload, "sk-wrong-FAKE")
    expect(page.locator("#signin-error")).not_to_be_empty()
    expect(page.locator("#app")).to_be_hidden()


def test_the_key_stays_in_the_tab_and_never_in_the_page(page, workload):
    from playwright.sync_api import expect

    sign_in(page, workload)
    expect(by_testid(page, "requests-today")).to_be_visible()
    expect(page.locator("#signin")).to_be_hidden()
    assert page.evaluate("localStorage.length") == 0
    assert page.evaluate("document.cookie") == ""
    assert ADMIN_KEY not in page.content()
    assert page.input_value("#key") == ""
    page.click("#signout")
    expect(page.locator("#signin")).to_be_visible()
    assert page.evaluate("sessionStorage.length") == 0


def test_the_overview_shows_the_usage_api_numbers(page, workload, screenshots):
    from playwright.sync_api import expect

    today = __import__("datetime").datetime.now(__import__("datetime").UTC).strftime("%Y-%m-%d")
    rows = usage_rows(workload, f"start={today}&group_by=provider&group_by=account&group_by=outcome")
    attempts = sum(r["attempts"] for r in rows)
    ok = [r for r in rows if r["outcome"] == "ok"]
    assert (sum(r["requests"] for r in rows), attempts) == (DAILY_LIMIT, 8)  # 3 served; 1 + 1 + 3 + 3 tries
    sign_in(page, workload)
    expect(by_testid(page, "requests-today")).to_have_text(integer(DAILY_LIMIT))
    expect(by_testid(page, "attempts-today")).to_have_text(integer(attempts))
    expect(by_testid(page, "success-rate")).to_have_text(f"{100 * sum(r['attempts'] for r in ok) / attempts:.1f}%")
    expect(by_testid(page, "tokens-today")).to_have_text(integer(sum(r["total_tokens"] for r in rows)))
    expect(by_testid(page, "cost-today")).to_have_text(usd(sum(r["cost_avoided_usd"] for r in rows)))
    assert sum(r["cost_avoided_usd"] for r in rows) > 0  # con-ok has a list price
    latency = sum(r["latency_ms_avg"] * r["attempts"] for r in ok) / sum(r["attempts"] for r in ok)
    expect(by_testid(page, "latency-avg")).to_have_text(f"{round(latency)} ms")
    _, recent = admin_call(workload, "GET", "/v1/admin/usage/recent?limit=500")
    served = sorted(a["latency_ms"] for a in recent["data"] if a["outcome"] == "ok")
    assert len(served) == DAILY_LIMIT

    def percentiles(values: list[float]) -> str:  # nearest rank, p50 / p95
        return " / ".join(ms(values[max(0, math.ceil(share * len(values)) - 1)]) for share in (0.5, 0.95))

    expect(by_testid(page, "latency-percentiles")).to_have_text(percentiles(served))
    # Every answer was streamed from upstream (the router's default), so each has its first token timed.
    first_tokens = sorted(a["first_token_ms"] for a in recent["data"] if a["outcome"] == "ok")
    assert len(first_tokens) == DAILY_LIMIT and all(0 < ttft for ttft in first_tokens)
    expect(by_testid(page, "ttft-percentiles")).to_have_text(percentiles(first_tokens))
    for provider in PROVIDERS:
        mine = [r for r in rows if r["provider"] == provider]
        row = page.locator(f"[data-testid=providers-today] tr[data-provider={provider}]")
        expect(row.locator("[data-testid=provider-requests]")).to_have_text(integer(sum(r["requests"] for r in mine)))
        expect(row.locator("[data-testid=provider-attempts]")).to_have_text(integer(sum(r["attempts"] for r in mine)))
        expect(row.locator("[data-testid=provider-tokens]")).to_have_text(integer(sum(r["total_tokens"] for r in mine)))
    quota = page.locator("[data-testid=quota] tr[data-alias=con-ok-acct]")
    expect(quota.locator("[data-testid=quota-used]")).to_have_text(integer(DAILY_LIMIT))
    expect(quota.locator("[data-testid=quota-limit]")).to_have_text(integer(DAILY_LIMIT))
    page.screenshot(path=screenshots / "1-overview.png", full_page=True)


def test_accounts_show_what_the_api_says_and_an_account_is_disabled_and_enabled_from_the_page(
    page, workload, screenshots
):
    from playwright.sync_api import expect

    _, accounts = admin_call(workload, "GET", "/v1/admin/accounts")
    rejected = next(a for a in accounts["accounts"] if a["alias"] == "con-401-acct")
    assert rejected["enabled"] is False and rejected["disabled_by"] == "upstream"
    sign_in(page, workload)
    show(page, "accounts")
    table = page.locator("[data-testid=accounts]")
    expect(table.locator("tr[data-alias=con-401-acct] [data-testid=state]")).to_have_text(
        f"disabled by upstream {rejected['disabled_reason']}"
    )
    expect(table.locator("tr[data-alias=con-429-acct] [data-testid=cooling]")).to_contain_text("sim-small: 9")
    expect(table.locator("tr[data-alias=con-ok-acct] [data-testid=cooling]")).to_have_text("\u2013")  # an en dash: none
    keys = [{"provider": "con-ok", "account": "con-ok-acct", "model": "sim-small"}]
    status, quotas = admin_call(workload, "POST", "/v1/admin/quotas", {"keys": keys})
    assert status == 200, quotas
    [window] = quotas["windows"]  # con-ok's only limit: its requests per day, all used
    assert (window["name"], window["applies_to"], window["used"], window["limit"]) == (
        "rpd", "con-ok/con-ok-acct", DAILY_LIMIT, DAILY_LIMIT,
    )  # fmt: skip
    shown = table.locator("tr[data-alias=con-ok-acct] [data-testid=windows] [data-window='rpd con-ok/con-ok-acct']")
    expect(shown).to_contain_text(f"rpd {DAILY_LIMIT}/{DAILY_LIMIT}")
    expect(shown).to_contain_text(f"resets {window['resets_at'][11:16]} UTC")
    page.screenshot(path=screenshots / "2-accounts.png", full_page=True)

    row = table.locator("tr[data-alias=con-disc-acct]")
    row.locator("[data-testid=toggle]").click()
    wait_for(
        lambda: admin_call(workload, "GET", "/v1/admin/accounts/con-disc-acct")[1]["account"]["enabled"] is False,
        "the account disabled from the page",
    )
    expect(row.locator("[data-testid=state]")).to_contain_text("disabled by admin")
    row.locator("[data-testid=toggle]").click()
    wait_for(
        lambda: admin_call(workload, "GET", "/v1/admin/accounts/con-disc-acct")[1]["account"]["enabled"] is True,
        "the account enabled again from the page",
    )
    expect(row.locator("[data-testid=state]")).to_have_text("enabled")


def test_usage_per_provider_matches_the_api_and_exports_the_same_rows_as_csv(page, workload, screenshots):
    from playwright.sync_api import expect

    sign_in(page, workload)
    show(page, "usage")
    expect(page.locator("[data-testid=usage-chart] rect")).not_to_have_count(0)
    rows = usage_rows(workload, "bucket=hour&group_by=provider")
    for provider in PROVIDERS:
        mine = [r for r in rows if r["provider"] == provider]
        line = page.locator(f"[data-testid=usage-totals] tr[data-group={provider}]")
        expect(line.locator("[data-testid=usage-requests]")).to_have_text(integer(sum(r["requests"] for r in mine)))
        expect(line.locator("[data-testid=usage-attempts]")).to_have_text(integer(sum(r["attempts"] for r in mine)))
        expect(line.locator("[data-testid=usage-tokens]")).to_have_text(integer(sum(r["total_tokens"] for r in mine)))
    page.screenshot(path=screenshots / "3-usage.png", full_page=True)
    with page.expect_download() as download:
        by_testid(page, "csv").click()
    lines = Path(download.value.path()).read_text().splitlines()
    assert lines[0].split(",")[:2] == ["bucket_start", "provider"]
    exported = {(cells[1], int(cells[5]), int(cells[6])) for cells in (line.split(",") for line in lines[1:])}
    assert exported == {(r["provider"], r["requests"], r["attempts"]) for r in rows}
    # A name a spreadsheet would run as a formula is exported as text; a negative number stays a number.
    row = {"provider": "=HYPERLINK(1)", "account": "+a", "model": "-m", "client_id": "@c", "requests": -1}
    csv = page.evaluate("async (row) => (await import('/ui/usage.js')).toCsv([row])", row)
    assert csv.splitlines()[1] == ",'=HYPERLINK(1),'+a,'-m,'@c,-1,,,,,,"

    page.select_option("[data-testid=usage-by]", "account")
    expect(
        page.locator("[data-testid=usage-totals] tr[data-group=con-ok-acct] [data-testid=usage-requests]")
    ).to_have_text(integer(DAILY_LIMIT))


def test_the_requests_page_lists_the_ledgers_latest_attempts(page, workload, screenshots, receiver):
    from playwright.sync_api import expect

    status, recent = admin_call(workload, "GET", "/v1/admin/usage/recent?limit=100")
    assert status == 200, recent
    attempts = recent["data"]
    # Newest first: the last request answered by con-ok, the first one's fallbacks through 429, 401 and 500.
    assert [(a["provider"], a["outcome"]) for a in reversed(attempts)] == [
        ("con-429", "rate_limited"),
        ("con-401", "auth"),
        ("con-500", "server"),
        ("con-ok", "ok"),
        ("con-500", "server"),
        ("con-ok", "ok"),
        ("con-500", "server"),
        ("con-ok", "ok"),
    ]
    sign_in(page, workload)
    show(page, "requests")
    rows = page.locator("[data-testid=attempts] tr[data-testid=attempt]")
    expect(rows).to_have_count(len(attempts))
    expect(rows.locator("[data-testid=route]")).to_have_text([f"{a['provider']}/{a['model']}" for a in attempts])
    expect(rows.locator("[data-testid=outcome]")).to_have_text([a["outcome"] for a in attempts])
    expect(rows.locator("[data-testid=tokens]")).to_have_text(
        [f"{int(a['prompt_tokens']):,} / {int(a['completion_tokens']):,}" for a in attempts]
    )
    expect(rows.locator("[data-testid=latency]")).to_have_text([ms(a["latency_ms"]) for a in attempts])
    assert {a["requested_model"] for a in attempts} == {ALIAS}  # what the client asked; `model` served it
    expect(rows.locator("[data-testid=requested-model]")).to_have_text([a["requested_model"] for a in attempts])
    # Time to first token: the answers' (the newest, streamed to the client too), none for a failure.
    assert [a["first_token_ms"] > 0 for a in attempts] == [a["outcome"] == "ok" for a in attempts]
    assert attempts[0]["outcome"] == "ok" and attempts[0]["first_token_ms"] > 0  # the streamed request's
    expect(rows.locator("[data-testid=first-token]")).to_have_text(
        [ms(a["first_token_ms"]) if a["first_token_ms"] else "\u2013" for a in attempts]
    )
    # Every request was sampled: each attempt links to its request's trace, one trace per request.
    traces = [a["trace_id"] for a in attempts]
    assert all(re.fullmatch(r"[0-9a-f]{32}", t) for t in traces), traces
    assert [len(set(traces[i:j])) for i, j in ((0, 2), (2, 4), (4, 8))] == [1, 1, 1] and len(set(traces)) == 3
    links = rows.locator("[data-testid=trace] a")
    expect(links).to_have_count(len(attempts))
    assert [links.nth(i).get_attribute("href") for i in range(len(attempts))] == [
        f"{JAEGER_UI}/trace/{t}" for t in traces
    ]
    wait_for(  # and they are real traces: the router's attempt spans were exported under them
        lambda: set(traces) <= {s.trace_id.hex() for s in receiver.spans},
        "the attempts' spans at the receiver",
    )
    page.screenshot(path=screenshots / "4-requests.png", full_page=True)
    status, client = admin_call(workload, "GET", "/v1/admin/usage/recent", key=create_client_key(workload, "peek"))
    assert (status, client["error"]["type"]) == (403, "permission_error")


def test_a_limit_out_of_range_is_a_400_in_openai_shape(console_stack):
    status, body = admin_call(console_stack, "GET", "/v1/admin/usage/recent?limit=501")
    assert (status, body["error"]["type"], body["error"]["param"]) == (400, "invalid_request_error", "limit")


def test_the_catalogue_shows_the_retired_model_and_its_change(page, workload, screenshots):
    from playwright.sync_api import expect

    sign_in(page, workload)
    show(page, "catalogue")
    retired = page.locator(f"[data-testid=models] tr[data-model='{RETIRING[0]}/{RETIRING[1]}']")
    expect(retired.locator("[data-testid=model-state]")).to_contain_text("retired")
    _, changes = admin_call(workload, "GET", "/v1/admin/discovery/changes?since=7d&limit=200")
    expect(page.locator("[data-testid=changes] tbody tr")).to_have_count(len(changes["changes"]))
    _, catalogue = admin_call(workload, "GET", "/v1/admin/discovery/catalog?include_retired=true")
    expect(page.locator("[data-testid=models] tbody tr")).to_have_count(len(catalogue["catalog"]["models"]))
    page.fill("[data-testid=catalogue-filter]", "con-")
    page.press("[data-testid=catalogue-filter]", "Enter")
    ours = [m for m in catalogue["catalog"]["models"] if f"{m['provider']}/{m['model']}".startswith("con-")]
    expect(page.locator("[data-testid=models] tbody tr")).to_have_count(len(ours))
    page.select_option("[data-testid=catalogue-state]", "MODEL_STATE_RETIRED")
    expect(page.locator("[data-testid=models] tbody tr")).to_have_count(1)
    page.select_option("[data-testid=catalogue-state]", "")
    expect(page.locator("[data-testid=models] tbody tr")).to_have_count(len(ours))
    expect(page.locator("[data-testid=changes] tr[data-kind=CHANGE_KIND_RETIRED]")).to_contain_text(
        f"{RETIRING[0]}/{RETIRING[1]}"
    )
    page.screenshot(path=screenshots / "5-catalogue.png", full_page=True)


def test_the_alerts_show_the_rejected_key_the_cooldown_the_exhausted_quota_and_the_retired_model(
    page, workload, screenshots
):
    from playwright.sync_api import expect

    sign_in(page, workload)
    show(page, "alerts")
    alerts = page.locator("[data-testid=alerts] li")
    expect(alerts.first).to_be_visible()
    expect(page.locator("#alert-count")).to_have_text(str(alerts.count()))
    found = {(item.get_attribute("data-kind"), item.get_attribute("data-subject")) for item in alerts.all()}
    assert {
        ("key_rejected", "con-401-acct"),
        ("cooling", "con-429-acct"),
        ("near_limit", "con-ok-acct"),
        ("retired", f"{RETIRING[0]}/{RETIRING[1]}"),
    } <= found
    # A circuit alert exactly where the routing state has a circuit that is not closed.
    _, routing = admin_call(workload, "GET", "/v1/admin/routing")
    not_closed = {
        name
        for provider in routing["providers"]
        for name, circuit in [
            *((e["endpoint"], e["circuit"]) for e in provider["endpoints"]),
            *((f"{provider['provider']}/{m['model']}", m["circuit"]) for m in provider["models"]),
        ]
        if circuit["state"] != "closed"
    }
    assert {subject for kind, subject in found if kind == "circuit_open"} == not_closed
    page.screenshot(path=screenshots / "6-alerts.png", full_page=True)


NOTHING = "\u2013"  # the page's en dash for a value not known yet


def test_the_routing_page_shows_the_meta_controllers_scores_as_the_api_gives_them(page, workload, screenshots):
    from playwright.sync_api import expect

    status, state = admin_call(workload, "GET", "/v1/admin/routing")
    assert status == 200, state
    profiles = state["meta_controller"]["profiles"]
    # The workload's three requests taught the `chat` profile: con-500 failed, con-ok answered each time.
    assert (
        profiles["chat"]["con-500/sim-small"]["success_rate"],
        profiles["chat"]["con-ok/sim-small"]["success_rate"],
    ) == (0.0, 1.0)
    sign_in(page, workload)
    show(page, "routing")
    expect(page.locator("[data-testid=routing] table[data-profile]")).to_have_count(len(profiles))

    def fixed(value, digits: int) -> str:
        return NOTHING if value is None else f"{value:.{digits}f}"

    for profile, arms in profiles.items():
        table = page.locator(f"[data-testid=routing] table[data-profile='{profile}']")
        expect(table.locator("tbody tr")).to_have_count(len(arms))
        for arm, score in arms.items():
            row = table.locator(f"tr[data-model='{arm}']")
            expect(row.locator("[data-testid=attempts]")).to_have_text(fixed(score["attempts"], 2))
            for name in ("success_rate", "quality"):
                value = score[name]
                expect(row.locator(f"[data-testid={name}]")).to_have_text(
                    NOTHING if value is None else f"{100 * value:.1f}%"
                )
            expect(row.locator("[data-testid=judged]")).to_have_text(fixed(score["judged"], 2))
            expect(row.locator("[data-testid=ttft_ms]")).to_have_text(
                NOTHING if score["ttft_ms"] is None else ms(score["ttft_ms"])
            )
            expect(row.locator("[data-testid=tokens_per_s]")).to_have_text(fixed(score["tokens_per_s"], 1))
    page.screenshot(path=screenshots / "7-routing.png", full_page=True)
