"""`llmagg`: the entry point. Each command group (accounts, keys, configure, ...) is a module with a
`register(commands, common)`; adding one is a module and a line in GROUPS."""

from __future__ import annotations

import argparse
import os
import sys

from llmagg_cli import accounts, agent, configure, keys, models, status, usage
from llmagg_cli.client import DEFAULT_URL, AdminClient, admin_key
from llmagg_cli.errors import OK, CliError

GROUPS = (accounts, keys, configure, status, models, usage, agent)


def _global_options(defaults: bool) -> argparse.ArgumentParser:
    """The options every command takes, before or after the command's name. Only the top level has their
    defaults; a command's copies have none (SUPPRESS), so they replace a value only when given there."""

    def default(value):
        return value if defaults else argparse.SUPPRESS

    options = argparse.ArgumentParser(add_help=False)
    options.add_argument(
        "--url", default=default(os.environ.get("LLMAGG_URL", DEFAULT_URL)), help="the gateway (LLMAGG_URL)"
    )
    options.add_argument(
        "--admin-key-file",
        default=default(None),
        help="file holding the admin key (default: LLMAGG_ADMIN_KEY, .run/admin-key)",
    )
    options.add_argument("--json", action="store_true", default=default(False), help="machine-readable output")
    return options


def parser() -> argparse.ArgumentParser:
    common = _global_options(defaults=False)
    root = argparse.ArgumentParser(
        prog="llmagg",
        parents=[_global_options(defaults=True)],
        description="Manage an llm-aggregator gateway: provider accounts, client keys, the routing state, the model "
        "catalogue, usage. Exit codes: 0 ok, "
        "1 refused, 2 usage, 3 not found, 4 already exists, 5 not allowed, 6 unreachable. The options --url, "
        "--admin-key-file and --json go before or after the command.",
    )
    commands = root.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for group in GROUPS:
        group.register(commands, common)
    return root


def _key(args: argparse.Namespace) -> str:
    """The admin key; a command that does without (needs_admin_key=False) gets "" when there is none."""
    try:
        return admin_key(args.admin_key_file)
    except CliError:
        if getattr(args, "needs_admin_key", True):
            raise
        return ""


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        client = AdminClient(args.url, _key(args))
        args.func(client, args)
    except CliError as error:
        sys.stderr.write(f"llmagg: {error.message}\n")
        return error.code
    except KeyboardInterrupt:
        return 130
    return OK


if __name__ == "__main__":
    sys.exit(main())
