"""Wires the credentials service from settings: store -> domain -> servicers -> server; start-up chores."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from llmagg.common.secrets import Secret
from llmagg.common.server import GrpcServer, ReadinessCheck, ServiceBinding
from llmagg.common.watch_streams import WatchStreams
from llmagg.registry import ConfiguredAccount, Provider, merge_providers, parse_accounts, read_yaml, registry_entries
from llmagg_credentials import authz_servicer, servicer, xds_servicer
from llmagg_credentials.backends import create_store
from llmagg_credentials.domain.access import Access
from llmagg_credentials.domain.accounts import AccountBook
from llmagg_credentials.domain.client_keys import ADMIN, ClientKeys
from llmagg_credentials.domain.key_table import KeyTableSource
from llmagg_credentials.domain.store import Store
from llmagg_credentials.settings import CredentialsSettings

log = logging.getLogger("credentials")


@dataclass(frozen=True)
class Credentials:
    store: Store
    accounts: AccountBook
    keys: ClientKeys
    access: Access
    key_table: KeyTableSource


def load_catalogue(
    settings: CredentialsSettings, environ: Mapping[str, str] = os.environ
) -> tuple[dict[str, Provider], tuple[ConfiguredAccount, ...]]:
    """The providers accounts may belong to (registry + LLMAGG_CONFIG) and the config's accounts."""
    user = (read_yaml(settings.config, "configuration file") if settings.config else None) or {}
    providers = merge_providers(registry_entries(settings.registry), user.get("providers") or [])
    return providers, parse_accounts(user.get("accounts") or [], providers, environ)


def _secret(value) -> Secret | None:
    return Secret(value.get_secret_value()) if value is not None else None


def build_credentials(settings: CredentialsSettings, providers: Mapping[str, Provider], store: Store | None = None):
    store = store or create_store(settings)
    keys = ClientKeys(store, cache_ttl_s=settings.authz_cache_ttl_s, env_admin_key=_secret(settings.admin_key))
    key_table = KeyTableSource(keys, poll_s=settings.key_table_poll_s)
    keys.after_change = key_table.publish  # an admin call returns with its key in effect at the gateways
    return Credentials(
        store=store,
        accounts=AccountBook(store, providers, cache_s=settings.store_cache_s),
        keys=keys,
        access=Access(keys),
        key_table=key_table,
    )


def build_server(settings: CredentialsSettings, credentials: Credentials) -> GrpcServer:
    streams = WatchStreams()  # the gateways' ECDS streams, ended as the service stops
    bindings = [
        ServiceBinding(
            servicer.SERVICE_NAME,
            servicer.CredentialsServicer(
                credentials.accounts, credentials.keys, credentials.access, settings.lease_ttl_s
            ),
            servicer.add_to_server,
        ),
        ServiceBinding(
            authz_servicer.SERVICE_NAME,
            authz_servicer.AuthorizationServicer(credentials.access),
            authz_servicer.add_to_server,
        ),
        ServiceBinding(
            xds_servicer.SERVICE_NAME,
            xds_servicer.ExtensionConfigServicer(credentials.key_table, streams),
            xds_servicer.add_to_server,
        ),
    ]
    # Not critical: with the store down, ext_authz keeps checking known keys and the router keeps its
    # leases; writes answer UNAVAILABLE and the `vault` health name says NOT_SERVING.
    vault = ReadinessCheck("vault", credentials.store.ping, critical=False)
    return GrpcServer("credentials", settings, bindings, readiness=[vault], companions=[streams])


def write_owner_only(path: Path, text: str) -> None:
    """Create `path` readable by its owner only, failing rather than overwriting."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(text)


async def ensure_admin_key(keys: ClientKeys, key_file: Path | None) -> Path | None:
    """With no admin key anywhere, make one and write it to `key_file`; returns the file when it did."""
    if key_file is None or key_file.exists() or await keys.has_admin():  # noqa: ASYNC240 (once, at start)
        return None
    record, secret = await keys.create("first admin key (made at first start)", ADMIN)
    write_owner_only(key_file, secret.reveal() + "\n")
    log.warning(
        "first start: an admin key (id %s) was written to %s. Use it with the CLI or curl:\n"
        "    export LLMAGG_ADMIN_KEY=$(cat %s)\n"
        "    llmagg keys create --name my-laptop      # a key for clients; llmagg --help for more",
        record.id,
        key_file,
        key_file,
    )
    return key_file
