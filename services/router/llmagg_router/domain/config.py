"""The user's routing configuration (LLMAGG_CONFIG): accounts, extra providers, fallback chains.

Keys are never written in the file: an account names the environment variable that holds its key.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from llmagg.registry import ConfiguredAccount, Provider, RegistryError, merge_providers, parse_accounts


class ConfigError(ValueError):
    """The configuration file is malformed; the message says where and how to fix it."""


@dataclass(frozen=True)
class ChainStep:
    provider: str
    model: str


@dataclass(frozen=True)
class RoutingConfig:
    providers: Mapping[str, Provider]
    accounts: tuple[ConfiguredAccount, ...] = ()
    fallback_chains: Mapping[str, tuple[ChainStep, ...]] = field(default_factory=dict)


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
        accounts = parse_accounts(user.get("accounts") or [], providers, environ)
    except RegistryError as exc:
        raise ConfigError(str(exc)) from exc
    return RoutingConfig(
        providers=providers,
        accounts=accounts,
        fallback_chains=_parse_chains(user.get("fallback_chains") or {}, providers),
    )
