"""Run the provider simulator.

    python -m llmagg_simulator --host 127.0.0.1 --port 0 \\
        --provider sim-ratelimited=429 --provider sim-slow=slow_first_byte,delay_s=0.2 --chunk-delay-ms 5

Prints `provider-simulator listening on http://HOST:PORT` once it accepts connections (the real port when
--port is 0), and stops cleanly on SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys

from aiohttp import web

from llmagg_simulator.app import build_app
from llmagg_simulator.faults import Fault, FaultError, parse_behaviour_option

SHUTDOWN_TIMEOUT_S = 0.5


async def serve(
    host: str, port: int, startup_defaults: dict[str, Fault], chunk_delay_s: float, access_log: bool
) -> None:
    runner = web.AppRunner(
        build_app(startup_defaults, chunk_delay_s),
        access_log=logging.getLogger("aiohttp.access") if access_log else None,
        handle_signals=False,
        handler_cancellation=True,  # a client that goes away ends its handler (hang, slow_first_byte, streams)
        shutdown_timeout=SHUTDOWN_TIMEOUT_S,
    )
    # Signal handlers first: whoever reads the listening line may stop us right away.
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await runner.setup()
    site = web.TCPSite(runner, host, port, backlog=1024)
    await site.start()
    bound_port = runner.addresses[0][1]
    print(f"provider-simulator listening on http://{host}:{bound_port}", flush=True)
    await stop.wait()
    await runner.cleanup()


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m llmagg_simulator",
        description="Simulated providers, one per URL prefix, each speaking OpenAI, Anthropic, Gemini and Cohere: "
        "http://HOST:PORT/<name>/v1/..., /<name>/v1beta/..., /<name>/v2/...",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port (printed once listening)")
    parser.add_argument(
        "--provider",
        action="append",
        default=[],
        metavar="NAME=BEHAVIOUR",
        help="default behaviour of provider NAME, e.g. sim-ratelimited=429 or sim-slow=slow_first_byte,delay_s=0.2 "
        "(repeatable; unnamed providers default to ok)",
    )
    parser.add_argument("--chunk-delay-ms", type=float, default=0.0, help="pause between stream chunks")
    parser.add_argument("--access-log", action="store_true", help="log every request to stderr (off: it costs time)")
    args = parser.parse_args(argv)
    if args.chunk_delay_ms < 0:
        parser.error("--chunk-delay-ms must not be negative")
    try:
        args.startup_defaults = dict(parse_behaviour_option(option) for option in args.provider)
    except FaultError as problem:
        parser.error(str(problem))
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.access_log:
        logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(message)s")
    try:
        import uvloop
    except ImportError:
        uvloop = None
    run = uvloop.run if uvloop else asyncio.run
    with contextlib.suppress(KeyboardInterrupt):
        run(serve(args.host, args.port, args.startup_defaults, args.chunk_delay_ms / 1000, args.access_log))
    return 0


if __name__ == "__main__":
    sys.exit(main())
