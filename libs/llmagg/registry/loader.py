"""Read the provider registry: the shipped file, optionally replaced, merged with the user's entries."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from llmagg.registry.schema import Provider, RegistryError, parse_provider

SHIPPED_REGISTRY = Path(__file__).with_name("providers.yaml")


def read_yaml(path: Path, what: str) -> Any:
    """A YAML file's content; unreadable or invalid files raise RegistryError naming the file."""
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise RegistryError(f"cannot read the {what} {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise RegistryError(f"the {what} {path} is not valid YAML: {exc}") from None


def registry_entries(path: Path = SHIPPED_REGISTRY) -> list[Mapping[str, Any]]:
    """The raw provider entries of a registry file: a mapping with one key, `providers`, a list."""
    data = read_yaml(path, "provider registry")
    if not isinstance(data, Mapping) or set(data) != {"providers"} or not isinstance(data["providers"], list):
        raise RegistryError(f"the provider registry {path} must be a mapping with one key, `providers`, a list")
    return data["providers"]


def merge_providers(
    shipped: Iterable[Mapping[str, Any]], overrides: Iterable[Mapping[str, Any]] = (), *, complete: bool = False
) -> dict[str, Provider]:
    """Registry entries, then the user's: an entry with a known id replaces the fields it gives, one with
    a new id adds a provider. `complete` holds the registry entries to writing out every field (the
    shipped registry is held to it by its tests)."""
    raw: dict[str, dict[str, Any]] = {}
    for entry in shipped:
        provider = parse_provider(entry, complete=complete)
        if provider.id in raw:
            raise RegistryError(f"provider {provider.id!r} is listed twice in the registry")
        raw[provider.id] = dict(entry)
    for entry in overrides:
        if not isinstance(entry, Mapping) or "id" not in entry:
            raise RegistryError("every entry under `providers:` needs an `id`")
        raw[str(entry["id"])] = {**raw.get(str(entry["id"]), {}), **entry}
    return {provider_id: parse_provider(entry) for provider_id, entry in raw.items()}


def load_registry(
    path: Path = SHIPPED_REGISTRY, overrides: Iterable[Mapping[str, Any]] = (), *, complete: bool = False
) -> dict[str, Provider]:
    return merge_providers(registry_entries(path), overrides, complete=complete)
