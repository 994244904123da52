"""`llmagg models list|changes|refresh`: the discovery service's catalogue, its history, a refresh now."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from llmagg_cli.client import AdminClient
from llmagg_cli.output import emit

MODEL_HEADERS = ("PROVIDER", "MODEL", "STATE", "FREE", "CONTEXT", "QUALITY", "LIMITS", "EXPIRES")
CHANGE_HEADERS = ("WHEN", "KIND", "PROVIDER", "MODEL", "SOURCE", "DETAIL")
SOURCE_HEADERS = ("SOURCE", "LAST SUCCESS", "FAILURES", "NEXT RUN", "LAST ERROR")


def _short(enum_value: str, prefix: str) -> str:
    return enum_value.removeprefix(prefix).lower()


def _limits(limits: dict[str, Any]) -> str:
    return ",".join(f"{name}={float(value):g}" for name, value in sorted(limits.items())) or "-"


def model_row(model: dict[str, Any]) -> list[Any]:
    state = _short(model["state"], "MODEL_STATE_")
    return [
        model["provider"],
        model["model"],
        state,
        "yes" if model["free"] else "no",
        int(model["context_length"]) or "-",
        model["quality"],
        _limits(model.get("limits") or {}),
        model.get("expiration_date") or "-",
    ]


def change_row(change: dict[str, Any]) -> list[Any]:
    return [
        change["at"],
        _short(change["kind"], "CHANGE_KIND_"),
        change["provider"],
        change["model"] or "-",
        change["source"],
        change["detail"],
    ]


_ERROR_WIDTH = 100  # the table shows the start of an error; --json has all of it


def source_row(source: dict[str, Any]) -> list[Any]:
    error = source["last_error"] or ""
    return [
        source["name"],
        source["last_success_at"] or "never",
        source["consecutive_failures"],
        source["next_run_at"] or "-",
        error if len(error) <= _ERROR_WIDTH else error[: _ERROR_WIDTH - 3] + "...",
    ]


def _list(client: AdminClient, args: argparse.Namespace) -> None:
    """What the router can route to (a provider with an account, a model in use), or with --all the whole
    catalogue, retired models included."""
    query = {"provider": args.provider or "", "free_only": "true" if args.free else "false"}
    query["include_retired"] = "true" if args.all else "false"
    answer = client.call("GET", "/v1/admin/discovery/catalog", query=query)
    models = answer["catalog"]["models"]
    if not args.all:
        routable = {model["id"] for model in client.call("GET", "/v1/models").get("data", [])}
        models[:] = [m for m in models if f"{m['provider']}/{m['model']}" in routable]
        if not models:
            sys.stderr.write(
                "llmagg: no model can be routed yet: add a provider account (llmagg accounts add <provider>, "
                "llmagg configure); --all lists the whole catalogue\n"
            )
    emit(answer, args.json, [model_row(m) for m in models], MODEL_HEADERS)


def _changes(client: AdminClient, args: argparse.Namespace) -> None:
    query = {"since": args.since, "provider": args.provider or "", "limit": str(args.limit)}
    answer = client.call("GET", "/v1/admin/discovery/changes", query=query)
    emit(answer, args.json, [change_row(c) for c in answer.get("changes", [])], CHANGE_HEADERS)


def _refresh(client: AdminClient, args: argparse.Namespace) -> None:
    answer = client.call("POST", "/v1/admin/discovery/refresh", {"sources": args.source or []})
    if args.json:
        emit(answer, True)
        return
    changes = answer.get("changes", [])
    sys.stdout.write(f"catalogue revision {answer['revision']}: {len(changes)} changes\n")
    if changes:
        emit(answer, False, [change_row(c) for c in changes], CHANGE_HEADERS)
    emit(answer, False, [source_row(s) for s in answer.get("sources", [])], SOURCE_HEADERS)


def register(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    group = commands.add_parser(
        "models", parents=[common], help="the catalogue of providers and models (discovery)"
    ).add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = group.add_parser(
        "list", parents=[common], help="the models you can route to: state, free, context, limits (--all: every one)"
    )
    listing.add_argument("--free", action="store_true", help="free models only")
    listing.add_argument("--provider", help="one provider's models")
    listing.add_argument(
        "--all", action="store_true", help="the whole catalogue: providers without an account, retired models too"
    )
    listing.set_defaults(func=_list)
    changes = group.add_parser("changes", parents=[common], help="what changed: added, retired, limits, pricing")
    changes.add_argument("--since", default="7d", help="a span back from now (30m, 24h, 7d) or an RFC 3339 time")
    changes.add_argument("--provider", help="one provider's changes")
    changes.add_argument("--limit", type=int, default=1000, help="at most this many, newest first")
    changes.set_defaults(func=_changes)
    refresh = group.add_parser("refresh", parents=[common], help="run the sources now, print what changed")
    refresh.add_argument(
        "--source",
        action="append",
        help="only this source (repeatable): registry, config, community, models, accounts, probe",
    )
    refresh.set_defaults(func=_refresh)
