"""The `llmagg` console script against the real stack: accounts, keys, the configure wizard; exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from ..helpers import ADMIN_KEY, SCENARIOS, admin_call, arrivals, create_client_key, scenario, wait_for

LLMAGG = str(Path(sys.executable).with_name("llmagg"))


def llmagg(stack, *args: str, stdin: str = "", key: str | None = ADMIN_KEY, **env: str):
    environment = {**os.environ, "LLMAGG_URL": f"http://127.0.0.1:{stack.ports.gateway}", **env}
    environment.pop("LLMAGG_ADMIN_KEY", None)
    if key is not None:
        environment["LLMAGG_ADMIN_KEY"] = key
    return subprocess.run(
        [LLMAGG, *args], input=stdin, capture_output=True, text=True, timeout=60, env=environment, check=False
    )


def test_accounts_lifecycle_with_tables_json_and_exit_codes(stack):
    key, new_key = "sk-cli-FAKE-first", "sk-cli-FAKE-second"
    added = llmagg(stack, "accounts", "add", "sim-fast", "--alias", "cli-1", "--label", "team=a", stdin=key + "\n")
    assert added.returncode == 0, added.stderr
    assert added.stdout.splitlines()[0].split() == [
        "ALIAS",
        "PROVIDER",
        "ENABLED",
        "PRIORITY",
        "KEY",
        "SOURCE",
        "LABELS",
        "DISABLED",
    ]
    assert added.stdout.splitlines()[2].split()[:7] == ["cli-1", "sim-fast", "yes", "0", "v1", "cli", "team=a"]
    assert llmagg(stack, "accounts", "add", "sim-fast", "--alias", "cli-1", stdin=key + "\n").returncode == 4
    refused = llmagg(stack, "accounts", "add", "no-such", "--alias", "cli-x", stdin=key + "\n")
    assert refused.returncode == 1 and "unknown_provider" in refused.stderr
    listed = json.loads(llmagg(stack, "accounts", "list", "--provider", "sim-fast", "--json").stdout)
    assert {a["alias"] for a in listed["accounts"]} == {"sim-fast-acct", "cli-1"}
    updated = json.loads(llmagg(stack, "accounts", "update", "cli-1", "--disable", "--priority", "-5", "--json").stdout)
    assert (updated["account"]["enabled"], updated["account"]["priority"]) == (False, -5)
    rotated = json.loads(llmagg(stack, "accounts", "rotate", "cli-1", "--json", stdin=new_key + "\n").stdout)
    assert rotated["account"]["key_version"] == 2
    removed = llmagg(stack, "accounts", "remove", "cli-1")
    assert (removed.returncode, removed.stdout) == (0, "removed cli-1\n")
    assert llmagg(stack, "accounts", "get", "cli-1").returncode == 3
    for run in (added, refused):
        assert key not in run.stdout + run.stderr


def test_import_adds_what_is_new_and_keeps_what_exists(stack, tmp_path):
    config = tmp_path / "more.yaml"
    config.write_text(
        "accounts:\n"
        "  - {provider: sim-fast, alias: imported-1, api_key_env: CLI_IMPORT_KEY}\n"
        "  - {provider: sim-fast, alias: sim-fast-acct, api_key_env: CLI_IMPORT_KEY}\n"
    )
    run = llmagg(stack, "accounts", "import", str(config), "--json", CLI_IMPORT_KEY="sk-import-FAKE-key")
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["imported"] == [
        {"alias": "imported-1", "result": "added"},
        {"alias": "sim-fast-acct", "result": "exists, kept"},
    ]
    assert llmagg(stack, "accounts", "remove", "imported-1").returncode == 0


def test_keys_create_prints_the_secret_once_then_list_and_revoke(stack):
    created = llmagg(stack, "keys", "create", "--name", "cli test")
    assert created.returncode == 0
    secret = created.stdout.strip()
    assert secret.startswith("sk-llmagg-") and "shown this once" in created.stderr
    key_id = secret.split("-")[2]
    listed = llmagg(stack, "keys", "list")
    assert key_id in listed.stdout and secret not in listed.stdout
    assert llmagg(stack, "accounts", "list", key=secret).returncode == 5  # a client key is not an admin key
    revoked = json.loads(llmagg(stack, "keys", "revoke", key_id, "--json").stdout)
    assert revoked["key"]["revoked"] is True


def test_no_admin_key_and_no_gateway_have_their_exit_codes(stack, tmp_path):
    missing = llmagg(stack, "keys", "list", "--admin-key-file", str(tmp_path / "none"), key=None)
    assert missing.returncode == 2 and "LLMAGG_ADMIN_KEY" in missing.stderr
    assert llmagg(stack, "keys", "list", "--url", "http://127.0.0.1:9").returncode == 6
    assert llmagg(stack, "--url", "http://127.0.0.1:9", "keys", "list").returncode == 6  # before the command too
    assert "accounts" in json.loads(llmagg(stack, "--json", "accounts", "list").stdout)
    assert llmagg(stack, "keys", "list", key="sk-wrong-FAKE-key").returncode == 5
    file_key = tmp_path / "admin-key"
    file_key.write_text(ADMIN_KEY + "\n")
    assert llmagg(stack, "keys", "list", "--admin-key-file", str(file_key), key=None).returncode == 0


def test_configure_checks_each_key_with_the_provider_and_stores_only_accepted_ones(stack, simulator, router_config):
    simulator.reset("sim-fast")
    simulator.reset("bad-key")
    answers = "y\nsk-wizard-FAKE-good\ny\nsk-wizard-FAKE-bad\n"
    run = llmagg(
        stack, "configure", "--config", str(router_config), "--provider", "sim-fast", "--provider", "bad-key",
        "--json", stdin=answers,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    [stored] = json.loads(run.stdout)["stored"]
    assert (stored["provider"], stored["check"]) == ("sim-fast", "accepted")
    assert "bad-key rejected this key (HTTP 401); not stored" in run.stderr
    assert simulator.requests("sim-fast")[-1]["path"] == "/sim-fast/v1/models"
    assert simulator.requests("sim-fast")[-1]["headers"]["authorization"] == "Bearer sk-wizard-FAKE-good"
    aliases = {a["alias"] for a in json.loads(llmagg(stack, "accounts", "list", "--json").stdout)["accounts"]}
    assert stored["alias"] in aliases
    assert {a for a in aliases if a.startswith("bad-key")} == {"bad-key-acct", "bad-key-backup-acct"}  # none added
    assert "sk-wizard-FAKE" not in run.stdout + run.stderr
    assert llmagg(stack, "accounts", "remove", stored["alias"]).returncode == 0


def _account_states(stack, alias: str) -> set[str]:
    """What `llmagg status` says of one account, for each of its models."""
    run = llmagg(stack, "status", "--json")
    assert run.returncode == 0, run.stderr
    state = json.loads(run.stdout)
    return {
        "enabled" if account["usable"] else "disabled"
        for provider in state["providers"]
        for account in provider["accounts"]
        if account["alias"] == alias
    }


def test_an_admin_enable_after_a_401_is_a_fresh_start_for_the_router(stack, simulator):
    providers = scenario(simulator, "enable-again")
    chat = {"model": "enable-again", "messages": [{"role": "user", "content": "hi"}]}
    status, body = admin_call(stack, "POST", "/v1/chat/completions", chat)
    assert (status, body["provider"]) == (200, "enable-again-backup")
    assert arrivals(simulator, providers) == ["enable-again", "enable-again-backup"]
    assert _account_states(stack, "enable-again-acct") == {"disabled"}
    simulator.set_behaviour("enable-again", "ok")  # the operator fixed the account upstream
    enabled = llmagg(stack, "accounts", "update", "enable-again-acct", "--enable", "--json")
    assert json.loads(enabled.stdout)["account"]["enabled"] is True, enabled.stderr
    wait_for(lambda: _account_states(stack, "enable-again-acct") == {"enabled"}, "status to say enabled", 20)
    status, body = admin_call(stack, "POST", "/v1/chat/completions", chat)
    assert (status, body["provider"]) == (200, "enable-again")
    assert arrivals(simulator, providers) == ["enable-again", "enable-again-backup", "enable-again"]


def test_usage_counts_a_request_once_and_its_attempts_apart(stack, simulator):
    providers = scenario(simulator, "usage-three")
    key = create_client_key(stack, "usage counter")
    client_id = key.split("-")[2]
    chat = {"model": "usage-three", "messages": [{"role": "user", "content": "hi"}]}
    status, body = admin_call(stack, "POST", "/v1/chat/completions", chat, key=key)
    assert (status, body["provider"]) == (200, "usage-ok")
    assert arrivals(simulator, providers) == ["usage-429", "usage-500", "usage-ok"]

    def settled():
        rows = json.loads(llmagg(stack, "usage", "--client", client_id, "--json").stdout)["data"]
        return rows if rows and rows[0].get("attempts", rows[0]["requests"]) == 3 else None

    [row] = wait_for(settled, "the three attempts in the ledger")
    assert (row["requests"], row["attempts"]) == (1, 3)
    table = llmagg(stack, "usage", "--client", client_id).stdout.splitlines()
    assert table[0].split()[:2] == ["REQUESTS", "ATTEMPTS"] and table[2].split()[:2] == ["1", "3"]


def test_models_list_shows_what_can_be_routed_and_all_shows_the_whole_catalogue(stack):
    def providers(*args: str) -> set[str]:
        run = llmagg(stack, "models", "list", "--json", *args)
        assert run.returncode == 0, run.stderr
        return {model["provider"] for model in json.loads(run.stdout)["catalog"]["models"]}

    assert providers() == set(SCENARIOS)  # every scenario provider has an account; no shipped one has
    assert "groq" in providers("--all")
