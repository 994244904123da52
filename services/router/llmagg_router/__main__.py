"""`python -m llmagg_router`: the router gRPC service."""

from __future__ import annotations

import logging
import sys

from llmagg.common.logging import configure_logging, log_fields
from llmagg.common.server import run, serve_until_signalled
from llmagg_router.domain.config import ConfigError
from llmagg_router.server import build_router, build_server, load_config, unsupported_protocols
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
    unsupported = unsupported_protocols(config, router.adapters)
    if unsupported:
        configured = sorted({a.account.provider for a in config.accounts} & set(unsupported))
        log.warning(
            "not routable, no adapter speaks their protocol yet: %s%s",
            ", ".join(f"{pid} ({protocol})" for pid, protocol in unsupported.items()),
            f"; the accounts of {', '.join(configured)} go unused" if configured else "",
            extra=log_fields(providers=list(unsupported), unused_accounts_of=configured),
        )
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
