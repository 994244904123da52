"""`llmagg usage`: the usage ledger as a table (GET /v1/usage): requests answered, attempts (fallbacks
included), tokens, latency and what free use saved, per time bucket and per provider, account, model,
client or outcome."""

from __future__ import annotations

import argparse
import datetime
import re
from typing import Any

from llmagg_cli.client import AdminClient
from llmagg_cli.errors import USAGE, CliError
from llmagg_cli.output import emit

DIMENSIONS = ("provider", "account", "model", "client_id", "outcome")
_AGO = re.compile(r"^(\d+)([hdw])$")
_UNIT_S = {"h": 3600, "d": 86400, "w": 7 * 86400}


def since(text: str, now: datetime.datetime | None = None) -> str:
    """`7d`, `24h`, `2w` before now, or a date / RFC 3339 time as given."""
    match = _AGO.match(text.strip())
    if not match:
        return text
    now = now or datetime.datetime.now(datetime.UTC)
    start = now - datetime.timedelta(seconds=int(match.group(1)) * _UNIT_S[match.group(2)])
    return start.isoformat(timespec="seconds").replace("+00:00", "Z")


def _dimensions(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    names = ["client_id" if name == "client" else name for name in names]
    unknown = [name for name in names if name not in DIMENSIONS]
    if unknown:
        raise CliError(f"--by takes {', '.join(DIMENSIONS)} (comma-separated); not {', '.join(unknown)}", USAGE)
    return names


def rows(data: list[dict[str, Any]], bucket: str, by: list[str]) -> tuple[list[list[Any]], list[str]]:
    headers = (["BUCKET"] if bucket else []) + [d.upper().replace("_ID", "") for d in by]
    headers += ["REQUESTS", "ATTEMPTS", "PROMPT", "COMPLETION", "TOTAL", "AVG MS", "SAVED USD"]
    table: list[list[Any]] = []
    totals = [0, 0, 0, 0, 0, 0.0]
    for row in data:
        numbers = [int(row["requests"]), int(row.get("attempts", 0)), int(row["prompt_tokens"])]
        numbers += [int(row["completion_tokens"]), numbers[2] + int(row["completion_tokens"])]
        cost = float(row["cost_avoided_usd"])
        table.append(
            ([row["bucket_start"][: 16 if bucket == "hour" else 10]] if bucket else [])
            + [row[d] or "-" for d in by]
            + [f"{n:,}" for n in numbers]
            + [f"{float(row['latency_ms_avg']):.0f}", f"{cost:.4f}"]
        )
        totals = [t + n for t, n in zip(totals, [*numbers, cost], strict=True)]
    if len(table) > 1:
        blanks = [""] * (len(headers) - 7)
        if blanks:
            blanks[0] = "TOTAL"
        table.append(blanks + [f"{n:,}" for n in totals[:5]] + ["", f"{totals[5]:.4f}"])
    return table, headers


def _usage(client: AdminClient, args: argparse.Namespace) -> None:
    by = _dimensions(args.by) if args.by else []
    query = {"start": since(args.since), "bucket": args.bucket or ""}
    if args.until:
        query["end"] = args.until
    for name in ("provider", "account", "model"):
        if getattr(args, name):
            query[name] = getattr(args, name)
    if args.client:
        query["client_id"] = args.client
    if by:
        query["group_by"] = ",".join(by)
    answer = client.call("GET", "/v1/usage", query={k: v for k, v in query.items() if v})
    table, headers = rows(answer.get("data", []), args.bucket or "", by)
    emit(answer, args.json, table, headers)


def register(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    command = commands.add_parser(
        "usage",
        parents=[common],
        help="requests answered, attempts, tokens and what free use saved, from the usage ledger",
        description="An admin key sees every client's usage; a client key (LLMAGG_ADMIN_KEY=<client key>) its own.",
    )
    command.add_argument("--since", default="24h", help="7d, 24h, 2w or a date/time (default 24h)")
    command.add_argument("--until", help="a date/time (default now)")
    command.add_argument("--bucket", choices=["hour", "day", "month"], help="one row per bucket")
    command.add_argument("--by", help=f"group by any of {', '.join(DIMENSIONS)} (comma-separated)")
    command.add_argument("--provider")
    command.add_argument("--account")
    command.add_argument("--model")
    command.add_argument("--client", help="one client key id (admin only)")
    command.set_defaults(func=_usage)
