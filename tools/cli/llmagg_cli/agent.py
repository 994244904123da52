"""`llmagg agent "instruction" --project DIR`: the coding agent from the terminal (llmagg_agent.cli, also
installed as `llmagg-agent`). It calls the model routes, so any client key will do: LLMAGG_API_KEY, else
the admin key."""

from __future__ import annotations

import argparse
import os

from llmagg_cli.client import AdminClient
from llmagg_cli.errors import CliError


def _run(client: AdminClient, args: argparse.Namespace) -> None:
    from llmagg_agent import cli  # the agent's own package: only this command needs it

    try:
        code = cli.run(args, os.environ.get("LLMAGG_API_KEY") or client.key)
    except cli.CliError as error:
        raise CliError(error.message, error.code) from None
    if code != cli.OK:
        raise CliError("the agent did not complete", code)


def register(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    from llmagg_agent.cli import add_arguments

    agent = commands.add_parser(
        "agent", parents=[common], help="run the coding agent on a folder: progress, its questions, the code"
    )
    add_arguments(agent, common=False)
    agent.set_defaults(func=_run, needs_admin_key=False)
