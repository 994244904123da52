"""`python -m provider_simulator --port 0 --provider sim-ratelimited=429 ...`"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys

from aiohttp import web

from provider_simulator.app import build_app
from provider_simulator.faults import Fault, FaultError


async def serve(host: str, port: int, defaults: dict[str, Fault], chunk_delay_s: float) -> None:
    runner = web.AppRunner(build_app(defaults, chunk_delay_s), access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port, backlog=1024)
    await site.start()
    bound = runner.addresses[0][1]
    print(f"provider-simulator listening on http://{host}:{bound}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await runner.cleanup()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m provider_simulator", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port (printed on start)")
    parser.add_argument("--provider", action="append", default=[], metavar="NAME=BEHAVIOUR")
    parser.add_argument("--chunk-delay-ms", type=float, default=0.0, help="pause between stream chunks")
    args = parser.parse_args(argv)
    defaults = {}
    for item in args.provider:
        name, _, behaviour = item.partition("=")
        try:
            defaults[name], _ = Fault.parse(behaviour or "ok")
        except FaultError as exc:
            parser.error(str(exc))
    try:
        import uvloop
    except ImportError:
        uvloop = None
    with contextlib.suppress(KeyboardInterrupt):
        (uvloop.run if uvloop else asyncio.run)(serve(args.host, args.port, defaults, args.chunk_delay_ms / 1000))
    return 0


if __name__ == "__main__":
    sys.exit(main())
