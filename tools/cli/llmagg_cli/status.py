"""`llmagg status`: the router's routing state, one row per account and model, problems first."""

from __future__ import annotations

import argparse
from typing import Any

from llmagg_cli.client import AdminClient
from llmagg_cli.output import emit

HEADERS = ("PROVIDER", "ACCOUNT", "MODEL", "STATE", "LATENCY")


def _account_state(account: dict[str, Any], model: str) -> str:
    if not account["usable"]:
        return "disabled"
    for cooling in account["cooling"]:
        if cooling["model"] in (model, "*"):
            return f"cooling {cooling['remaining_s']:.0f}s"
    return "ok"


def _circuit_state(circuit: dict[str, Any]) -> str | None:
    if circuit["state"] == "closed":
        return None
    return f"circuit {circuit['state']} ({circuit['failures']} failures)"


def rows(state: dict[str, Any]) -> list[list[Any]]:
    found = []
    for provider in state["providers"]:
        endpoint_down = next(filter(None, (_circuit_state(e["circuit"]) for e in provider["endpoints"])), None)
        for model in provider["models"]:
            latency = f"{model['latency_ms']:.0f} ms" if model["latency_ms"] is not None else "-"
            model_down = endpoint_down or _circuit_state(model["circuit"])
            for account in provider["accounts"]:
                status = model_down or _account_state(account, model["model"])
                found.append([provider["provider"], account["alias"], model["model"], status, latency])
    return sorted(found, key=lambda row: (row[3] == "ok", row[0], row[1], row[2]))


def _status(client: AdminClient, args: argparse.Namespace) -> None:
    state = client.call("GET", "/v1/admin/routing")
    emit(state, args.json, rows(state), HEADERS)


def register(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    commands.add_parser(
        "status", parents=[common], help="what the router has learned: cooldowns, open circuits, latency"
    ).set_defaults(func=_status)
