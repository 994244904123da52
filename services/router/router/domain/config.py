"""The user's routing configuration (LLMAGG_CONFIG): accounts, extra providers, fallback chains.

Keys are never written in the file: an account names the environment variable that holds its key.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from router.domain.registry import Provider, RegistryError, merge_providers

log = logging.getLogger(__name__)

_PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")


class ConfigError(ValueError):
    """The configuration file is malformed; the message says where and how to fix it."""


class Secret:
    """A credential that never shows itself in repr, str, logs or tracebacks."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('****')"

    __str__ = __repr__


@dataclass(frozen=True)
class Account:
    provider: str
    alias: str
    key: Secret | None
    base_url: str  # the provider's base URL with this account's placeholders filled


@dataclass(frozen=True)
class ChainStep:
    provider: str
    model: str


@dataclass(frozen=True)
class RoutingConfig:
    providers: Mapping[str, Provider]
    accounts: tuple[Account, ...] = ()
    fallback_chains: Mapping[str, tuple[ChainStep, ...]] = field(default_factory=dict)

    def accounts_for(self, provider_id: str) -> tuple[Account, ...]:
        return tuple(a for a in self.accounts if a.provider == provider_id)


def _fill_placeholders(base_url: str, params: Mapping[str, Any], where: str) -> str:
    missing = [name for name in _PLACEHOLDER.findall(base_url) if name not in params]
    if missing:
        raise ConfigError(f"{where}: the provider's base_url needs `params: {{{missing[0]}: ...}}`")
    return _PLACEHOLDER.sub(lambda m: str(params[m.group(1)]), base_url)


def _parse_account(
    entry: Any, index: int, providers: Mapping[str, Provider], environ: Mapping[str, str]
) -> Account | None:
    where = f"accounts[{index}]"
    if not isinstance(entry, Mapping):
        raise ConfigError(f"{where}: must be a mapping with `provider` and `api_key_env`")
    if "api_key" in entry:
        raise ConfigError(
            f"{where}: keys are not written in the config file; export the key in an environment "
            "variable and name it with `api_key_env`"
        )
    provider_id = entry.get("provider")
    if provider_id not in providers:
        raise ConfigError(f"{where}: unknown provider {provider_id!r}; add it under `providers:` first")
    provider = providers[provider_id]
    alias = str(entry.get("alias") or f"{provider_id}-{index}")
    where = f"account {alias!r}"
    base_url = _fill_placeholders(provider.base_url, entry.get("params") or {}, where)
    env_name = entry.get("api_key_env")
    if provider.auth == "none":
        return Account(provider_id, alias, None, base_url)
    if not env_name:
        raise ConfigError(f"{where}: `api_key_env` (the environment variable holding the key) is required")
    value = environ.get(str(env_name), "")
    if not value:
        log.warning("account %s skipped: environment variable %s is not set", alias, env_name)
        return None
    return Account(provider_id, alias, Secret(value), base_url)


def _parse_chains(raw: Any, providers: Mapping[str, Provider]) -> dict[str, tuple[ChainStep, ...]]:
    if not isinstance(raw, Mapping):
        raise ConfigError("`fallback_chains` must map a chain name to a list of {provider, model}")
    chains: dict[str, tuple[ChainStep, ...]] = {}
    for name, steps in raw.items():
        if not isinstance(steps, list) or not steps:
            raise ConfigError(f"fallback chain {name!r}: must be a non-empty list of {{provider, model}}")
        parsed = []
        for step in steps:
            if not isinstance(step, Mapping) or not step.get("provider") or not step.get("model"):
                raise ConfigError(f"fallback chain {name!r}: every step needs `provider` and `model`")
            if step["provider"] not in providers:
                raise ConfigError(f"fallback chain {name!r}: unknown provider {step['provider']!r}")
            parsed.append(ChainStep(str(step["provider"]), str(step["model"])))
        chains[str(name)] = tuple(parsed)
    return chains


def build_config(
    shipped_providers: list[Mapping[str, Any]], user: Mapping[str, Any] | None, environ: Mapping[str, str]
) -> RoutingConfig:
    user = user or {}
    if not isinstance(user, Mapping):
        raise ConfigError("the configuration file must be a mapping with `accounts`, `providers`, ...")
    unknown = set(user) - {"providers", "accounts", "fallback_chains"}
    if unknown:
        raise ConfigError(f"unknown top-level keys {sorted(unknown)}; expected accounts, providers, fallback_chains")
    try:
        providers = merge_providers(shipped_providers, user.get("providers") or [])
    except RegistryError as exc:
        raise ConfigError(str(exc)) from exc
    accounts_raw = user.get("accounts") or []
    if not isinstance(accounts_raw, list):
        raise ConfigError("`accounts` must be a list")
    accounts = [_parse_account(entry, i, providers, environ) for i, entry in enumerate(accounts_raw)]
    usable = tuple(a for a in accounts if a is not None)
    aliases = [a.alias for a in usable]
    duplicates = {alias for alias in aliases if aliases.count(alias) > 1}
    if duplicates:
        raise ConfigError(f"account aliases must be unique; repeated: {sorted(duplicates)}")
    return RoutingConfig(
        providers=providers,
        accounts=usable,
        fallback_chains=_parse_chains(user.get("fallback_chains") or {}, providers),
    )
