"""`python -m llmagg_router`: the router gRPC service."""

from __future__ import annotations

import logging
import sys

from llmagg.common.logging import configure_logging, log_fields
from llmagg.common.server import run, serve_until_signalled
from llmagg_router.domain.config import ConfigError
from llmagg_router.server import build_router, build_server, load_config, warn_of_unsupported_protocols
from llmagg_router.settings import RouterSettings

log = logging.getLogger("router")


async def main(settings: RouterSettings) -> None:
    config = load_config(settings)
    router = build_router(settings, config)
    log.info(
        "loaded %d providers, %d accounts, %d fallback chains",
        len(config.providers),
        len(config.accounts),
        len(config.fallback_chains),
        extra=log_fields(routable=sorted(router.resolver.routable_providers)),
    )
    warn_of_unsupported_protocols(config, router.adapters)
    if not config.accounts:
        log.warning("no provider account is configured: chat requests will fail until one is added (see README)")

    async def close_adapters() -> None:
        for adapter in router.adapters.values():
            await adapter.close()

    await serve_until_signalled(build_server(settings, router), on_stop=close_adapters)


def cli() -> None:
    settings = RouterSettings()
    configure_logging("router", settings.log_level)
    try:
        run(main(settings))
    except ConfigError as exc:
        log.error("invalid configuration: %s", exc)
        sys.exit(2)


if __name__ == "__main__":
    cli()
