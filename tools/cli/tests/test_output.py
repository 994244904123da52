"""The CLI's building blocks: tables, name=value options, where the admin key comes from."""

from __future__ import annotations

import pytest

from llmagg_cli.client import admin_key
from llmagg_cli.errors import USAGE, CliError
from llmagg_cli.output import table
from llmagg_cli.pairs import numbers, pairs


def test_a_table_aligns_columns_under_a_rule():
    assert table([["a", 1], ["longer", None]], ["NAME", "N"]) == "NAME    N\n------  -\na       1\nlonger\n"


def test_name_value_options_parse_and_refuse_junk():
    assert pairs(["team=a", "empty="], "--label") == {"team": "a", "empty": ""}
    assert numbers(["rpm=30"], "--limit") == {"rpm": 30.0}
    for bad in (["noequals"], ["=x"]):
        with pytest.raises(CliError) as caught:
            pairs(bad, "--label")
        assert caught.value.code == USAGE
    with pytest.raises(CliError):
        numbers(["rpm=fast"], "--limit")


def test_the_admin_key_comes_from_the_environment_then_the_file(tmp_path, monkeypatch):
    key_file = tmp_path / "admin-key"
    key_file.write_text("sk-test-FAKE-from-file\n")
    monkeypatch.delenv("LLMAGG_ADMIN_KEY", raising=False)
    assert admin_key(str(key_file)) == "sk-test-FAKE-from-file"
    monkeypatch.setenv("LLMAGG_ADMIN_KEY", "sk-test-FAKE-from-env")
    assert admin_key(str(key_file)) == "sk-test-FAKE-from-env"
    monkeypatch.delenv("LLMAGG_ADMIN_KEY")
    with pytest.raises(CliError) as caught:
        admin_key(str(tmp_path / "missing"))
    assert caught.value.code == USAGE
