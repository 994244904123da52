"""Reserve+Settle through the ratelimit service over gRPC, as the router calls it: decisions per second
and latency at a given concurrency, for the memory and the Redis/Valkey backends.

One decision is one Reserve (one key: its account, model and learned windows) and one Settle of it
(one settlement per call here; the router batches them, so this is the dearer case)."""

from __future__ import annotations

import asyncio
import secrets
import statistics
import sys
import time
from pathlib import Path

import grpc

from bench.common import percentile
from llmagg.ratelimit.v1 import ratelimit_pb2 as pb
from llmagg.ratelimit.v1 import ratelimit_pb2_grpc
from llmagg_devstack import ManagedProcess, free_port, grpc_serving, start_valkey, write_config

TIME_CAP_S = 60.0


async def decisions(address: str, token: str, total: int, concurrency: int) -> dict:
    metadata = (("x-llmagg-service-token", token),)
    keys = [pb.QuotaKey(provider="bench-quota", account=f"acct-{i % 8}", model="m") for i in range(total)]
    samples: list[float] = []
    remaining = total
    deadline = time.monotonic() + TIME_CAP_S
    async with grpc.aio.insecure_channel(address) as channel:
        stub = ratelimit_pb2_grpc.RatelimitServiceStub(channel)

        async def worker() -> None:
            nonlocal remaining
            while remaining > 0 and time.monotonic() < deadline:
                remaining -= 1
                key = keys[remaining]
                started = time.perf_counter()
                reply = await stub.Reserve(pb.ReserveRequest(key=key, estimated_tokens=300), metadata=metadata)
                settlement = pb.Settlement(
                    reservation_id=reply.reservation_id, key=key, estimated_tokens=300, usage_known=True,
                    prompt_tokens=120, completion_tokens=80, outcome="ok", latency_ms=5, upstream_status=200,
                )  # fmt: skip
                await stub.Settle(pb.SettleRequest(settlements=[settlement]), metadata=metadata)
                samples.append((time.perf_counter() - started) * 1000)

        await asyncio.gather(*(worker() for _ in range(min(concurrency, 8))))  # warm-up
        samples.clear()
        remaining = total
        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return {
        "decisions_per_s": len(samples) / elapsed,
        "p50_ms": statistics.median(samples),
        "p99_ms": percentile(samples, 0.99),
        "count": len(samples),
    }


def measure(run_dir: Path, total: int, concurrency: int) -> dict:
    """Both backends, each in a ratelimit process of its own."""
    config = write_config(
        run_dir / "ledger-config.yaml",
        {
            "providers": [
                {
                    "id": "bench-quota",
                    "name": "Benchmark quotas",
                    "base_url": "http://127.0.0.1:9/v1",
                    "limits": {"rpm": 10**9, "rpd": 10**9, "tpm": 10**12},
                    "models": [{"id": "m", "limits": {"tpd": 10**12}}],
                }
            ]
        },
    )
    results = {}
    valkey = start_valkey(run_dir, free_port())
    try:
        for backend in ("memory", "redis"):
            token, port = secrets.token_urlsafe(16), free_port()
            process = ManagedProcess(
                f"ratelimit-{backend}",
                [sys.executable, "-m", "llmagg_ratelimit"],
                log_path=run_dir / f"ratelimit-{backend}.log",
                env={
                    "RATELIMIT_PORT": str(port), "RATELIMIT_METRICS_PORT": "0", "RATELIMIT_STORE": backend,
                    "RATELIMIT_REDIS_URL": valkey.url, "RATELIMIT_REDIS_PREFIX": f"bench-{token[:6]}",
                    "RATELIMIT_ROUTER_TOKEN": token, "RATELIMIT_CONFIG": str(config),
                    "RATELIMIT_USAGE_PATH": str(run_dir / f"usage-{backend}.sqlite3"), "RATELIMIT_LOG_LEVEL": "WARNING",
                    "RATELIMIT_DRAIN_S": "0",
                },
            )  # fmt: skip
            try:
                address = f"127.0.0.1:{port}"
                process.wait_until(lambda a=address: grpc_serving(a), 60, "gRPC health SERVING")
                results[backend] = asyncio.run(decisions(address, token, total, concurrency))
            finally:
                process.stop()
    finally:
        valkey.process.stop()
    return results


def report(results: dict, concurrency: int) -> str:
    lines = [
        f"{'Reserve+Settle over gRPC, concurrency ' + str(concurrency):44}{'decisions/s':>14}{'p50':>10}{'p99':>10}"
    ]
    for backend, figures in results.items():
        lines.append(
            f"{'  ' + backend:44}{figures['decisions_per_s']:>14.0f}"
            f"{figures['p50_ms']:>8.2f}ms{figures['p99_ms']:>8.2f}ms"
        )
    return "\n".join(lines)
