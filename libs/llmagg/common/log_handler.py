"""The services' log handler: a request's lines are written after its answer.

A line made on a running event loop waits for the end of the loop's current step: the step that finished a
request writes its answer to the socket, then the line is formatted and written. Lines that waited for one
step go out in one write. What a line says is taken when it is made (its context: request, client and trace
ids) and only its formatting waits, so a line is deferred only when its values cannot change meanwhile
(text, numbers, None). Warnings and errors, lines with an exception, lines made off the loop (other
threads, before it runs, at exit) are written at once, after any line waiting before them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TextIO

from llmagg.common.running_loop import running_loop

_FIXED = frozenset({str, int, float, bool, type(None)})


def _fixed(record: logging.LogRecord) -> bool:
    """Formatting the record later gives the same line: its message, arguments and fields are immutable."""
    if type(record.msg) is not str:
        return False
    args = record.args
    if args:
        values = args.values() if isinstance(args, dict) else args
        for value in values:
            if type(value) not in _FIXED:
                return False
    fields = getattr(record, "fields", None)
    if fields:
        for value in fields.values():
            if type(value) not in _FIXED:
                return False
    return True


class LoopStepHandler(logging.StreamHandler[TextIO]):
    def __init__(self, stream: TextIO, capture: Callable[[logging.LogRecord], None]) -> None:
        """`capture(record)` keeps on a record what its formatting reads of the moment (context variables)."""
        super().__init__(stream)
        self._capture = capture
        self._waiting: list[logging.LogRecord] = []
        self._scheduled_on: asyncio.AbstractEventLoop | None = None  # the loop that will write them

    def emit(self, record: logging.LogRecord) -> None:  # called with the handler's lock held
        self._capture(record)
        if record.levelno < logging.WARNING and not record.exc_info and _fixed(record):
            try:
                loop = running_loop()
            except RuntimeError:
                loop = None
            if loop is not None:
                self._waiting.append(record)
                if self._scheduled_on is not loop:  # none yet, or on a loop that ended before writing
                    self._scheduled_on = loop
                    loop.call_soon(self._write_waiting)
                return
        self._write([*self._take(), record])

    def flush(self) -> None:
        with self.lock:  # type: ignore[union-attr]  # made by Handler.__init__
            self._write(self._take())
        super().flush()

    def _write_waiting(self) -> None:
        with self.lock:  # type: ignore[union-attr]
            self._scheduled_on = None
            self._write(self._take())

    def _take(self) -> list[logging.LogRecord]:
        waiting, self._waiting = self._waiting, []
        return waiting

    def _write(self, records: list[logging.LogRecord]) -> None:
        if not records:
            return
        lines = []
        for record in records:
            try:
                lines.append(self.format(record) + self.terminator)
            except Exception:
                self.handleError(record)
        try:
            self.stream.write("".join(lines))
            self.stream.flush()
        except Exception:
            self.handleError(records[-1])
