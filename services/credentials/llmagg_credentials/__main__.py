"""`python -m llmagg_credentials`: the credentials gRPC service (and Envoy's ext_authz)."""

from __future__ import annotations

import asyncio
import logging

from llmagg.common.errors import ServiceError
from llmagg.common.logging import log_fields
from llmagg.common.server import serve_until_signalled, service_cli
from llmagg.registry import RegistryError
from llmagg_credentials.server import build_credentials, build_server, ensure_admin_key, load_catalogue
from llmagg_credentials.settings import CredentialsSettings

log = logging.getLogger("credentials")


async def main(settings: CredentialsSettings) -> None:
    providers, configured = load_catalogue(settings)
    credentials = build_credentials(settings, providers)
    try:
        await ensure_admin_key(credentials.keys, settings.admin_key_file)
        added, rotated = await credentials.accounts.import_configured(configured)
    except ServiceError as problem:
        # Serve anyway: ext_authz and health work, writes say the store is down until it is back.
        log.error("start-up chores skipped: %s", problem.message)
    else:
        log.info(
            "store ready: %s",
            credentials.store.describe(),
            extra=log_fields(imported=added, rotated_from_config=rotated),
        )
    # Every gateway's client keys (xDS) follow the store from here on.
    key_table = asyncio.create_task(credentials.key_table.run())
    try:
        await serve_until_signalled(build_server(settings, credentials))
    finally:
        key_table.cancel()


def cli() -> None:
    service_cli("credentials", CredentialsSettings(), main, (RegistryError,))


if __name__ == "__main__":
    cli()
