"""The routing benchmark's seeded runs: the meta-controller learns the best model per task profile,
which static `auto` never does. Exact outcomes: the runs are deterministic (seeded RNGs, a fake clock)."""

from __future__ import annotations

from collections import Counter

import pytest

from bench.png_plot import line_chart
from bench.routing import PROFILES, bench, check, oracle_model, table


@pytest.fixture(scope="module")
async def runs():
    return await bench(600, seed=22)  # what docs/routing.md reports


def served(run, profile, last=None):
    models = [m for p, m, _ in run.outcomes if p == profile]
    return Counter(models[-last:] if last else models)


async def test_static_auto_sends_every_task_to_the_top_tier_model(runs):
    """Static `auto` tries the top tier first on every task; the others serve only when it fails."""
    assert {p: served(runs["static"], p) for p in PROFILES} == {
        "math": {"generalist": 197, "jsonsmith": 12, "coder": 1},
        "json": {"generalist": 185, "jsonsmith": 11, "coder": 1},
        "code": {"generalist": 182, "coder": 2, "jsonsmith": 9},
    }


async def test_the_meta_controller_settles_on_each_profiles_best_model(runs):
    meta = runs["meta"]
    assert {p: oracle_model(p) for p in PROFILES} == {"math": "mathlete", "json": "jsonsmith", "code": "coder"}
    assert {p: meta.settled_after(p) for p in PROFILES} == {"math": 39, "json": 179, "code": 96}
    assert {p: served(meta, p, last=20) for p in PROFILES} == {
        "math": {"mathlete": 20},
        "json": {"jsonsmith": 16, "generalist": 3, "coder": 1},  # jsonsmith fails 1 in 10: fallbacks serve
        "code": {"coder": 20},
    }


async def test_accuracy_of_static_auto_the_meta_controller_the_oracle_and_a_vote_of_all(runs):
    accuracy = {name: round(run.accuracy(), 3) for name, run in runs.items()}
    assert accuracy == {"static": 0.682, "meta": 0.852, "oracle": 0.935, "ensemble": 0.875}


def test_the_answers_are_checked_against_known_results():
    assert check("math", 42, "42") and not check("math", 42, "43")
    assert check("json", "Ada", '{"name": "Ada", "born": 1815}') and not check("json", "Ada", "Ada was born")
    assert check("code", 3, "def top(xs):\n    return sorted(xs, reverse=True)[:3]")
    assert not check("code", 3, "def top(xs):\n    return sorted(xs, reverse=True)[:2]")


async def test_the_report_has_a_table_and_a_png(runs, tmp_path):
    report = table(runs)
    assert report.splitlines()[0].startswith("| profile | best model | static auto | meta-controller | oracle |")
    path = tmp_path / "routing.png"
    line_chart(path, [run.running_accuracy() for run in runs.values()])
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
