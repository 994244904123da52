"""Show what the services log on the terminal of `make run`, as it is written."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path


class LogFollower:
    """Reads the lines added to some log files since the last call."""

    def __init__(self, paths: Iterable[Path]) -> None:
        self._offsets = {path: 0 for path in paths}
        self._partial = {path: b"" for path in self._offsets}

    def new_lines(self) -> list[str]:
        lines: list[str] = []
        for path, offset in self._offsets.items():
            try:
                with open(path, "rb") as log:
                    log.seek(offset)
                    data = log.read()
            except OSError:
                continue
            self._offsets[path] = offset + len(data)
            *whole, self._partial[path] = (self._partial[path] + data).split(b"\n")
            lines += [line.decode(errors="replace") for line in whole if line]
        return lines
