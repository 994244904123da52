"""The command line and SimulatorProcess: start-up on port 0, bad options, chunk delay, clean shutdown."""

from __future__ import annotations

import re
import select
import subprocess
import threading
import time

import openai
import pytest

from llmagg_devstack import LISTENING, ManagedProcess, SimulatorError, SimulatorProcess

from .helpers import HELLO, SIMULATOR_COMMAND, sdk_for


def test_port_zero_is_replaced_by_the_real_port_in_the_listening_line(sim):
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+", sim.url) and sim.port > 0
    assert sim.base_url("sim-x") == f"{sim.url}/sim-x/v1"


def test_the_listening_line_is_printed_on_its_own():
    process = ManagedProcess("sim", [*SIMULATOR_COMMAND, "--port", "0"])
    try:
        process.wait_for_line(LISTENING, 30, "its listening line")
        assert re.fullmatch(r"provider-simulator listening on http://127\.0\.0\.1:\d+\n", process.output())
    finally:
        assert process.stop() == 0


def first_line(process: subprocess.Popen, timeout_s: float) -> bytes:
    """The first line a child prints, read the moment it arrives (bounded by `timeout_s`)."""
    ready, _, _ = select.select([process.stdout], [], [], timeout_s)
    assert ready, f"no output within {timeout_s}s"
    return process.stdout.readline()


def test_a_sigterm_the_instant_the_listening_line_appears_is_a_clean_stop():
    for _ in range(10):  # the handler is installed before the line is printed, every time
        process = subprocess.Popen([*SIMULATOR_COMMAND, "--port", "0"], stdout=subprocess.PIPE)
        try:
            assert first_line(process, 30).startswith(b"provider-simulator listening on")
            process.terminate()
            assert process.wait(10) == 0
        finally:
            process.kill()
            process.wait()
            process.stdout.close()


def test_an_unknown_behaviour_on_the_command_line_is_a_usage_error():
    result = subprocess.run([*SIMULATOR_COMMAND, "--provider", "sim-x=explode"], capture_output=True, text=True)
    assert result.returncode == 2 and "explode" in result.stderr


def test_a_simulator_that_cannot_start_raises_with_its_stderr():
    with pytest.raises(SimulatorError, match=r"(?s)exited with status 2.*retry_aftr"):
        SimulatorProcess(providers={"sim-x": {"type": "429", "retry_aftr": 2}})


def test_chunk_delay_spaces_out_stream_chunks():
    with SimulatorProcess(chunk_delay_ms=40) as slow, sdk_for(slow, "p") as api:
        arrivals = [
            time.monotonic()
            for _ in api.chat.completions.create(
                model="m", messages=[{"role": "user", "content": "echo: a b c d"}], stream=True
            )
        ]
    assert len(arrivals) == 6  # role, four words, finish: five gaps of at least 40 ms
    assert arrivals[-1] - arrivals[0] >= 5 * 0.04 * 0.9


def test_the_simulator_stops_cleanly_while_a_client_is_still_waiting_on_a_hang():
    outcome: list[BaseException] = []

    def wait_on_hang(api: openai.OpenAI) -> None:
        try:
            api.chat.completions.create(model="m", messages=HELLO)
        except openai.APIError as error:
            outcome.append(error)

    with SimulatorProcess(providers={"sim-hang": "hang"}) as hanging, sdk_for(hanging, "sim-hang", timeout=30) as api:
        waiter = threading.Thread(target=wait_on_hang, args=(api,))
        waiter.start()
        hanging.wait_until(lambda: hanging.requests("sim-hang"), 30, "the request to hang on")
        hanging.stop()
        waiter.join(5)
    assert hanging.returncode == 0
    assert len(outcome) == 1 and isinstance(outcome[0], openai.APIConnectionError)


def test_requests_are_logged_only_when_access_log_is_asked_for(sim):
    process = ManagedProcess("sim", [*SIMULATOR_COMMAND, "--port", "0", "--access-log"])
    try:
        url = process.wait_for_line(LISTENING, 30, "its listening line").group(1)
        with openai.OpenAI(base_url=f"{url}/logged/v1", api_key="sk-sim-FAKE", max_retries=0, timeout=5) as api:
            api.models.list()
        process.wait_until(lambda: "GET /logged/v1/models" in process.output(), 30, "the access log line")
    finally:
        process.stop()
    assert "/v1/models" not in sim.output()  # the default simulator keeps quiet
