"""The command line and SimulatorProcess: start-up on port 0, bad options, chunk delay, clean shutdown."""

from __future__ import annotations

import re
import subprocess
import threading
import time

import openai
import pytest

from llmagg_devstack.simulator import SimulatorError, SimulatorProcess

from .helpers import HELLO, SIMULATOR_COMMAND, sdk_for


def test_port_zero_is_replaced_by_the_real_port_in_the_listening_line(sim):
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+", sim.url) and sim.port > 0
    assert sim.base_url("sim-x") == f"{sim.url}/sim-x/v1"


def test_the_listening_line_is_printed_on_its_own():
    process = subprocess.Popen([*SIMULATOR_COMMAND, "--port", "0"], stdout=subprocess.PIPE, text=True)
    try:
        line = process.stdout.readline()
        assert re.fullmatch(r"provider-simulator listening on http://127\.0\.0\.1:\d+\n", line)
    finally:
        process.terminate()
        assert process.wait(5) == 0
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
        while not hanging.requests("sim-hang"):
            time.sleep(0.02)
        hanging.stop()
        waiter.join(5)
    assert hanging.returncode == 0
    assert len(outcome) == 1 and isinstance(outcome[0], openai.APIConnectionError)


def test_requests_are_logged_only_when_access_log_is_asked_for(sim):
    argv = [*SIMULATOR_COMMAND, "--port", "0", "--access-log"]
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        url = re.search(r"http://\S+", process.stdout.readline()).group(0)
        with openai.OpenAI(base_url=f"{url}/logged/v1", api_key="sk-sim-FAKE", max_retries=0, timeout=5) as api:
            api.models.list()
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=5)
    assert "GET /logged/v1/models" in stderr
    assert "/v1/models" not in sim.output()  # the default simulator keeps quiet
