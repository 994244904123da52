"""`llmagg accounts add|list|get|update|rotate|remove|import`: provider accounts in the credentials service."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

import yaml

from llmagg_cli.client import AdminClient
from llmagg_cli.errors import EXISTS, FAILED, USAGE, CliError
from llmagg_cli.output import emit
from llmagg_cli.pairs import numbers, pairs
from llmagg_cli.secrets_input import read_key

HEADERS = ("ALIAS", "PROVIDER", "ENABLED", "PRIORITY", "KEY", "SOURCE", "LABELS", "DISABLED")


def row(account: dict[str, Any]) -> list[Any]:
    labels = ",".join(f"{k}={v}" for k, v in sorted((account.get("labels") or {}).items()))
    disabled = f"{account['disabled_reason']} at {account['disabled_at']}" if not account["enabled"] else ""
    return [
        account["alias"], account["provider"], "yes" if account["enabled"] else "no", account["priority"],
        f"v{account['key_version']}", account["source"], labels, disabled,
    ]  # fmt: skip


def add_account(client: AdminClient, provider: str, alias: str, key: str, **extra: Any) -> dict[str, Any]:
    body = {"provider": provider, "alias": alias, "api_key": key, **{k: v for k, v in extra.items() if v}}
    return client.call("POST", "/v1/admin/accounts", body)["account"]


def _add(client: AdminClient, args: argparse.Namespace) -> None:
    key = "" if args.no_key else read_key(f"API key for {args.provider} (hidden): ")
    account = add_account(
        client, args.provider, args.alias or "", key,
        labels=pairs(args.label, "--label"), priority=args.priority, limits=numbers(args.limit, "--limit"),
        params=pairs(args.param, "--param"), enabled=False if args.disabled else None,
    )  # fmt: skip
    emit({"account": account}, args.json, [row(account)], HEADERS)


def _list(client: AdminClient, args: argparse.Namespace) -> None:
    accounts = client.call("GET", "/v1/admin/accounts", query={"provider": args.provider} if args.provider else None)
    emit(accounts, args.json, [row(a) for a in accounts.get("accounts", [])], HEADERS)


def _get(client: AdminClient, args: argparse.Namespace) -> None:
    account = client.call("GET", f"/v1/admin/accounts/{args.alias}")["account"]
    emit({"account": account}, args.json, [row(account)], HEADERS)


def _update(client: AdminClient, args: argparse.Namespace) -> None:
    body: dict[str, Any] = {
        "labels": pairs(args.label, "--label"),
        "limits": numbers(args.limit, "--limit"),
        "remove_limits": args.remove_limit or [],
    }
    if args.enable or args.disable:
        body["enabled"] = bool(args.enable)
    if args.priority is not None:
        body["priority"] = args.priority
    account = client.call("PATCH", f"/v1/admin/accounts/{args.alias}", body)["account"]
    emit({"account": account}, args.json, [row(account)], HEADERS)


def _rotate(client: AdminClient, args: argparse.Namespace) -> None:
    key = read_key(f"New API key for {args.alias} (hidden): ")
    account = client.call("POST", f"/v1/admin/accounts/{args.alias}/rotate", {"api_key": key})["account"]
    emit({"account": account}, args.json, [row(account)], HEADERS)


def _remove(client: AdminClient, args: argparse.Namespace) -> None:
    client.call("DELETE", f"/v1/admin/accounts/{args.alias}")
    emit({"removed": args.alias} if args.json else f"removed {args.alias}", args.json)


def _import(client: AdminClient, args: argparse.Namespace) -> None:
    """The `accounts:` of a config file (LLMAGG_CONFIG's format), keys from the variables they name."""
    try:
        entries = (yaml.safe_load(Path(args.file).read_text()) or {}).get("accounts") or []
    except (OSError, yaml.YAMLError, AttributeError) as error:
        raise CliError(f"cannot read {args.file}: {error}", USAGE) from None
    results, failed = [], 0
    for index, entry in enumerate(entries):
        provider, alias = entry.get("provider", ""), entry.get("alias") or f"{entry.get('provider')}-{index}"
        key = os.environ.get(entry.get("api_key_env") or "", "")
        try:
            add_account(
                client, provider, alias, key, params={k: str(v) for k, v in (entry.get("params") or {}).items()}
            )
            results.append({"alias": alias, "result": "added"})
        except CliError as error:
            if error.code == EXISTS:
                results.append({"alias": alias, "result": "exists, kept"})
                continue
            failed += 1
            results.append({"alias": alias, "result": f"failed: {error.message}"})
    emit({"imported": results}, args.json, [[r["alias"], r["result"]] for r in results], ("ALIAS", "RESULT"))
    if failed:
        raise CliError(f"{failed} of {len(entries)} accounts were not imported", FAILED)


def register(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    group = commands.add_parser("accounts", parents=[common], help="provider accounts and their keys").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    add = group.add_parser("add", parents=[common], help="add an account; its key is read hidden or from stdin")
    add.add_argument("provider")
    add.add_argument("--alias", help="unique name (default: <provider>-<n>)")
    add.add_argument("--label", action="append", metavar="NAME=VALUE")
    add.add_argument("--priority", type=int, default=0, help="higher is tried first among a provider's accounts")
    add.add_argument("--limit", action="append", metavar="NAME=N", help="override a registry limit (rpm=30, ...)")
    add.add_argument("--param", action="append", metavar="NAME=VALUE", help="base URL placeholder (account_id=...)")
    add.add_argument("--disabled", action="store_true", help="add it switched off")
    add.add_argument("--no-key", action="store_true", help="for providers without auth")
    add.set_defaults(func=_add)
    listing = group.add_parser("list", parents=[common], help="every account (no key material)")
    listing.add_argument("--provider")
    listing.set_defaults(func=_list)
    get = group.add_parser("get", parents=[common], help="one account")
    get.add_argument("alias")
    get.set_defaults(func=_get)
    update = group.add_parser("update", parents=[common], help="enable/disable, labels, priority, limits")
    update.add_argument("alias")
    switch = update.add_mutually_exclusive_group()
    switch.add_argument("--enable", action="store_true")
    switch.add_argument("--disable", action="store_true")
    update.add_argument("--label", action="append", metavar="NAME=VALUE", help="NAME= removes the label")
    update.add_argument("--priority", type=int)
    update.add_argument("--limit", action="append", metavar="NAME=N")
    update.add_argument("--remove-limit", action="append", metavar="NAME")
    update.set_defaults(func=_update)
    rotate = group.add_parser("rotate", parents=[common], help="replace an account's key (read hidden or from stdin)")
    rotate.add_argument("alias")
    rotate.set_defaults(func=_rotate)
    remove = group.add_parser("remove", parents=[common], help="delete an account and its key")
    remove.add_argument("alias")
    remove.set_defaults(func=_remove)
    load = group.add_parser("import", parents=[common], help="the accounts of a config file (keys from its variables)")
    load.add_argument("file")
    load.set_defaults(func=_import)
