"""As root, PostgreSQL runs as another user who must reach its files. A test's run directory sits under
pytest's top folder, which every pytest start makes private again (mode 0700): with its files there,
a second test run starting at the same moment made initdb fail ("returned non-zero exit status 1")."""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

import psycopg
import pytest

from llmagg_devstack import free_port, start_postgres

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="only root runs PostgreSQL as another user")


def test_a_run_directory_under_a_private_folder_keeps_postgres_files_outside_it(tmp_path):
    private = tmp_path / "private"
    run_dir = private / "run"
    run_dir.mkdir(parents=True)
    private.chmod(0o700)
    postgres = start_postgres(run_dir, free_port())
    try:
        private.chmod(0o700)  # what another pytest starting now does to its top folder
        state = (run_dir / "postgres").resolve()
        assert not state.is_relative_to(tmp_path.resolve())
        assert state.is_relative_to(Path(tempfile.gettempdir()).resolve())
        assert stat.S_IMODE(private.stat().st_mode) == 0o700
        with psycopg.connect(postgres.dsn()) as connection:  # the server still reaches its files
            assert connection.execute("SELECT 1").fetchone() == (1,)
    finally:
        postgres.process.stop()
