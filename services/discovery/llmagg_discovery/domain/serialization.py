"""Catalogue records <-> plain JSON-able dicts, the form the stores keep them in."""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from llmagg_discovery.domain.records import (
    AccountStatus,
    ModelFacts,
    ModelKey,
    ModelRecord,
    ModelState,
    Pricing,
    ProbeRecord,
    ProviderFacts,
    ProviderRecord,
    Sighting,
)

_TUPLES = {"aliases", "capabilities", "notes"}


def _facts_to_dict(facts: ModelFacts | ProviderFacts) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in fields(facts):
        value = getattr(facts, item.name)
        if value is None or (item.name == "display_name_only" and not value):
            continue
        if isinstance(value, Pricing):
            value = {"prompt": value.prompt, "completion": value.completion}
        elif isinstance(value, tuple):
            value = list(value)
        elif item.name == "limits":
            value = dict(value)
        out[item.name] = value
    return out


def _facts_from_dict(kind: type, data: dict[str, Any]):
    known = {item.name for item in fields(kind)}
    values: dict[str, Any] = {}
    for name, value in data.items():
        if name not in known:
            continue  # written by a newer version: ignored rather than fatal
        if name == "pricing" and isinstance(value, dict):
            value = Pricing(**value)
        elif name in _TUPLES and isinstance(value, list):
            value = tuple(value)
        values[name] = value
    return kind(**values)


def model_to_dict(record: ModelRecord) -> dict[str, Any]:
    return {
        "provider": record.key.provider,
        "model": record.key.model,
        "claims": {source: _facts_to_dict(facts) for source, facts in record.claims.items()},
        "sightings": {
            source: {"first": s.first, "last": s.last, "missing_since": s.missing_since}
            for source, s in record.sightings.items()
        },
        "first_seen": record.first_seen,
        "probe": {item.name: getattr(record.probe, item.name) for item in fields(ProbeRecord)},
        "state": record.state.value,
        "state_reason": record.state_reason,
        "state_since": record.state_since,
    }


def model_from_dict(data: dict[str, Any]) -> ModelRecord:
    return ModelRecord(
        key=ModelKey(data["provider"], data["model"]),
        claims={source: _facts_from_dict(ModelFacts, facts) for source, facts in data.get("claims", {}).items()},
        sightings={source: Sighting(**seen) for source, seen in data.get("sightings", {}).items()},
        first_seen=data.get("first_seen", 0.0),
        probe=ProbeRecord(**data.get("probe", {})),
        state=ModelState(data.get("state", "active")),
        state_reason=data.get("state_reason", ""),
        state_since=data.get("state_since", 0.0),
    )


def provider_to_dict(record: ProviderRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "claims": {source: _facts_to_dict(facts) for source, facts in record.claims.items()},
        "first_seen": record.first_seen,
        "last_seen": record.last_seen,
        "accounts": [
            {**{item.name: getattr(a, item.name) for item in fields(AccountStatus)}, "limits": dict(a.limits)}
            for a in record.accounts
        ],
        "state": record.state.value,
        "state_reason": record.state_reason,
    }


def provider_from_dict(data: dict[str, Any]) -> ProviderRecord:
    return ProviderRecord(
        id=data["id"],
        claims={source: _facts_from_dict(ProviderFacts, facts) for source, facts in data.get("claims", {}).items()},
        first_seen=data.get("first_seen", 0.0),
        last_seen=data.get("last_seen", 0.0),
        accounts=tuple(AccountStatus(**a) for a in data.get("accounts", [])),
        state=ModelState(data.get("state", "active")),
        state_reason=data.get("state_reason", ""),
    )
