"""`make bench-ab A=<rev> B=<rev>`: two revisions of the suite side by side, as `make run` starts each.

Both stacks run at once over one provider simulator, and one client sends requests at concurrency 1
alternating between them (A, B, then B, A, ...), so that whatever the machine does meanwhile (another
tenant, a slow minute) falls on both alike: the difference between the two is the change, where two
`make bench` runs minutes apart differ by more than most changes. Prints each side's latency percentiles
(non-streamed: the whole answer; `--stream`: the first body byte) and the CPU per request of each of its
processes (/proc), and B's difference.

A revision is any git revision (checked out once under .run/side_by_side/<sha> with its own `make venv`),
or `.` for this working tree. Every loop is bounded by a request count; loopback only.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from bench.common import percentile
from llmagg.suite import SERVICES
from llmagg_devstack import ROOT, Ports, SimulatorProcess, span_receiver, write_config

ADMIN_KEY = "sk-bench-ab-FAKE-admin-0123456789"
PROVIDER_KEY = "sk-bench-ab-FAKE-provider"
BODY = {"model": "sim-small", "messages": [{"role": "user", "content": "Say hello in five words."}], "max_tokens": 16}
READY_S = 240.0
# Inherited by neither stack: each gets its own ports, run dir, admin key and tracing.
_OWN_PREFIXES = ("LLMAGG_", "OTEL_", "GATEWAY_", *(s.env_prefix for s in SERVICES))


def checkout(rev: str) -> Path:
    """The tree of `rev` with a venv: this one for `.`, else a worktree made (and `make venv`'d) once."""
    if rev == ".":
        return ROOT
    sha = subprocess.run(["git", "rev-parse", "--verify", f"{rev}^{{commit}}"], cwd=ROOT, check=True,
                         capture_output=True, text=True).stdout.strip()  # fmt: skip
    tree = ROOT / ".run" / "side_by_side" / sha[:12]
    if not tree.exists():
        subprocess.run(["git", "worktree", "prune"], cwd=ROOT, check=True)  # .run may have been removed by hand
        subprocess.run(["git", "worktree", "add", "--detach", str(tree), sha], cwd=ROOT, check=True)
    if not (tree / ".venv" / "bin" / "python").exists():
        subprocess.run(["make", "venv"], cwd=tree, check=True)
    return tree


@dataclass
class Side:
    label: str
    tree: Path
    process: subprocess.Popen[bytes]
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@contextlib.contextmanager
def started(label: str, tree: Path, run_dir: Path, config: Path, extra: Mapping[str, str]) -> Iterator[Side]:
    """`llmagg_devstack run` of `tree` on free ports, until the block ends."""
    ports = Ports.free()
    env = {name: value for name, value in os.environ.items() if not name.startswith(_OWN_PREFIXES)}
    env |= ports.environment() | dict(extra)
    env |= {"LLMAGG_RUN_DIR": str(run_dir), "LLMAGG_CONFIG": str(config), "LLMAGG_ADMIN_KEY": ADMIN_KEY}
    env["BENCH_KEY"] = PROVIDER_KEY
    run_dir.mkdir(parents=True, exist_ok=True)
    with open(run_dir / "launcher.log", "wb") as log:
        process = subprocess.Popen(
            [str(tree / ".venv" / "bin" / "python"), "-m", "llmagg_devstack", "run"],
            cwd=tree, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    side = Side(label, tree, process, ports.gateway)
    try:
        _wait_ready(side, run_dir)
        yield side
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGINT)  # the launcher stops its stack
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def _wait_ready(side: Side, run_dir: Path) -> None:
    deadline = time.monotonic() + READY_S
    while time.monotonic() < deadline:
        if side.process.poll() is not None:
            raise SystemExit(f"{side.label}: the stack exited ({run_dir / 'launcher.log'})")
        with contextlib.suppress(OSError):
            with urllib.request.urlopen(f"{side.url}/health", timeout=1) as answer:
                if answer.status == 200:
                    return
        time.sleep(0.25)
    raise SystemExit(f"{side.label}: not ready within {READY_S:g} s ({run_dir / 'launcher.log'})")


def process_cpu(root: int) -> dict[str, float]:
    """CPU seconds used so far by `root` and every process under it, by name (a service, envoy, bao,
    valkey, postgres; `other`)."""
    table: dict[int, tuple[int, str, float]] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError):
                fields = Path(f"/proc/{entry}/stat").read_text().rpartition(")")[2].split()
                command = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
                table[int(entry)] = (int(fields[1]), process_name(command), (int(fields[11]) + int(fields[12])) / tick)
    return cpu_by_name(table, root)


def process_name(command: list[bytes]) -> str:
    for part in command:
        word = part.decode(errors="replace").rsplit("/", 1)[-1]
        if word.startswith("llmagg_"):
            return word.removeprefix("llmagg_")
        if word in ("envoy", "bao", "valkey-server", "postgres"):
            return word
    return "other"


def cpu_by_name(table: Mapping[int, tuple[int, str, float]], root: int) -> dict[str, float]:
    """`table` (pid -> parent, name, CPU seconds): the CPU of `root` and its descendants, summed by name."""
    children: dict[int, list[int]] = {}
    for pid, (parent, _, _) in table.items():
        children.setdefault(parent, []).append(pid)
    totals: dict[str, float] = {}
    todo = [root]
    while todo:
        pid = todo.pop()
        if pid in table:
            _, name, seconds = table[pid]
            totals[name] = totals.get(name, 0.0) + seconds
        todo += children.get(pid, [])
    return totals


def one(connection: http.client.HTTPConnection, payload: bytes, stream: bool) -> float:
    """Milliseconds to the whole answer, or (`stream`) to its first body byte (the stream then read to its end)."""
    started = time.perf_counter()
    connection.request("POST", "/v1/chat/completions", payload, {"Content-Type": "application/json",
                                                                  "Authorization": f"Bearer {ADMIN_KEY}"})  # fmt: skip
    response = connection.getresponse()
    if stream:
        response.fp.peek(1)  # type: ignore[union-attr]  # the first body byte is in the buffer
    elapsed = (time.perf_counter() - started) * 1000
    body = response.read()
    if response.status != 200 or (stream and b"[DONE]" not in body):
        raise SystemExit(f"HTTP {response.status}: {body[:300]!r}")
    return elapsed


def compare(sides: list[Side], requests: int, warmup: int, stream: bool) -> dict[str, dict]:
    payload = json.dumps({**BODY, "stream": True} if stream else BODY).encode()
    connections = [http.client.HTTPConnection("127.0.0.1", side.port, timeout=30) for side in sides]
    for _ in range(warmup):
        for connection in connections:
            one(connection, payload, stream)
    before = [process_cpu(side.process.pid) for side in sides]
    timings: list[list[float]] = [[] for _ in sides]
    for n in range(requests):
        for i in (0, 1) if n % 2 == 0 else (1, 0):
            timings[i].append(one(connections[i], payload, stream))
    after = [process_cpu(side.process.pid) for side in sides]
    results = {}
    for i, side in enumerate(sides):
        cpu = {name: (after[i][name] - before[i].get(name, 0.0)) * 1000 / requests for name in after[i]}
        results[side.label] = {
            "p50_ms": percentile(timings[i], 0.5),
            "p90_ms": percentile(timings[i], 0.9),
            "p99_ms": percentile(timings[i], 0.99),
            "cpu_ms_per_request": {name: round(ms, 4) for name, ms in sorted(cpu.items()) if ms > 0},
        }
    return results


def report(results: dict[str, dict], stream: bool) -> str:
    (a_label, a), (b_label, b) = results.items()
    what = "first body byte" if stream else "whole answer"
    lines = [f"concurrency 1, alternating; latency to the {what} (ms), CPU per request (ms)"]
    names = sorted(set(a["cpu_ms_per_request"]) | set(b["cpu_ms_per_request"]))
    lines.append(f"{'':24}{'p50':>8}{'p90':>8}{'p99':>8}{'CPU':>8}  " + " ".join(f"{n:>11}" for n in names))
    for label, figures in ((a_label, a), (b_label, b)):
        cpu = figures["cpu_ms_per_request"]
        lines.append(
            f"{label[:24]:24}{figures['p50_ms']:8.3f}{figures['p90_ms']:8.3f}{figures['p99_ms']:8.3f}"
            f"{sum(cpu.values()):8.3f}  " + " ".join(f"{cpu.get(n, 0.0):11.3f}" for n in names)
        )
    delta = {key: b[key] - a[key] for key in ("p50_ms", "p90_ms", "p99_ms")}
    cpu_delta = sum(b["cpu_ms_per_request"].values()) - sum(a["cpu_ms_per_request"].values())
    lines.append(f"{'B - A':24}{delta['p50_ms']:+8.3f}{delta['p90_ms']:+8.3f}{delta['p99_ms']:+8.3f}{cpu_delta:+8.3f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.side_by_side", description=__doc__)
    parser.add_argument("a", help="a git revision, or . for this working tree")
    parser.add_argument("b", help="a git revision, or . for this working tree")
    parser.add_argument("--requests", type=int, default=3000, help="requests to each side")
    parser.add_argument("--warmup", type=int, default=300, help="requests to each side before measuring")
    parser.add_argument("--stream", action="store_true", help="streamed chats: time to the first body byte")
    parser.add_argument("--trace-ratio", type=float, help="trace this share of requests (spans to a local receiver)")
    args = parser.parse_args(argv)
    trees = [checkout(args.a), checkout(args.b)]
    labels = [f"A {args.a}", f"B {args.b}"]
    base = ROOT / ".run" / "side_by_side" / "runs"
    base.mkdir(parents=True, exist_ok=True)
    with SimulatorProcess() as simulator, contextlib.ExitStack() as running:
        config = base / "config.yaml"
        providers = [{"id": "bench", "name": "Simulated upstream", "base_url": simulator.base_url("bench"),
                      "models": [{"id": "sim-small"}]}]  # fmt: skip
        write_config(config, {"providers": providers, "accounts": [{"provider": "bench", "api_key_env": "BENCH_KEY"}]})
        tracing: dict[str, str] = {}
        if args.trace_ratio is not None:
            receiver = running.enter_context(span_receiver(keep=False))
            tracing = receiver.environment(schedule_delay_ms=5000) | {
                "OTEL_TRACES_SAMPLER_ARG": f"{args.trace_ratio:g}"
            }
        sides = [
            running.enter_context(started(label, tree, base / f"side-{n}", config, tracing))
            for n, (label, tree) in enumerate(zip(labels, trees, strict=True))
        ]
        results = compare(sides, args.requests, args.warmup, args.stream)
    print(report(results, args.stream))
    (base / "results.json").write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
