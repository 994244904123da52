"""`llmagg`'s global options: before or after the subcommand, the same."""

import pytest

from llmagg_cli.main import parser


@pytest.mark.parametrize(
    "argv",
    [
        ["--url", "http://gw:1", "--json", "accounts", "list"],
        ["accounts", "--url", "http://gw:1", "list", "--json"],
        ["accounts", "list", "--url", "http://gw:1", "--json"],
    ],
)
def test_global_options_count_wherever_they_are(argv):
    args = parser().parse_args(argv)
    assert (args.url, args.json, args.command) == ("http://gw:1", True, "accounts")


def test_without_global_options_the_defaults_hold(monkeypatch):
    monkeypatch.setenv("LLMAGG_URL", "http://from-env:2")
    args = parser().parse_args(["status"])
    assert (args.url, args.json, args.admin_key_file) == ("http://from-env:2", False, None)


def test_the_option_nearest_the_command_wins():
    args = parser().parse_args(["--url", "http://outer:1", "keys", "list", "--url", "http://inner:2"])
    assert args.url == "http://inner:2"
