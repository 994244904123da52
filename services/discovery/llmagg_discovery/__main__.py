"""`python -m llmagg_discovery`: the discovery gRPC service."""

from __future__ import annotations

import logging
import sys

from llmagg.common.server import serve_until_signalled, service_cli
from llmagg.common.sql import open_errors
from llmagg.registry import RegistryError
from llmagg_discovery.server import build_discovery, build_server, load_baseline
from llmagg_discovery.settings import DiscoverySettings

log = logging.getLogger("discovery")


async def main(settings: DiscoverySettings) -> None:
    discovery, http = build_discovery(settings, load_baseline(settings))
    try:
        await discovery.start()
    except open_errors() as problem:
        log.error("cannot open the catalogue store: %s: %s", type(problem).__name__, problem)
        await http.close()
        sys.exit(1)

    async def stop() -> None:
        await discovery.stop()
        await http.close()

    await serve_until_signalled(build_server(settings, discovery), on_stop=stop)


def cli() -> None:
    service_cli("discovery", DiscoverySettings(), main, (RegistryError, ValueError))


if __name__ == "__main__":
    cli()
