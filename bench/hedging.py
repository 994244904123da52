"""What hedging does to the tail: one provider whose first byte is late on one request in 25 (250 ms),
a second that is always quick. The same sequential workload with hedging off and on (x-llmagg-hedge);
p50, p99 and the slowest request of each. Bounded by request counts; loopback only."""

from __future__ import annotations

import asyncio
import json
import shutil
import statistics
import time
from pathlib import Path

import aiohttp

from bench.common import create_client_key, percentile
from llmagg_devstack import Ports, SimulatorProcess, Stack, write_config

SLOW_EVERY, SLOW_S = 25, 0.25
BODY = json.dumps({"model": "tail-model", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 16})


def config(simulator: SimulatorProcess) -> dict:
    model = {"id": "sim-small", "aliases": ["tail-model"]}
    return {
        "providers": [
            {"id": "tail", "name": "Late now and then", "base_url": simulator.base_url("tail"), "speed": 5, "models": [model]},
            {"id": "spare", "name": "Always quick", "base_url": simulator.base_url("spare"), "speed": 1, "models": [model]},
        ],
        "accounts": [{"provider": "tail", "api_key_env": "BENCH_KEY"}, {"provider": "spare", "api_key_env": "BENCH_KEY"}],
    }  # fmt: skip


async def sequential(url: str, headers: dict, requests: int) -> list[float]:
    samples = []
    async with aiohttp.ClientSession() as session:
        for _ in range(requests):
            started = time.perf_counter()
            async with session.post(f"{url}/chat/completions", data=BODY, headers=headers) as response:
                await response.read()
                if response.status != 200:
                    raise RuntimeError(f"HTTP {response.status}")
            samples.append((time.perf_counter() - started) * 1000)
    return samples


def measure(simulator: SimulatorProcess, run_dir: Path, requests: int) -> dict:
    shutil.rmtree(run_dir, ignore_errors=True)
    stack = Stack(run_dir, Ports.free())
    env = {"LLMAGG_CONFIG": str(write_config(run_dir / "config.yaml", config(simulator))), "BENCH_KEY": "sk-bench-FAKE"}
    results = {}
    with stack.running(env):
        key = create_client_key(stack, "hedging")
        for hedge in ("false", "true"):
            for name in ("tail", "spare"):
                simulator.reset(name)
            rounds = requests // SLOW_EVERY
            simulator.script(
                "tail",
                [{"type": "ok", "count": 50}]  # the warm-up: the router learns the usual time to first content
                + [{"type": "ok", "count": SLOW_EVERY - 1}, {"type": "slow_first_byte", "delay_s": SLOW_S}] * rounds,
            )
            headers = {"Content-Type": "application/json", "Authorization": f"Bearer {key}", "x-llmagg-hedge": hedge}
            asyncio.run(sequential(stack.base_url, headers, 50))
            samples = asyncio.run(sequential(stack.base_url, headers, rounds * SLOW_EVERY))
            results["hedging on" if hedge == "true" else "hedging off"] = {
                "p50_ms": statistics.median(samples),
                "p99_ms": percentile(samples, 0.99),
                "max_ms": max(samples),
                "spare_calls": len(simulator.requests("spare")),
            }
    return results


def report(results: dict, requests: int) -> str:
    lines = [
        f"hedging: {requests} sequential requests, the first provider {SLOW_S * 1000:.0f} ms late on 1 in {SLOW_EVERY}"
    ]
    for name, figures in results.items():
        lines.append(
            f"  {name:12} p50 {figures['p50_ms']:7.2f} ms   p99 {figures['p99_ms']:7.2f} ms   "
            f"slowest {figures['max_ms']:7.2f} ms   calls to the second provider {figures['spare_calls']}"
        )
    return "\n".join(lines)
