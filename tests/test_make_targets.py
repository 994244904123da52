"""The Makefile's test layers: each runs its own folder of the tree alone."""

from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _recipe(target: str) -> list[str]:
    """The commands `make <target>` would run (printed, not run)."""
    done = subprocess.run(
        ["make", "--no-print-directory", "-n", target],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return [line for line in done.stdout.splitlines() if "pytest" in line]


def test_make_test_chaos_runs_the_chaos_suite_alone():
    assert _recipe("test-chaos") == [".venv/bin/python -m pytest tests/chaos"]
