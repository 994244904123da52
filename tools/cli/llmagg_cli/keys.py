"""`llmagg keys create|list|revoke`: client API keys (the gateway checks them on every request)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from llmagg_cli.client import AdminClient
from llmagg_cli.output import emit

HEADERS = ("ID", "NAME", "SCOPE", "CREATED", "REVOKED")


def row(key: dict[str, Any]) -> list[Any]:
    return [key["id"], key["name"], key["scope"], key["created_at"], key["revoked_at"] if key["revoked"] else ""]


def _create(client: AdminClient, args: argparse.Namespace) -> None:
    created = client.call("POST", "/v1/admin/keys", {"name": args.name or "", "scope": args.scope})
    if args.json:
        emit(created, True)
        return
    sys.stdout.write(created["secret"] + "\n")
    sys.stderr.write(
        f"Created {created['key']['scope']} key {created['key']['id']}: the line above is its secret, shown this once.\n"
        "Clients send it as `Authorization: Bearer <secret>` (the openai SDK's api_key).\n"
    )


def _list(client: AdminClient, args: argparse.Namespace) -> None:
    listed = client.call("GET", "/v1/admin/keys")
    emit(listed, args.json, [row(k) for k in listed.get("keys", [])], HEADERS)


def _revoke(client: AdminClient, args: argparse.Namespace) -> None:
    revoked = client.call("DELETE", f"/v1/admin/keys/{args.id}")["key"]
    emit({"key": revoked}, args.json, [row(revoked)], HEADERS)


def register(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    group = commands.add_parser("keys", parents=[common], help="client API keys").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    create = group.add_parser("create", parents=[common], help="a new key; its secret is printed once on stdout")
    create.add_argument("--name", help="what it is for")
    create.add_argument("--scope", choices=["client", "admin"], default="client")
    create.set_defaults(func=_create)
    group.add_parser("list", parents=[common], help="every key (never a secret)").set_defaults(func=_list)
    revoke = group.add_parser("revoke", parents=[common], help="refuse a key from now on")
    revoke.add_argument("id")
    revoke.set_defaults(func=_revoke)
