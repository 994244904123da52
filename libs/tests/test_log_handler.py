"""The services' log handler writes a line made on the loop after the loop's step (after the answer the
step wrote), lines of one step in one write, and everything else at once, in the order made."""

from __future__ import annotations

import asyncio
import json
import logging

import pytest

from llmagg.common.log_handler import LoopStepHandler
from llmagg.common.logging import JsonFormatter, capture_context, log_fields, request_id


class Stream:
    """A stream that keeps each write apart."""

    def __init__(self) -> None:
        self.writes: list[str] = []

    def write(self, text: str) -> None:
        self.writes.append(text)

    def flush(self) -> None:
        pass

    def lines(self) -> list[dict[str, object]]:
        return [json.loads(line) for text in self.writes for line in text.splitlines()]


@pytest.fixture
def logged():
    stream = Stream()
    handler = LoopStepHandler(stream, capture_context)  # type: ignore[arg-type]
    handler.setFormatter(JsonFormatter("router"))
    log = logging.getLogger("test_log_handler")
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False
    yield log, stream
    log.removeHandler(handler)


async def test_a_steps_lines_are_written_after_it_in_one_write_with_their_own_context(logged):
    log, stream = logged
    for n in range(3):
        token = request_id.set(f"r{n}")
        log.info("served %s in %d ms", "sim-small", n, extra=log_fields(provider="sim", attempts=1))
        request_id.reset(token)
    stream.write("the answer\n")  # what the step writes after its lines were made
    assert stream.writes == ["the answer\n"]
    await asyncio.sleep(0)
    assert stream.writes[0] == "the answer\n" and len(stream.writes) == 2
    lines = [json.loads(line) for line in stream.writes[1].splitlines()]
    assert [(line["msg"], line["request_id"], line["provider"]) for line in lines] == [
        ("served sim-small in 0 ms", "r0", "sim"),
        ("served sim-small in 1 ms", "r1", "sim"),
        ("served sim-small in 2 ms", "r2", "sim"),
    ]


async def test_warnings_and_lines_with_changeable_values_go_at_once_after_those_waiting(logged):
    log, stream = logged
    log.info("first")
    log.info("a list %s", [1, 2])  # formatted later it could say something else: written now
    log.info("second", extra=log_fields(detail={"nested": 1}))
    log.warning("third")
    try:
        raise ValueError("boom")
    except ValueError:
        log.info("fourth", exc_info=True)
    assert [line["msg"] for line in stream.lines()] == ["first", "a list [1, 2]", "second", "third", "fourth"]
    assert len(stream.writes) == 4
    await asyncio.sleep(0)
    assert len(stream.writes) == 4


def test_lines_made_off_the_loop_are_written_at_once(logged):
    log, stream = logged
    log.info("before any loop")
    assert [line["msg"] for line in stream.lines()] == ["before any loop"]


def test_lines_left_by_a_loop_that_ended_are_written_by_a_flush_and_the_next_loop_writes_its_own(logged):
    log, stream = logged
    handler = log.handlers[0]

    loop = asyncio.new_event_loop()

    def leave_a_line() -> None:
        log.info("left")
        loop.stop()  # after this step: the line's writing is not reached

    loop.call_soon(leave_a_line)
    loop.run_forever()
    loop.close()
    assert stream.writes == []
    handler.flush()  # logging.shutdown() at exit
    assert [line["msg"] for line in stream.lines()] == ["left"]

    async def next_loop() -> None:
        log.info("next")
        await asyncio.sleep(0)

    asyncio.run(next_loop())
    assert [line["msg"] for line in stream.lines()] == ["left", "next"]


async def test_a_line_from_another_thread_goes_at_once_after_the_lines_waiting_before_it(logged):
    log, stream = logged
    log.info("on the loop")
    await asyncio.to_thread(log.info, "from a thread")
    assert [line["msg"] for line in stream.lines()] == ["on the loop", "from a thread"]


async def test_the_trace_a_line_was_made_in_is_the_one_it_names(logged):
    from opentelemetry.sdk.trace import TracerProvider

    log, stream = logged
    with TracerProvider().get_tracer("test").start_as_current_span("request") as span:
        log.info("inside the span")
        made_in = span.get_span_context()
    await asyncio.sleep(0)  # written outside the span
    [line] = stream.lines()
    assert (line["trace_id"], line["span_id"]) == (format(made_in.trace_id, "032x"), format(made_in.span_id, "016x"))
