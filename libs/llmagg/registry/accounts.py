"""Provider accounts: who an account belongs to, its alias, and the URL it is reached at.

Key material is not part of an account: a key source leases it when an attempt needs it. The user's
config file names the environment variable that holds each key, never the key itself.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from llmagg.common.secrets import Secret
from llmagg.registry.schema import PLACEHOLDER, Provider, RegistryError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Account:
    provider: str
    alias: str
    base_url: str  # the provider's base URL with this account's placeholders filled


@dataclass(frozen=True)
class ConfiguredAccount:
    """An account from the config file and the key its environment variable holds (None: no auth)."""

    account: Account
    key: Secret | None
    params: Mapping[str, str] = field(default_factory=dict)  # what filled the base URL's placeholders


def fill_placeholders(base_url: str, params: Mapping[str, Any], where: str) -> str:
    missing = [name for name in PLACEHOLDER.findall(base_url) if name not in params]
    if missing:
        raise RegistryError(f"{where}: the provider's base_url needs `params: {{{missing[0]}: ...}}`")
    return PLACEHOLDER.sub(lambda m: str(params[m.group(1)]), base_url)


def parse_account(
    entry: Any, index: int, providers: Mapping[str, Provider], environ: Mapping[str, str]
) -> ConfiguredAccount | None:
    """One `accounts:` entry; None (with a warning naming the variable) when its key variable is unset."""
    where = f"accounts[{index}]"
    if not isinstance(entry, Mapping):
        raise RegistryError(f"{where}: must be a mapping with `provider` and `api_key_env`")
    if "api_key" in entry:
        raise RegistryError(
            f"{where}: keys are not written in the config file; export the key in an environment "
            "variable and name it with `api_key_env`"
        )
    unknown = set(entry) - {"provider", "alias", "api_key_env", "params"}
    if unknown:
        raise RegistryError(f"{where}: unknown fields {sorted(unknown)}; known: alias, api_key_env, params, provider")
    provider_id = entry.get("provider")
    if provider_id not in providers:
        raise RegistryError(f"{where}: unknown provider {provider_id!r}; add it under `providers:` first")
    provider = providers[provider_id]
    alias = str(entry.get("alias") or f"{provider_id}-{index}")
    where = f"account {alias!r}"
    params = entry.get("params") or {}
    if not isinstance(params, Mapping):
        raise RegistryError(f"{where}: `params` must be a mapping")
    account = Account(provider_id, alias, fill_placeholders(provider.base_url, params, where))
    params = {str(k): str(v) for k, v in params.items()}
    if provider.auth == "none":
        return ConfiguredAccount(account, None, params)
    env_name = entry.get("api_key_env")
    if not env_name:
        raise RegistryError(f"{where}: `api_key_env` (the environment variable holding the key) is required")
    value = environ.get(str(env_name), "")
    if not value:
        log.warning("account %s skipped: environment variable %s is not set", alias, env_name)
        return None
    return ConfiguredAccount(account, Secret(value), params)


def parse_accounts(
    raw: Any, providers: Mapping[str, Provider], environ: Mapping[str, str]
) -> tuple[ConfiguredAccount, ...]:
    """The `accounts:` list: usable accounts in the order written, aliases unique."""
    if not isinstance(raw, list):
        raise RegistryError("`accounts` must be a list")
    parsed = [parse_account(entry, i, providers, environ) for i, entry in enumerate(raw)]
    usable = tuple(a for a in parsed if a is not None)
    aliases = [a.account.alias for a in usable]
    repeated = sorted({alias for alias in aliases if aliases.count(alias) > 1})
    if repeated:
        raise RegistryError(f"account aliases must be unique; repeated: {repeated}")
    return usable
