"""`python -m llmagg_ratelimit`: the ratelimit gRPC service (and Envoy's rate-limit service)."""

from __future__ import annotations

import logging

from llmagg.common.logging import log_fields
from llmagg.common.server import serve_until_signalled, service_cli
from llmagg.registry import RegistryError
from llmagg_ratelimit.server import build_ratelimit, build_server
from llmagg_ratelimit.settings import RatelimitSettings

log = logging.getLogger("ratelimit")


async def main(settings: RatelimitSettings) -> None:
    ratelimit = build_ratelimit(settings)
    await ratelimit.start()
    log.info(
        "ledger ready",
        extra=log_fields(
            counters=settings.store, usage=settings.usage_store, providers=len(ratelimit.ledger.book.providers)
        ),
    )
    await serve_until_signalled(build_server(settings, ratelimit), on_stop=ratelimit.close)


def cli() -> None:
    service_cli("ratelimit", RatelimitSettings(), main, (RegistryError, ValueError))


if __name__ == "__main__":
    cli()
