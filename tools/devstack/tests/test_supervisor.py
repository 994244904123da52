"""The supervisor of make run's children: when it restarts one, what it says, and its back-off."""

from __future__ import annotations

from pathlib import Path

from llmagg_devstack.supervisor import CRASH_LOOP, MAX_DELAY_S, STABLE_S, Supervisor


class FakeProcess:
    def __init__(self, name: str) -> None:
        self.name = name
        self.returncode: int | None = None
        self.starts = 1
        self.log_path = Path(f"/run/{name}.log")

    def restart(self) -> None:
        self.returncode = None
        self.starts += 1

    def stop_now(self) -> None:
        self.returncode = -15

    def log_tail(self, lines: int = 40) -> str:
        return "Traceback: the reason it fails"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def supervised(ready=lambda: True) -> tuple[Supervisor, FakeProcess, Clock, list[str]]:
    said: list[str] = []
    clock = Clock()
    supervisor = Supervisor(said.append, clock=clock)
    process = FakeProcess("router")
    supervisor.watch(process, ready)  # type: ignore[arg-type]
    return supervisor, process, clock, said


def crash(supervisor: Supervisor, process: FakeProcess, clock: Clock, returncode: int = -9) -> None:
    """It exits; the supervisor sees it, waits its back-off, restarts it and finds it ready."""
    process.returncode = returncode
    supervisor.tick()
    supervisor.tick()  # nothing happens before the back-off is over
    clock.now += MAX_DELAY_S
    supervisor.tick()  # restarted
    supervisor.tick()  # found ready


def test_a_killed_child_is_restarted_after_a_second_and_said_back_once_ready():
    ready = [False]
    supervisor, process, clock, said = supervised(lambda: ready[0])
    supervisor.tick()
    assert said == [] and process.starts == 1
    process.returncode = -9
    supervisor.tick()
    assert said == ["router exited (signal 9); restarting in 1 s"]
    clock.now += 0.9
    supervisor.tick()
    assert process.starts == 1
    clock.now += 0.1
    supervisor.tick()
    assert process.starts == 2 and said == ["router exited (signal 9); restarting in 1 s"]
    supervisor.tick()
    assert said[-1] == "router exited (signal 9); restarting in 1 s"  # not ready yet
    ready[0] = True
    supervisor.tick()
    supervisor.tick()
    assert said == ["router exited (signal 9); restarting in 1 s", "router is back"]


def test_the_back_off_doubles_up_to_its_cap_and_a_crash_loop_is_reported_once_with_the_log():
    supervisor, process, clock, said = supervised()
    for _ in range(8):
        crash(supervisor, process, clock, returncode=1)
    exits = [line for line in said if "exited" in line]
    assert exits == [f"router exited (status 1); restarting in {delay:g} s" for delay in (1, 2, 4, 8, 16, 30, 30, 30)]
    loops = [line for line in said if "keeps failing" in line]
    assert len(loops) == 1 and said.index(loops[0]) == said.index(exits[CRASH_LOOP - 1]) + 1
    assert "still restarting it" in loops[0] and "/run/router.log" in loops[0]
    assert "Traceback: the reason it fails" in loops[0]
    assert process.starts == 9


def test_the_back_off_starts_over_once_the_child_stayed_up_a_while():
    supervisor, process, clock, said = supervised()
    for _ in range(3):
        crash(supervisor, process, clock)
    clock.now += STABLE_S
    crash(supervisor, process, clock)
    exits = [line for line in said if "exited" in line]
    assert exits == [f"router exited (signal 9); restarting in {delay:g} s" for delay in (1, 2, 4, 1)]


def test_a_restarted_child_never_ready_is_stopped_and_counted_as_a_failure():
    supervisor, process, clock, said = supervised(lambda: False)
    process.returncode = -9
    supervisor.tick()
    clock.now += 1
    supervisor.tick()
    assert process.starts == 2
    clock.now += 61
    supervisor.tick()
    assert process.returncode == -15
    assert said[-1] == "router exited (not ready within 60 s); restarting in 2 s"
