"""`make profile-router`: where the router (or `--service NAME`) spends its CPU under load, sampled by py-spy.

Starts the simulator and the stack as `make bench` does (tracing off), sends non-streamed chat requests
(`--stream`: streamed ones, read to their end) through the gateway at a concurrency while py-spy samples
the router, then prints the frames with the most own time (where the samples were taken) and with the
most time in them and below, and the CPU
per request of each process (with `--env ROUTER_WORKERS=2`, of all the router's workers together). The raw stacks (collapsed, for flame graphs) stay in .run/bench/profile/.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import functools
import shutil
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import orjson

from bench.__main__ import (
    BENCH_PROVIDER_KEY,
    BODY,
    HEADERS,
    STREAM_BODY,
    bench_config,
    cpu_per_request,
    cpu_seconds,
    one_request,
    run_load,
)
from bench.common import create_client_key
from llmagg_devstack import ROOT, Ports, SimulatorProcess, Stack, write_config


def _frame(frame: str) -> str:
    """`name (path/to/module.py:12)` shortened to `name (module.py:12)`."""
    name, _, where = frame.partition(" (")
    return f"{name} ({Path(where.rstrip(')')).name})" if where else name


def summarize(collapsed: Path, top: int) -> str:
    """Top frames by own samples and by total samples from py-spy's collapsed stacks (`a;b;c count`)."""
    own: collections.Counter[str] = collections.Counter()
    total: collections.Counter[str] = collections.Counter()
    samples = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = [_frame(f) for f in stack.split(";")]
        n = int(count)
        samples += n
        own[frames[-1]] += n
        for frame in set(frames):
            total[frame] += n
    lines = [f"{samples} samples", "", f"{'own %':>7}  frame"]
    lines += [f"{100 * n / samples:6.1f}%  {frame}" for frame, n in own.most_common(top)]
    lines += ["", f"{'total %':>7}  frame"]
    lines += [f"{100 * n / samples:6.1f}%  {frame}" for frame, n in total.most_common(top)]
    return "\n".join(lines)


def _config(simulator: SimulatorProcess, accounts: int) -> dict:
    config = bench_config(simulator)
    [account] = config["accounts"]
    config["accounts"] = [{**account, "alias": f"bench-{n}"} for n in range(1, accounts + 1)]
    return config


async def load(url: str, headers: dict, requests: int, concurrency: int, stream: bool = False) -> None:
    connector = aiohttp.TCPConnector(limit=concurrency + 4)
    payload = orjson.dumps(STREAM_BODY if stream else BODY)
    async with aiohttp.ClientSession(connector=connector) as session:
        send = functools.partial(one_request, session, f"{url}/chat/completions", payload, headers)
        await run_load(send, requests, concurrency)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--stream", action="store_true", help="streamed chat requests (read to their end)")
    parser.add_argument("--rate", type=int, default=250, help="py-spy samples per second")
    parser.add_argument("--service", default="router", help="the process py-spy samples (ratelimit, credentials, ...)")
    parser.add_argument("--native", action="store_true", help="C frames too (grpc, the event loop, the GC)")
    parser.add_argument("--no-sampler", action="store_true", help="only the CPU per request, without py-spy")
    parser.add_argument("--accounts", type=int, default=1, help="accounts of the model (more: ranked by headroom)")
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE", help="for the services (repeat)")
    args = parser.parse_args(argv)
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    run_dir = ROOT / ".run" / "bench" / "profile"
    shutil.rmtree(run_dir, ignore_errors=True)
    simulator = SimulatorProcess()
    with contextlib.ExitStack() as running:
        running.callback(simulator.stop)
        env = {
            "LLMAGG_CONFIG": str(write_config(run_dir / "config.yaml", _config(simulator, args.accounts))),
            "BENCH_KEY": BENCH_PROVIDER_KEY,
            **dict(item.split("=", 1) for item in args.env),
        }
        stack = Stack(run_dir, Ports.free())
        running.callback(stack.stop)
        stack.start_services(env)
        stack.start_gateway()
        headers = {**HEADERS, "Authorization": f"Bearer {create_client_key(stack)}"}
        asyncio.run(load(stack.base_url, headers, 300, 4, args.stream))  # warm-up: connections, caches, leases
        [sampled] = [p for p in stack.processes if p.name == args.service]
        collapsed = run_dir / f"{args.service}.collapsed"
        command = [py_spy, "record", "--pid", str(sampled.process.pid), "--rate", str(args.rate), "--format", "raw"]
        command += ["--output", str(collapsed), "--subprocesses"]  # ROUTER_WORKERS: the workers are children
        command += ["--native"] if args.native else ["--nonblocking"]
        sampler = None if args.no_sampler else subprocess.Popen(command, stdout=subprocess.DEVNULL)
        time.sleep(1.0)  # py-spy attaches
        before = {p.name: cpu_seconds(p.process.pid) for p in stack.processes}
        asyncio.run(load(stack.base_url, headers, args.requests, args.concurrency, args.stream))
        cpu = cpu_per_request(stack, before, args.requests)
        if sampler is not None:
            sampler.send_signal(2)  # SIGINT: py-spy writes what it has
            sampler.wait(30)
    if sampler is not None:
        print(summarize(collapsed, args.top))
    print("\nCPU per request: " + ", ".join(f"{name} {ms:.3f} ms" for name, ms in cpu.items() if ms))
    print(f"(collapsed stacks in {collapsed})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
