"""`make chaos-load`: a mixed load under faults, counting every answer a client got.

32 clients send stream and non-stream chat requests for 60 s (each waiting as long as a 429 or
503 asks before its next one, as the openai SDK does) to a model served by a hanging provider, a
429ing provider and two healthy ones (one in its own process). Along the way the
router is stopped with SIGTERM and started again, and the healthy provider's process is killed.
Every answer is classified; the promise is that no 200 is truncated or empty, every other status
carries an OpenAI error, and no request waits longer than the first-byte timeout times its attempts
(plus the time to stream the answer itself).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import signal
import sys
import time
from pathlib import Path

import aiohttp

from bench.common import create_client_key
from llmagg.suite import service
from llmagg_devstack import ROOT, Ports, SimulatorProcess, Stack, write_config

FIRST_BYTE_S = 2.0
CLIENT_TIMEOUT_S = 30.0
ECHO = "echo: " + " ".join(f"w{i}" for i in range(40))


def routing_config(faulty: SimulatorProcess, spare: SimulatorProcess) -> dict:
    def provider(provider_id: str, base_url: str, speed: int) -> dict:
        return {"id": provider_id, "base_url": base_url, "speed": speed, "models": [{"id": "m", "aliases": ["load"]}]}

    providers = [
        provider("hanging", faulty.base_url("hanging"), 5),
        provider("limited", faulty.base_url("limited"), 5),
        provider("healthy", faulty.base_url("healthy"), 3),
        provider("killed", spare.base_url("killed"), 4),
    ]
    accounts = [{"provider": p["id"], "api_key_env": "LOAD_KEY"} for p in providers]
    return {"providers": providers, "accounts": accounts}


async def one_request(session: aiohttp.ClientSession, url: str, stream: bool) -> dict:
    body = {"model": "load", "messages": [{"role": "user", "content": ECHO}], "stream": stream}
    started = time.monotonic()
    outcome: dict = {"stream": stream}
    try:
        async with session.post(url, json=body) as response:
            payload = await response.read()
            outcome.update(status=response.status, attempts=int(response.headers.get("x-llmagg-attempts", "0")))
            outcome["retry_after"] = float(response.headers.get("retry-after", 0))
    except (aiohttp.ClientError, TimeoutError) as error:
        outcome.update(status=0, kind=f"client {type(error).__name__}")
        outcome["seconds"] = time.monotonic() - started
        return outcome
    outcome["seconds"] = time.monotonic() - started
    outcome["kind"] = classify(outcome["status"], payload, stream)
    return outcome


def classify(status: int, payload: bytes, stream: bool) -> str:
    if status == 200 and stream:
        events = [line[6:] for line in payload.split(b"\n") if line.startswith(b"data: ")]
        if events and events[-1] == b"[DONE]":
            return "200 complete"
        if events and b'"error"' in events[-1]:
            return "200 stream ended with an error event"
        return "200 TRUNCATED"
    if status == 200:
        try:
            parsed = json.loads(payload)
            return "200 complete" if parsed["choices"][0]["message"]["content"] else "200 EMPTY"
        except (ValueError, KeyError, IndexError):
            return "200 TRUNCATED"
    try:
        error = json.loads(payload)["error"]
        return f"{status} {error['code']}"
    except (ValueError, KeyError, TypeError):
        return f"{status} NOT OPENAI-SHAPED"


async def load(url: str, key: str, seconds: float, clients: int, events: list[tuple[float, object]]) -> list[dict]:
    results: list[dict] = []
    deadline = time.monotonic() + seconds
    timeout = aiohttp.ClientTimeout(total=CLIENT_TIMEOUT_S)
    connector = aiohttp.TCPConnector(limit=clients)
    headers = {"Authorization": f"Bearer {key}"}
    async with aiohttp.ClientSession(timeout=timeout, connector=connector, headers=headers) as session:

        async def client(number: int) -> None:
            stream = number % 2 == 0
            while time.monotonic() < deadline:
                results.append(await one_request(session, url, stream))
                # As the openai SDK does: wait as long as a 429/503 asks before the next request.
                await asyncio.sleep(min(results[-1].get("retry_after", 0.0), 2.0))

        async def chaos() -> None:
            started = time.monotonic()
            for at, action in events:
                await asyncio.sleep(max(0.0, started + at - time.monotonic()))
                await asyncio.to_thread(action)

        await asyncio.gather(chaos(), *(client(i) for i in range(clients)))
    return results


def report(results: list[dict]) -> str:
    kinds = collections.Counter(r["kind"] for r in results)
    over = [r for r in results if r.get("attempts") and r["seconds"] > FIRST_BYTE_S * r["attempts"] + 5]
    lines = [f"{len(results)} requests"]
    lines += [f"  {count:6d}  {kind}" for kind, count in kinds.most_common()]
    lines.append(f"  waits longer than {FIRST_BYTE_S:g}s x attempts (+5s to stream the answer): {len(over)}")
    lines.append(f"  longest wait: {max(r['seconds'] for r in results):.1f}s")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.chaos_load", description=__doc__)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--clients", type=int, default=32)
    args = parser.parse_args(argv)
    run_dir = ROOT / ".run" / "chaos-load"
    faulty = SimulatorProcess({"hanging": "hang", "limited": {"type": "429", "retry_after": 5}}, chunk_delay_ms=20)
    spare = SimulatorProcess(chunk_delay_ms=20)
    stack = Stack(run_dir, Ports.free())
    router_env = {
        "LLMAGG_CONFIG": str(write_config(run_dir / "config.yaml", routing_config(faulty, spare))),
        "LOAD_KEY": "sk-load-FAKE-0123456789",
        "ROUTER_FIRST_BYTE_TIMEOUT_S": str(FIRST_BYTE_S),
        "ROUTER_READ_TIMEOUT_S": "10",
        "ROUTER_CIRCUIT_OPEN_S": "5",
        "ROUTER_DRAIN_S": "2",
        "ROUTER_GRACE_S": "4",
        "ROUTER_LOG_LEVEL": "WARNING",
    }

    def restart_router() -> None:
        [router] = [p for p in stack.processes if p.name == "router"]
        router.process.send_signal(signal.SIGTERM)
        router.process.wait(30)
        stack.processes.remove(router)
        stack.start_service(service("router"), router_env)

    try:
        stack.start_services(router_env)
        stack.start_gateway()
        key = create_client_key(stack, "chaos-load")
        events = [(args.seconds / 3, restart_router), (2 * args.seconds / 3, lambda: spare.process.kill())]
        results = asyncio.run(load(f"{stack.base_url}/chat/completions", key, args.seconds, args.clients, events))
    finally:
        stack.stop()
        faulty.stop()
        spare.stop()
    text = report(results)
    print(text)
    Path(run_dir / "results.txt").write_text(text + "\n")
    bad = [r for r in results if "TRUNCATED" in r["kind"] or "EMPTY" in r["kind"] or "NOT OPENAI" in r["kind"]]
    served = [r for r in results if r["kind"] == "200 complete"]
    return 1 if bad or not served else 0  # a load nobody got an answer from proves nothing


if __name__ == "__main__":
    sys.exit(main())
