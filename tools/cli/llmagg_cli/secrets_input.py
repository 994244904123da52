"""Reading keys without echoing them: hidden input at a terminal, one line from stdin in scripts."""

from __future__ import annotations

import getpass
import sys

from llmagg_cli.errors import USAGE, CliError


def read_key(prompt: str) -> str:
    if sys.stdin.isatty():
        key = getpass.getpass(prompt)
    else:
        key = sys.stdin.readline()
    key = key.strip()
    if not key:
        raise CliError("no key given (type it at the prompt, or pipe it on stdin)", USAGE)
    return key


def ask(prompt: str, default: str = "") -> str:
    """A visible answer; at the end of stdin, the default."""
    sys.stderr.write(prompt)
    sys.stderr.flush()
    line = sys.stdin.readline()
    return line.strip() or default
