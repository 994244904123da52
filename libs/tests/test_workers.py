"""The parent of a service's workers (llmagg.common.workers): what each worker is told, the port it holds,
and when it gives up starting workers again."""

from __future__ import annotations

import logging
import signal
import socket

import pytest

from llmagg.common.workers import MAX_RESTARTS, WorkerPlan, Workers, hold_port


def plan(**fields) -> WorkerPlan:
    defaults = dict(package="llmagg_no_such_module", env_prefix="X_", workers=2, host="127.0.0.1", port=0,
                    metrics_port=0, stop_timeout_s=5.0)  # fmt: skip
    return WorkerPlan(**{**defaults, **fields})


def test_each_worker_is_told_its_index_the_shared_port_and_its_own_metrics_port():
    assert plan(metrics_port=9100).environment(1, 5000) == {
        "X_WORKERS": "1",
        "X_WORKER": "1",
        "X_PORT": "5000",
        "X_METRICS_PORT": "9101",
    }
    assert plan().environment(0, 5000)["X_METRICS_PORT"] == "0"


def test_every_worker_is_told_the_one_shared_http_port():
    assert plan(http_port=6061).environment(0, 5000)["X_HTTP_PORT"] == "6061"
    assert plan(http_port=6061).environment(1, 5000)["X_HTTP_PORT"] == "6061"
    assert "X_HTTP_PORT" not in plan().environment(1, 5000)  # none: the environment's own (unset, or 0)


def test_a_taken_http_port_stops_the_parent_before_any_worker_starts(own_signals, caplog):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert Workers(plan(http_port=port)).run() == 1
    assert f"cannot serve 2 workers' HTTP on 127.0.0.1:{port}" in caplog.text
    assert "started, pid" not in caplog.text


def test_the_parent_holds_the_http_port_for_its_workers(own_signals, caplog, monkeypatch):
    held = []
    monkeypatch.setattr(Workers, "_supervise", lambda self: held.append(_taken(self.plan.http_port)) or 0)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    assert Workers(plan(http_port=port)).run() == 0
    assert held == [True]  # while the workers run nobody else can take it
    assert not _taken(port)  # and it is let go with them


def _taken(port: int) -> bool:
    with socket.socket() as stranger:  # a program binding plainly, as most do
        try:
            stranger.bind(("127.0.0.1", port))
        except OSError:
            return True
        return False


def test_the_held_port_takes_workers_with_so_reuseport_and_no_other_server():
    with hold_port("127.0.0.1", 0) as holder:
        port = holder.getsockname()[1]
        with socket.socket() as worker:
            worker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            worker.bind(("127.0.0.1", port))
            worker.listen()
            with socket.socket() as stranger, pytest.raises(OSError):
                stranger.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                stranger.bind(("127.0.0.1", port))


@pytest.fixture
def own_signals():
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    yield
    for sig, handler in saved.items():
        signal.signal(sig, handler)


def test_workers_that_keep_dying_stop_the_parent_with_status_1(own_signals, caplog):
    caplog.set_level(logging.INFO, logger="llmagg.common.workers")
    assert Workers(plan()).run() == 1  # `python -m` of a missing module exits 1 at once
    started = [r for r in caplog.records if r.getMessage().startswith("worker ") and " started, pid " in r.getMessage()]
    assert len(started) == 2 + MAX_RESTARTS
    assert any("workers died 6 times within 60s: stopping" in r.getMessage() for r in caplog.records)
