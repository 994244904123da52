"""`llmagg agent "instruction" --project DIR`: the coding agent from the terminal (agent_terminal.py, also
installed as `llmagg-agent`). It calls the model routes, so any client key will do: LLMAGG_API_KEY, else
the admin key."""

from __future__ import annotations

import argparse
import os

from llmagg_cli import agent_terminal as terminal
from llmagg_cli.client import AdminClient
from llmagg_cli.errors import CliError


def _run(client: AdminClient, args: argparse.Namespace) -> None:
    try:
        code = terminal.run(args, os.environ.get("LLMAGG_API_KEY") or client.key)
    except terminal.CliError as error:
        raise CliError(error.message, error.code) from None
    if code != terminal.OK:
        raise CliError("the agent did not complete", code)


def register(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    agent = commands.add_parser(
        "agent", parents=[common], help="run the coding agent on a folder: progress, its questions, the code"
    )
    terminal.add_arguments(agent, common=False)
    agent.set_defaults(func=_run, needs_admin_key=False)
