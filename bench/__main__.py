"""`make bench`: what gateway+router add over calling the upstream (the provider simulator) directly,
and what the quota ledger costs.

Reports p50/p99 latency at concurrency 1, throughput and p50 at concurrency 32, and the time to the
first streamed content chunk, with the ratelimit service in the path (client limits at the gateway,
Headroom + Reserve + Settle from the router); then Reserve+Settle decisions per second and their p99
for the memory and the Redis/Valkey backends. Every loop is bounded by a request count and a time
cap; loopback only.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import os
import shutil
import statistics
import sys
import time
from collections.abc import Awaitable, Callable

import aiohttp
import orjson

from bench import hedging, ledger
from bench.common import create_client_key, percentile
from llmagg_devstack import ROOT, Ports, SimulatorProcess, Stack, span_receiver, write_config

BODY = {"model": "sim-small", "messages": [{"role": "user", "content": "Say hello in five words."}], "max_tokens": 16}
STREAM_BODY = {**BODY, "stream": True}
HEADERS = {"Content-Type": "application/json"}
TIME_CAP_S = 60.0
BENCH_PROVIDER_KEY = "sk-bench-FAKE-provider"


async def one_request(session: aiohttp.ClientSession, url: str, payload: bytes, headers: dict) -> float:
    started = time.perf_counter()
    async with session.post(url, data=payload, headers=headers) as response:
        await response.read()
        if response.status != 200:
            raise RuntimeError(f"{url}: HTTP {response.status}")
    return (time.perf_counter() - started) * 1000


def _has_content(chunk: dict) -> bool:
    return any((choice.get("delta") or {}).get("content") for choice in chunk.get("choices") or ())


async def first_chunk(session: aiohttp.ClientSession, url: str, payload: bytes, headers: dict) -> float:
    """Milliseconds until the first chunk that carries content (the role-only chunk does not)."""
    started = time.perf_counter()
    ttfc = None
    async with session.post(url, data=payload, headers=headers) as response:
        async for line in response.content:
            if ttfc is None and line.startswith(b"data: {") and _has_content(orjson.loads(line[6:])):
                ttfc = (time.perf_counter() - started) * 1000
    if ttfc is None:
        raise RuntimeError(f"{url}: no content chunk")
    return ttfc


async def run_load(request: Callable[[], Awaitable[float]], total: int, concurrency: int) -> tuple[list[float], float]:
    samples: list[float] = []
    deadline = time.monotonic() + TIME_CAP_S
    remaining = total

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0 and time.monotonic() < deadline:
            remaining -= 1
            samples.append(await request())

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return samples, time.perf_counter() - started


async def measure(url: str, headers: dict, requests: int, concurrency: int) -> dict:
    """One target: latency one at a time, throughput at `concurrency`, time to the first streamed chunk."""
    payload, stream_payload = orjson.dumps(BODY), orjson.dumps(STREAM_BODY)
    connector = aiohttp.TCPConnector(limit=concurrency + 4)
    async with aiohttp.ClientSession(connector=connector) as session:
        send = functools.partial(one_request, session, f"{url}/chat/completions", payload, headers)
        stream = functools.partial(first_chunk, session, f"{url}/chat/completions", stream_payload, headers)
        await run_load(send, 200, 4)  # warm-up: connections, caches
        sequential, _ = await run_load(send, requests, 1)
        loaded, elapsed = await run_load(send, requests * 3, concurrency)
        ttfc, _ = await run_load(stream, requests // 3, 1)
    return {
        "requests": 200 + len(sequential) + len(loaded) + len(ttfc),
        "p50_ms": statistics.median(sequential),
        "p99_ms": percentile(sequential, 0.99),
        "rps_at_concurrency": len(loaded) / elapsed,
        "p50_ms_at_concurrency": statistics.median(loaded),
        "ttfc_p50_ms": statistics.median(ttfc),
        "ttfc_p99_ms": percentile(ttfc, 0.99),
    }


def added(direct: dict, gateway: dict) -> dict:
    return {
        "p50_ms": gateway["p50_ms"] - direct["p50_ms"],
        "p99_ms": gateway["p99_ms"] - direct["p99_ms"],
        "ttfc_p50_ms": gateway["ttfc_p50_ms"] - direct["ttfc_p50_ms"],
        "throughput_ratio": gateway["rps_at_concurrency"] / direct["rps_at_concurrency"],
    }


def report(results: dict) -> str:
    """A table: the direct figures, then per gateway run its own and what it added."""
    direct, runs, c = results["direct"], results["gateway"], results["concurrency"]
    rows: list[tuple[str, ...]] = [
        ("p50 latency, concurrency 1", f"{direct['p50_ms']:.2f} ms"),
        ("p99 latency, concurrency 1", f"{direct['p99_ms']:.2f} ms"),
        (f"throughput, concurrency {c}", f"{direct['rps_at_concurrency']:.0f} req/s"),
        (f"p50 latency, concurrency {c}", f"{direct['p50_ms_at_concurrency']:.2f} ms"),
        ("first streamed chunk p50", f"{direct['ttfc_p50_ms']:.2f} ms"),
    ]
    for run in runs.values():
        g, a = run["figures"], run["added"]
        cells = (
            (f"{g['p50_ms']:.2f} ms", f"+{a['p50_ms']:.2f} ms"),
            (f"{g['p99_ms']:.2f} ms", f"+{a['p99_ms']:.2f} ms"),
            (f"{g['rps_at_concurrency']:.0f} req/s", f"x{a['throughput_ratio']:.2f}"),
            (f"{g['p50_ms_at_concurrency']:.2f} ms", ""),
            (f"{g['ttfc_p50_ms']:.2f} ms", f"+{a['ttfc_p50_ms']:.2f} ms"),
        )
        rows = [(*row, *cell) for row, cell in zip(rows, cells, strict=True)]
    header = f"{'':30}{'direct':>12}" + "".join(f"{name:>18}{'added':>11}" for name in runs)
    cpu = [
        f"CPU per request, {name}: "
        + ", ".join(f"{process} {ms:.3f} ms" for process, ms in run["figures"]["cpu_ms_per_request"].items() if ms)
        for name, run in runs.items()
    ]
    return "\n".join([header, *(f"{r[0]:30}{r[1]:>12}" + "".join(
        f"{r[i]:>18}{r[i + 1]:>11}" for i in range(2, len(r), 2)) for r in rows), *cpu])  # fmt: skip


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process and its children (a router's workers) have used so far (Linux
    /proc; 0 where it cannot be read)."""
    try:
        fields = open(f"/proc/{pid}/stat").read().rpartition(")")[2].split()
        children = open(f"/proc/{pid}/task/{pid}/children").read().split()
    except OSError:
        return 0.0
    own = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return own + sum(cpu_seconds(int(child)) for child in children)


def cpu_per_request(stack: Stack, before: dict[str, float], requests: int) -> dict[str, float]:
    """Milliseconds of CPU each process of the stack spent per request since `before`: far steadier than
    latency on a shared machine."""
    return {
        p.name: (cpu_seconds(p.process.pid) - before[p.name]) * 1000 / requests
        for p in stack.processes
        if p.name in before
    }


def gateway_run(simulator: SimulatorProcess, args: argparse.Namespace, trace_ratio: float | None) -> dict:
    """Gateway and services on their own run dir; with a `trace_ratio`, Envoy traces that share of the
    requests and every process exports its spans to a local OTLP receiver, as in production."""
    run_dir = ROOT / ".run" / "bench" / ("untraced" if trace_ratio is None else f"traced-{trace_ratio:g}")
    shutil.rmtree(run_dir, ignore_errors=True)  # a fresh OpenBao and admin key per run
    with contextlib.ExitStack() as running:
        env = {
            "LLMAGG_CONFIG": str(write_config(run_dir / "config.yaml", bench_config(simulator))),
            "BENCH_KEY": BENCH_PROVIDER_KEY,
            "ROUTER_QUOTA_LEDGER": args.quota_ledger,
            "ROUTER_WORKERS": str(args.router_workers),
        }
        otlp = None
        if trace_ratio is not None:
            receiver = running.enter_context(span_receiver(keep=False))
            env |= receiver.environment(schedule_delay_ms=5000)  # the SDK's default batching
            otlp = receiver.endpoint
        stack = Stack(
            run_dir,
            Ports.free(),
            client_auth=args.client_auth == "on",
            otlp_endpoint=otlp,
            trace_ratio=1.0 if trace_ratio is None else trace_ratio,
        )
        running.callback(stack.stop)
        stack.start_services(env)
        stack.start_gateway()
        headers = {**HEADERS, "Authorization": f"Bearer {create_client_key(stack)}"}
        before = {p.name: cpu_seconds(p.process.pid) for p in stack.processes}
        figures = asyncio.run(measure(stack.base_url, headers, args.requests, args.concurrency))
        figures["cpu_ms_per_request"] = cpu_per_request(stack, before, figures.pop("requests"))
        if trace_ratio is not None:
            figures["spans_exported"] = receiver.received
        return figures


def bench_config(simulator: SimulatorProcess) -> dict:
    return {
        "providers": [
            {
                "id": "bench",
                "name": "Simulated upstream for benchmarks",
                "base_url": simulator.base_url("bench"),
                "models": [{"id": "sim-small"}],
            }
        ],
        "accounts": [{"provider": "bench", "api_key_env": "BENCH_KEY"}],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--requests", type=int, default=1000, help="sequential requests per target")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument(
        "--client-auth",
        choices=["on", "off"],
        default="on",
        help="check the client key at the gateway (inside Envoy, keys by xDS)",
    )
    parser.add_argument(
        "--tracing",
        choices=["off", "on", "production", "both", "all"],
        default="both",
        help="export spans to a local OTLP receiver: on traces every request, production --trace-ratio of them; "
        "both: off and on, all: off, production and on",
    )
    parser.add_argument(
        "--trace-ratio", type=float, default=0.1, help="the share traced with --tracing production (the overlay's)"
    )
    parser.add_argument("--router-workers", type=int, default=1, help="ROUTER_WORKERS: router processes on its port")
    parser.add_argument(
        "--quota-ledger",
        choices=["ratelimit", "unmetered"],
        default="ratelimit",
        help="the router's quota ledger (unmetered: no Headroom/Reserve/Settle; the gateway still asks ratelimit)",
    )
    parser.add_argument("--decisions", type=int, default=5000, help="Reserve+Settle pairs per ledger backend")
    parser.add_argument("--skip-ledger", action="store_true", help="only the gateway figures")
    parser.add_argument(
        "--hedging-requests", type=int, default=500, help="sequential requests per hedging run (0: skip)"
    )
    args = parser.parse_args(argv)

    results: dict = {
        "requests": args.requests,
        "concurrency": args.concurrency,
        "client_auth": args.client_auth,
        "quota_ledger": args.quota_ledger,
        "router_workers": args.router_workers,
    }
    simulator = SimulatorProcess()
    try:
        direct_headers = {**HEADERS, "Authorization": f"Bearer {BENCH_PROVIDER_KEY}"}
        results["direct"] = asyncio.run(
            measure(simulator.base_url("bench"), direct_headers, args.requests, args.concurrency)
        )
        results["direct"].pop("requests")
        results["gateway"] = {}
        production = args.trace_ratio
        runs = {"off": (None,), "on": (1.0,), "production": (production,), "both": (None, 1.0)}
        runs["all"] = (None, production, 1.0)
        for trace_ratio in runs[args.tracing]:
            figures = gateway_run(simulator, args, trace_ratio)
            name = "tracing off" if trace_ratio is None else f"tracing {trace_ratio:.0%}"
            results["gateway"][name] = {"figures": figures, "added": added(results["direct"], figures)}
        if args.hedging_requests:
            results["hedging"] = hedging.measure(simulator, ROOT / ".run" / "bench" / "hedging", args.hedging_requests)
    finally:
        simulator.stop()
    print(
        f"gateway+services, client auth (keys checked in Envoy) {args.client_auth}, quota ledger {args.quota_ledger}, "
        f"router workers {args.router_workers}\n"
        f"{report(results)}"
    )
    if args.hedging_requests:
        print(f"\n{hedging.report(results['hedging'], args.hedging_requests)}")
    run_dir = ROOT / ".run" / "bench"
    if not args.skip_ledger:
        results["ledger"] = ledger.measure(run_dir, args.decisions, args.concurrency)
        print(f"\n{ledger.report(results['ledger'], args.concurrency)}")
    out = run_dir / "results.json"
    out.write_text(json.dumps(results, indent=2))
    print(
        f"\n(raw figures in {out}; targets: <= 1.5 ms added p50, >= 1000 req/s at concurrency 32, "
        "<= 2 ms added to the first streamed chunk, tracing on within 0.3 ms of off at p50)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
