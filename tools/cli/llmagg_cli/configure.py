"""`llmagg configure`: a wizard through the providers that asks for keys (hidden), checks each with one
cheap call to the provider (its model list) and stores the ones it accepts."""

from __future__ import annotations

import argparse
import os
import sys
import urllib.error
import urllib.request
from pathlib import Path

import yaml

from llmagg.registry import Provider, RegistryError, fill_placeholders, merge_providers, registry_entries
from llmagg_cli.accounts import add_account
from llmagg_cli.client import AdminClient
from llmagg_cli.errors import USAGE, CliError
from llmagg_cli.output import emit
from llmagg_cli.secrets_input import ask, read_key

ACCEPTED, REJECTED, UNCHECKED = "accepted", "rejected", "unchecked"


def catalogue(config: str | None) -> dict[str, Provider]:
    """The shipped registry plus the providers of the user's config file."""
    user = {}
    if config:
        try:
            user = yaml.safe_load(Path(config).read_text()) or {}
        except (OSError, yaml.YAMLError) as error:
            raise CliError(f"cannot read {config}: {error}", USAGE) from None
    return merge_providers(registry_entries(), user.get("providers") or [])


def auth_headers(provider: Provider, key: str) -> dict[str, str]:
    style = provider.auth
    if style == "bearer":
        return {"Authorization": f"Bearer {key}"}
    if style == "token":
        return {"Authorization": f"Token {key}"}
    if style in ("x-api-key", "x-goog-api-key"):
        return {style: key}
    return {}


def check_key(provider: Provider, base_url: str, key: str, timeout_s: float = 10.0) -> tuple[str, str]:
    """One GET of the provider's model list: (accepted | rejected | unchecked, why). The key is never shown."""
    request = urllib.request.Request(f"{base_url.rstrip('/')}/models", headers=auth_headers(provider, key))
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            return (ACCEPTED, f"HTTP {response.status}")
    except urllib.error.HTTPError as error:
        return (REJECTED if error.code in (401, 403) else UNCHECKED, f"HTTP {error.code}")
    except (urllib.error.URLError, OSError) as error:
        return (UNCHECKED, f"{type(error).__name__}")


def _configure(client: AdminClient, args: argparse.Namespace) -> None:
    providers = catalogue(args.config)
    unknown = [p for p in args.provider or () if p not in providers]
    if unknown:
        raise CliError(f"unknown providers {unknown}; known: {', '.join(sorted(providers))}", USAGE)
    have = {a["provider"] for a in client.call("GET", "/v1/admin/accounts").get("accounts", [])}
    chosen = [providers[p] for p in args.provider] if args.provider else [
        p for p in sorted(providers.values(), key=lambda p: (p.tier != "free", p.id)) if p.auth != "none"
    ]  # fmt: skip
    say = sys.stderr.write
    say("For each provider: y to add an account, Enter to skip, q to stop. Keys are not echoed.\n")
    stored = []
    for provider in chosen:
        note = ", you have an account" if provider.id in have else ""
        answer = ask(f"{provider.name} [{provider.id}, {provider.tier}{note}] add an account? [y/N/q] ").lower()
        if answer == "q":
            break
        if answer != "y":
            continue
        params = {name: ask(f"  {name}: ") for name in provider.placeholders}
        try:
            base_url = fill_placeholders(provider.base_url, params, provider.id)
        except RegistryError as error:
            say(f"  skipped: {error}\n")
            continue
        key = read_key(f"  API key for {provider.id} (hidden): ")
        verdict, why = (UNCHECKED, "not checked (--no-check)") if args.no_check else check_key(provider, base_url, key)
        if verdict == REJECTED:
            say(f"  {provider.id} rejected this key ({why}); not stored.\n")
            continue
        if verdict == UNCHECKED:
            say(f"  could not check the key ({why}); storing it anyway.\n")
        account = add_account(client, provider.id, "", key, params=params)
        say(f"  stored as {account['alias']} (key {verdict}).\n")
        stored.append({"alias": account["alias"], "provider": provider.id, "check": verdict})
    emit({"stored": stored}, args.json, [[s["alias"], s["provider"], s["check"]] for s in stored],
         ("ALIAS", "PROVIDER", "KEY CHECK"))  # fmt: skip


def register(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    configure = commands.add_parser("configure", parents=[common], help="add accounts provider by provider")
    configure.add_argument("--provider", action="append", help="only these providers (repeatable)")
    configure.add_argument("--config", default=os.environ.get("LLMAGG_CONFIG"), help="also offer its providers")
    configure.add_argument("--no-check", action="store_true", help="store keys without the check call")
    configure.set_defaults(func=_configure)
