"""Quotas end to end: the openai SDK through real Envoy to the router, the ratelimit service and the
provider simulator. Accounts with small limits are spread over and never called once exhausted; the
usage ledger matches what the simulator saw; client keys meet their requests per minute and token
budgets at the gateway with OpenAI-shaped 429s."""

from __future__ import annotations

import json
import time
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import openai
import pytest

from llmagg_devstack import write_config

from ..helpers import ADMIN_KEY, admin_call, create_client_key, wait_for

KEY_A, KEY_B = "sk-quota-a-FAKE-key", "sk-quota-b-FAKE-key"
DAILY = 3  # requests per day of each quota account
SHARED_DAILY = 6  # requests per day of the account six clients share (d-sim)
CLIENT_RPM, CLIENT_TPD = 3, 50
HELLO = [{"role": "user", "content": "Hello!"}]


@pytest.fixture(scope="module")
def quota_stack(simulator, tmp_path_factory, make_stack):
    run_dir = tmp_path_factory.mktemp("quotas")
    providers = [
        {
            "id": "q-sim",
            "name": "Simulated, 3 requests a day per account",
            "base_url": simulator.base_url("q-sim"),
            "limits": {"rpd": DAILY},
            "models": [{"id": "q-model", "aliases": ["quota-model"], "list_price": {"input": 1.0, "output": 2.0}}],
        },
        {
            "id": "d-sim",
            "name": "Simulated, 6 requests a day",
            "base_url": simulator.base_url("d-sim"),
            "limits": {"rpd": SHARED_DAILY},
            "models": [{"id": "d-model", "context_window": 32768, "aliases": ["shared-model"]}],
        },
        {
            "id": "c-sim",
            "name": "Simulated, unlimited",
            "base_url": simulator.base_url("c-sim"),
            "models": [{"id": "c-model", "aliases": ["client-model"]}],
        },
    ]
    config = write_config(
        run_dir / "config.yaml",
        {
            "providers": providers,
            "accounts": [
                {"provider": "q-sim", "alias": "q-a", "api_key_env": "Q_KEY_A"},
                {"provider": "q-sim", "alias": "q-b", "api_key_env": "Q_KEY_B"},
                {"provider": "c-sim", "alias": "c-acct", "api_key_env": "Q_KEY_A"},
                {"provider": "d-sim", "alias": "d-acct", "api_key_env": "Q_KEY_A"},
            ],
        },
    )
    env = {
        "LLMAGG_CONFIG": str(config),
        "LLMAGG_ADMIN_KEY": ADMIN_KEY,
        "Q_KEY_A": KEY_A,
        "Q_KEY_B": KEY_B,
        "RATELIMIT_CLIENT_RPM": str(CLIENT_RPM),
        "RATELIMIT_CLIENT_TPD": str(CLIENT_TPD),
    }
    for name in ("q-sim", "c-sim", "d-sim"):
        simulator.reset(name)
    with make_stack(run_dir).running(env) as stack:
        yield stack


def sdk(stack, key: str = ADMIN_KEY) -> openai.OpenAI:
    return openai.OpenAI(base_url=stack.base_url, api_key=key, max_retries=0, timeout=30)


def usage(stack, key: str = ADMIN_KEY, **query) -> tuple[int, dict]:
    return admin_call(stack, "GET", "/v1/usage?" + urllib.parse.urlencode(query, doseq=True), key=key)


def test_accounts_are_spread_over_never_called_exhausted_and_the_ledger_matches_the_simulator(quota_stack, simulator):
    client = sdk(quota_stack)
    served: dict[str, list[tuple[int, int]]] = {"q-a": [], "q-b": []}
    for _ in range(2 * DAILY):
        raw = client.chat.completions.with_raw_response.create(model="quota-model", messages=HELLO)
        answer = raw.parse()
        served[raw.headers["x-llmagg-account"]].append((answer.usage.prompt_tokens, answer.usage.completion_tokens))
    assert {account: len(calls) for account, calls in served.items()} == {"q-a": DAILY, "q-b": DAILY}
    with pytest.raises(openai.RateLimitError) as caught:
        client.chat.completions.create(model="quota-model", messages=HELLO)
    until_midnight = 86400 - time.time() % 86400
    assert caught.value.code == "rate_limit_exceeded"
    assert (
        abs(int(caught.value.response.headers["retry-after"]) - until_midnight) <= 3
    )  # the day resets at UTC midnight
    # The simulator saw exactly the six granted calls, three with each account's key.
    seen = [r["headers"]["authorization"] for r in simulator.requests("q-sim")]
    assert sorted(seen) == sorted([f"Bearer {KEY_A}"] * DAILY + [f"Bearer {KEY_B}"] * DAILY)

    def ledger() -> dict | None:
        status, body = usage(quota_stack, group_by="account", provider="q-sim")
        rows = {row["account"]: row for row in body.get("data", [])} if status == 200 else {}
        return rows if sum(int(r["requests"]) for r in rows.values()) == 2 * DAILY else None

    rows = wait_for(ledger, "the six settlements in the ledger")
    for account, calls in served.items():
        prompt, completion = sum(p for p, _ in calls), sum(c for _, c in calls)
        row = rows[account]
        assert (row["requests"], row["prompt_tokens"], row["completion_tokens"]) == (DAILY, prompt, completion)
        assert row["cost_avoided_usd"] == pytest.approx((prompt * 1.0 + completion * 2.0) / 1e6)


@pytest.mark.parametrize("huge", [2**31 - 1])
def test_a_huge_max_tokens_amid_other_clients_requests_is_metered_and_drops_no_ones_usage(quota_stack, simulator, huge):
    """Issue 16, item 2: six clients at once, one of them asking for max_tokens 2**31-1, on an account with
    six requests a day: all six are served and metered (six usage rows, one per client), and the seventh
    request is refused without reaching the provider."""
    keys = [create_client_key(quota_stack, f"shared-{n}") for n in range(SHARED_DAILY)]
    bodies = [{}] * (SHARED_DAILY - 1) + [{"max_tokens": huge}]

    def ask(key_and_extra: tuple[str, dict]) -> str:
        key, extra = key_and_extra
        raw = sdk(quota_stack, key).chat.completions.with_raw_response.create(
            model="shared-model", messages=HELLO, **extra
        )
        return raw.headers["x-llmagg-account"]

    with ThreadPoolExecutor(SHARED_DAILY) as pool:
        assert list(pool.map(ask, zip(keys, bodies, strict=True))) == ["d-acct"] * SHARED_DAILY
    client_ids = sorted(key.split("-")[2] for key in keys)

    def ledger() -> list[tuple[str, int]] | None:
        status, body = usage(quota_stack, group_by="client_id", provider="d-sim")
        rows = sorted((row["client_id"], int(row["requests"])) for row in body.get("data", [])) if status == 200 else []
        return rows if sum(requests for _, requests in rows) >= SHARED_DAILY else None

    assert wait_for(ledger, "six settlements of d-sim in the ledger") == [(c, 1) for c in client_ids]
    with pytest.raises(openai.RateLimitError) as caught:
        sdk(quota_stack, create_client_key(quota_stack, "shared-late")).chat.completions.create(
            model="shared-model", messages=HELLO
        )
    assert caught.value.code == "rate_limit_exceeded"
    assert len(simulator.requests("d-sim")) == SHARED_DAILY


@pytest.mark.parametrize(
    ("fields", "param", "code"),
    [
        ({"temperature": "hot"}, "temperature", "invalid_type"),
        ({"max_tokens": -1}, "max_tokens", "integer_below_min_value"),
        ({"max_tokens": 2.5}, "max_tokens", "invalid_type"),
        ({"n": -1}, "n", "integer_below_min_value"),
        ({"messages": [{"role": "wizard", "content": "hi"}]}, "messages[0].role", "invalid_value"),
    ],
)
def test_nonsense_values_are_an_openai_400_naming_the_field_and_reach_no_provider(
    quota_stack, simulator, fields, param, code
):
    before = len(simulator.requests("c-sim"))
    with pytest.raises(openai.BadRequestError) as caught:
        sdk(quota_stack).chat.completions.create(model="client-model", **{"messages": HELLO, **fields})
    error = caught.value.body
    assert (error["type"], error["param"], error["code"]) == ("invalid_request_error", param, code)
    assert f"'{param}'" in error["message"] or param.endswith(".role")
    assert len(simulator.requests("c-sim")) == before


def wait_for_a_fresh_minute() -> None:
    """A client's requests per minute are counted per clock minute: start a test early in one."""
    wait_for(lambda: time.time() % 60 < 40, "the first 40 s of a minute", timeout_s=25)


def test_a_client_over_its_requests_per_minute_gets_an_openai_429_with_retry_after(quota_stack):
    key = create_client_key(quota_stack, "rpm")
    client = sdk(quota_stack, key)
    wait_for_a_fresh_minute()
    for _ in range(CLIENT_RPM):
        client.chat.completions.create(model="client-model", messages=HELLO)
    with pytest.raises(openai.RateLimitError) as caught:
        client.chat.completions.create(model="client-model", messages=HELLO)
    headers = caught.value.response.headers
    assert caught.value.code == "rate_limit_exceeded" and caught.value.type == "rate_limit_error"
    assert "requests per minute" in caught.value.message
    assert 1 <= int(headers["retry-after"]) <= 60
    assert headers["x-ratelimit-limit"].startswith(f"{CLIENT_RPM}") and headers["x-ratelimit-remaining"] == "0"
    assert 0 <= int(headers["x-ratelimit-reset"]) <= 60


def test_a_client_over_its_token_budget_is_refused_on_its_next_request(quota_stack):
    key = create_client_key(quota_stack, "tokens")
    client_id = key.split("-")[2]
    client = sdk(quota_stack, key)
    wait_for_a_fresh_minute()
    long_prompt = [{"role": "user", "content": " ".join(["word"] * 120)}]
    first = client.chat.completions.create(model="client-model", messages=long_prompt)
    assert first.usage.total_tokens > CLIENT_TPD  # allowed: the budget was not spent before it

    def settled() -> bool:
        status, body = usage(quota_stack, client_id=client_id)
        return status == 200 and bool(body["data"]) and int(body["data"][0]["requests"]) == 1

    wait_for(settled, "the first request's settlement")
    with pytest.raises(openai.RateLimitError) as caught:
        client.chat.completions.create(model="client-model", messages=HELLO)
    assert f"budget of {CLIENT_TPD} tokens per day" in caught.value.message
    assert int(caught.value.response.headers["retry-after"]) >= 1


def test_a_client_sees_its_own_usage_and_an_admin_sees_everyones(quota_stack):
    key = create_client_key(quota_stack, "viewer")
    client_id = key.split("-")[2]
    sdk(quota_stack, key).chat.completions.create(model="client-model", messages=HELLO)

    def settled() -> bool:  # asked with the admin key: the client's own requests per minute are few
        status, body = usage(quota_stack, client_id=client_id)
        return status == 200 and bool(body["data"])

    wait_for(settled, "the client's settlement")
    status, body = usage(quota_stack, key, group_by=["client_id", "model"], bucket="day")
    assert status == 200, body
    assert body["object"] == "usage" and body["bucket"] == "day"
    assert [(r["client_id"], r["model"], r["requests"]) for r in body["data"]] == [(client_id, "c-model", 1)]
    status, body = usage(quota_stack, key, client_id="someone-else")
    assert status == 403 and body["error"]["code"] == "insufficient_scope"
    status, body = usage(quota_stack, group_by="client_id")
    assert status == 200 and {client_id, "admin-env"} <= {r["client_id"] for r in body["data"]}
    status, body = usage(quota_stack, bucket="week")
    assert status == 400 and body["error"]["param"] == "bucket"


def test_the_response_carries_usage_and_openrouters_usage_include_is_accepted(quota_stack):
    answer = sdk(quota_stack).chat.completions.create(
        model="client-model", messages=HELLO, extra_body={"usage": {"include": True}}
    )
    assert answer.usage.prompt_tokens > 0 and answer.usage.total_tokens == (
        answer.usage.prompt_tokens + answer.usage.completion_tokens
    )


def test_llmagg_usage_prints_the_ledger_as_a_table_and_as_json(quota_stack):
    from .test_cli import llmagg

    sdk(quota_stack).chat.completions.create(model="client-model", messages=HELLO)

    def listed():
        done = llmagg(quota_stack, "usage", "--by", "provider,model", "--since", "2h", "--provider", "c-sim")
        return done if done.returncode == 0 and "c-model" in done.stdout else None

    table = wait_for(listed, "c-sim's usage in the table").stdout.splitlines()
    assert table[0].split()[:5] == ["PROVIDER", "MODEL", "REQUESTS", "ATTEMPTS", "PROMPT"]
    assert table[2].split()[:2] == ["c-sim", "c-model"] and int(table[2].split()[2]) >= 1
    as_json = llmagg(quota_stack, "usage", "--json", "--by", "outcome")
    assert as_json.returncode == 0 and json.loads(as_json.stdout)["object"] == "usage"
    refused = llmagg(quota_stack, "usage", "--by", "colour")
    assert refused.returncode == 2 and "--by takes" in refused.stderr


def limit_checks(stack) -> int:
    """How many times the gateway asked the ratelimit service about a request (its own metrics)."""
    with urllib.request.urlopen(stack.metrics_url("ratelimit"), timeout=10) as response:
        lines = response.read().decode().splitlines()
    return sum(
        int(float(line.rsplit(" ", 1)[1]))
        for line in lines
        if line.startswith("llmagg_grpc_server_handled_total{") and '/ShouldRateLimit"' in line
    )


def test_the_gateway_asks_about_clients_with_limits_only(quota_stack):
    key = create_client_key(quota_stack, "asked")
    before = limit_checks(quota_stack)
    for _ in range(2):  # the default limits are every client key's: each request is asked about
        sdk(quota_stack, key).chat.completions.create(model="client-model", messages=HELLO)
    assert limit_checks(quota_stack) == before + 2
    for _ in range(3):  # an admin key has none of its own: nothing to ask, no hop
        sdk(quota_stack).chat.completions.create(model="client-model", messages=HELLO)
    assert limit_checks(quota_stack) == before + 2


def test_an_admin_key_with_limits_of_its_own_is_asked_about_and_clients_without_are_not(
    simulator, tmp_path, make_stack
):
    config = write_config(
        tmp_path / "config.yaml",
        {
            "providers": [{"id": "c-sim", "base_url": simulator.base_url("c-sim"), "models": [{"id": "c-model"}]}],
            "accounts": [{"provider": "c-sim", "alias": "c-acct", "api_key_env": "Q_KEY_A"}],
        },
    )
    env = {
        "LLMAGG_CONFIG": str(config),
        "LLMAGG_ADMIN_KEY": ADMIN_KEY,
        "Q_KEY_A": KEY_A,
        # The environment's admin key among many named ones (Envoy takes any number of them).
        "RATELIMIT_CLIENT_LIMITS": json.dumps(
            {"admin-env": {"rpm": 1000}} | {f"{n:012x}": {"tpd": 10**6} for n in range(200)}
        ),
    }
    with make_stack(tmp_path / "stack").running(env) as stack:
        key = create_client_key(stack, "unlimited")
        before = limit_checks(stack)
        for _ in range(3):
            sdk(stack, key).chat.completions.create(model="c-model", messages=HELLO)
        assert limit_checks(stack) == before
        sdk(stack).chat.completions.create(model="c-model", messages=HELLO)
        assert limit_checks(stack) == before + 1
