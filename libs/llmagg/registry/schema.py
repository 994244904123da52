"""Providers and their models, and the one schema every registry entry is checked against.

The shipped registry is checked completely (every field written out); the user's `providers:`
entries may leave fields to their defaults. Both are held to the same types, sets and ranges, and
an unknown key is an error, not a silent typo.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

PROTOCOLS = frozenset({"openai", "anthropic", "gemini", "cohere", "nlpcloud"})
AUTH_STYLES = frozenset({"bearer", "token", "x-api-key", "x-goog-api-key", "none"})
TIERS = frozenset({"free", "trial", "paid"})  # paid: bring your own key
MODEL_TYPES = frozenset({"chat", "embedding"})
# What a chat model can do beyond text: call tools, answer in JSON (any, or to a schema), read images.
CAPABILITIES = frozenset({"tools", "json_object", "json_schema", "vision"})
# Quota dimensions as providers publish them: requests or tokens per minute/hour/day/month.
COUNT_LIMITS = frozenset({"rpm", "rph", "rpd", "rpmonth", "tpm", "tph", "tpd", "tpmonth", "neurons_per_day"})
AMOUNT_LIMITS = frozenset({"credits_usd"})
PLACEHOLDERS = frozenset({"account_id", "project", "location", "workspace", "app"})
# How a provider lists its models (the discovery service reads it): the shape of the answer.
MODELS_APIS = frozenset({"openai", "openrouter", "gemini", "anthropic", "cohere", "none"})
_MODELS_API_BY_PROTOCOL = {"openai": "openai", "anthropic": "anthropic", "gemini": "gemini", "cohere": "cohere"}
_DATE = re.compile(r"^\d{4}-\d{2}(-\d{2})?$")

_SLUG = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
_ALIAS = re.compile(r"^[a-z0-9][a-z0-9.-]*$")
PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
_PLACEHOLDER_NAME = re.compile(r"^[a-z_]+$")


class RegistryError(ValueError):
    """A registry entry is malformed; the message names the entry and the field."""


@dataclass(frozen=True)
class Model:
    id: str
    type: str = "chat"
    context_window: int = 8192
    quality: int = 3
    aliases: tuple[str, ...] = ()
    free: bool = True
    name: str = ""
    limits: Mapping[str, float] = field(default_factory=dict)
    # None: not known (a request needing one may still go there, after models known to have it).
    capabilities: frozenset[str] | None = None
    max_output_tokens: int | None = None
    # What the provider charges paying customers, USD per million tokens: {input, output}. The usage
    # ledger reports what free use would have cost at it ("cost avoided").
    list_price: Mapping[str, float] = field(default_factory=dict)
    # Gone since then (YYYY-MM-DD): kept so that requests naming it get a clear answer, never routed.
    retired_on: str = ""
    retired_reason: str = ""


@dataclass(frozen=True)
class Provider:
    id: str
    name: str
    base_url: str
    protocol: str = "openai"
    auth: str = "bearer"
    tier: str = "free"
    speed: int = 3
    # Every model of an account draws on one quota (OpenRouter's `:free` models).
    shared_quota: bool = False
    limits: Mapping[str, float] = field(default_factory=dict)
    # Where its day and month windows reset: midnight (and the first of the month) in this IANA zone.
    reset_timezone: str = "UTC"
    models: tuple[Model, ...] = ()
    # Request fields this provider rejects; removed from the body before it is sent there.
    drop_params: frozenset[str] = frozenset()
    docs_url: str = ""
    notes: str = ""
    # The whole provider is gone since then (YYYY-MM-DD): none of its models is routed.
    retired_on: str = ""
    retired_reason: str = ""
    # The free tier (or the trial credits) ended then (YYYY-MM or YYYY-MM-DD); the tier says what is left.
    free_tier_ended_on: str = ""
    # How discovery lists its models: the answer's shape ("" follows the protocol) and where, when it
    # is not {base_url}/models.
    models_api: str = ""
    models_url: str = ""

    @property
    def listing_api(self) -> str:
        """The shape of the provider's model list: models_api, else the one its protocol implies."""
        return self.models_api or _MODELS_API_BY_PROTOCOL.get(self.protocol, "none")

    @property
    def retired(self) -> bool:
        return bool(self.retired_on)

    def model(self, model_id: str) -> Model | None:
        for model in self.models:
            if model.id == model_id:
                return model
        return None

    @property
    def placeholders(self) -> list[str]:
        """The `{names}` in base_url that each account fills from its `params`."""
        return PLACEHOLDER.findall(self.base_url)


# --- checks: each takes the value and where it stands, returns the value to keep ------------------
Check = Callable[[Any, str], Any]


def _text(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise RegistryError(f"{where} must be a non-empty string, got {value!r}")
    return value


def _flag(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise RegistryError(f"{where} must be true or false, got {value!r}")
    return value


def _one_of(allowed: frozenset[str]) -> Check:
    def check(value: Any, where: str) -> str:
        if value not in allowed:
            raise RegistryError(f"{where} must be one of {sorted(allowed)}, got {value!r}")
        return value

    return check


def _integer(low: int, high: int | None = None) -> Check:
    def check(value: Any, where: str) -> int:
        if not isinstance(value, int) or isinstance(value, bool) or value < low or (high and value > high):
            span = f"from {low} to {high}" if high else f"of at least {low}"
            raise RegistryError(f"{where} must be an integer {span}, got {value!r}")
        return value

    return check


def _slug(value: Any, where: str) -> str:
    if not isinstance(value, str) or not _SLUG.match(value):
        raise RegistryError(f"{where} must be lowercase letters, digits and single dashes, got {value!r}")
    return value


def _model_id(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value or value != value.strip() or " " in value:
        raise RegistryError(f"{where} must be a model id without spaces, got {value!r}")
    return value


def _base_url(value: Any, where: str) -> str:
    url = _text(value, where)
    if not url.startswith(("https://", "http://")) or " " in url:
        raise RegistryError(f"{where} must be an http(s) URL without spaces, got {value!r}")
    bad = [name for name in PLACEHOLDER.findall(url) if not _PLACEHOLDER_NAME.match(name)]
    if bad:
        raise RegistryError(f"{where}: placeholders {bad} must be lowercase names, e.g. {{account_id}}")
    return url.rstrip("/")


def _aliases(value: Any, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not value:
        raise RegistryError(f"{where} must be a non-empty list (leave it out rather than empty)")
    aliases = tuple(str(alias).lower() for alias in value)
    bad = [alias for alias in aliases if not _ALIAS.match(alias)]
    if bad:
        raise RegistryError(f"{where}: {bad} are not aliases (lowercase letters, digits, dots and dashes)")
    if len(set(aliases)) != len(aliases):
        raise RegistryError(f"{where} repeats an alias")
    return aliases


def _limits(value: Any, where: str) -> dict[str, float]:
    if not isinstance(value, Mapping) or not value:
        raise RegistryError(f"{where} must be a non-empty mapping (leave it out rather than empty)")
    unknown = set(value) - COUNT_LIMITS - AMOUNT_LIMITS
    if unknown:
        raise RegistryError(
            f"{where} has unknown limits {sorted(unknown)}; known: {sorted(COUNT_LIMITS | AMOUNT_LIMITS)}"
        )
    for key, amount in value.items():
        whole = isinstance(amount, int) and not isinstance(amount, bool)
        number = whole or isinstance(amount, float)
        if not (whole if key in COUNT_LIMITS else number) or amount <= 0:
            kind = "a positive integer" if key in COUNT_LIMITS else "a positive number"
            raise RegistryError(f"{where}.{key} must be {kind}, got {amount!r}")
    return dict(value)


def _list_price(value: Any, where: str) -> dict[str, float]:
    if not isinstance(value, Mapping) or set(value) != {"input", "output"}:
        raise RegistryError(f"{where} must be {{input: USD, output: USD}} per million tokens, got {value!r}")
    for key, amount in value.items():
        if isinstance(amount, bool) or not isinstance(amount, int | float) or amount < 0:
            raise RegistryError(f"{where}.{key} must be a number of at least 0, got {amount!r}")
    return {key: float(amount) for key, amount in value.items()}


def _timezone(value: Any, where: str) -> str:
    import zoneinfo

    try:
        zoneinfo.ZoneInfo(_text(value, where))
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise RegistryError(
            f"{where} must be an IANA time zone such as UTC or America/Los_Angeles, got {value!r}"
        ) from None
    return value


def check_limits(value: Any, where: str) -> dict[str, float]:
    """Limit overrides (an account's): the registry's names and ranges, whole numbers for counts."""
    return _limits(value, where)


def _capabilities(value: Any, where: str) -> frozenset[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise RegistryError(f"{where} must be a list (empty: none of {sorted(CAPABILITIES)})")
    unknown = set(value) - CAPABILITIES
    if unknown:
        raise RegistryError(f"{where} has unknown capabilities {sorted(unknown)}; known: {sorted(CAPABILITIES)}")
    return frozenset(value)


def _date(value: Any, where: str) -> str:
    """A date as YAML gives it (a date object, or YYYY-MM-DD / YYYY-MM text), kept as text."""
    text = value.isoformat() if hasattr(value, "isoformat") else value
    try:
        if not isinstance(text, str) or not _DATE.match(text):
            raise ValueError(text)
        datetime.date.fromisoformat(text if len(text) == 10 else f"{text}-01")
    except ValueError:
        raise RegistryError(f"{where} must be a date, YYYY-MM-DD or YYYY-MM; got {value!r}") from None
    return text


def _names(value: Any, where: str) -> frozenset[str]:
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
        raise RegistryError(f"{where} must be a non-empty list of field names")
    return frozenset(value)


@dataclass(frozen=True)
class _Field:
    check: Check
    required: bool = False  # in every entry, the user's too
    complete: bool = False  # in every shipped entry
    empty: bool = False  # an empty value means something (capabilities: []: none), rather than "left out"


MODEL_FIELDS: dict[str, _Field] = {
    "id": _Field(_model_id, required=True),
    "type": _Field(_one_of(MODEL_TYPES), complete=True),
    "context_window": _Field(_integer(1), complete=True),
    "quality": _Field(_integer(1, 5), complete=True),
    "aliases": _Field(_aliases),
    "free": _Field(_flag),
    "name": _Field(_text),
    "limits": _Field(_limits),
    "capabilities": _Field(_capabilities, empty=True),
    "max_output_tokens": _Field(_integer(1)),
    "list_price": _Field(_list_price),
    "retired_on": _Field(_date),
    "retired_reason": _Field(_text),
}

PROVIDER_FIELDS: dict[str, _Field] = {
    "id": _Field(_slug, required=True),
    "name": _Field(_text, complete=True),
    "protocol": _Field(_one_of(PROTOCOLS), complete=True),
    "base_url": _Field(_base_url, required=True),
    "auth": _Field(_one_of(AUTH_STYLES), complete=True),
    "tier": _Field(_one_of(TIERS), complete=True),
    "speed": _Field(_integer(1, 5), complete=True),
    "docs_url": _Field(_text, complete=True),
    "models": _Field(lambda value, where: value, complete=True),  # checked entry by entry below
    "shared_quota": _Field(_flag),
    "limits": _Field(_limits),
    "reset_timezone": _Field(_timezone),
    "notes": _Field(_text),
    "drop_params": _Field(_names),
    "retired_on": _Field(_date),
    "retired_reason": _Field(_text),
    "free_tier_ended_on": _Field(_date),
    "models_api": _Field(_one_of(MODELS_APIS)),
    "models_url": _Field(_base_url),
}


def _checked(entry: Any, fields: dict[str, _Field], where: str, complete: bool) -> dict[str, Any]:
    if not isinstance(entry, Mapping):
        raise RegistryError(f"{where} must be a mapping")
    unknown = set(entry) - set(fields)
    if unknown:
        raise RegistryError(f"{where} has unknown fields {sorted(unknown)}; known: {sorted(fields)}")
    checked = {}
    for name, spec in fields.items():
        value = entry.get(name)
        if spec.empty and value is not None:
            checked[name] = spec.check(value, f"{where}.{name}")
            continue
        if not complete and value in (None, [], {}) and not spec.required:
            value = None  # the user's entries may leave a field empty: it keeps its default
        if value is None:
            if name in entry and complete:
                raise RegistryError(f"{where}.{name} is empty (leave it out instead)")
            if spec.required or (complete and spec.complete):
                raise RegistryError(f"{where} is missing `{name}`")
            continue
        checked[name] = spec.check(value, f"{where}.{name}")
    return checked


def parse_model(entry: Any, where: str, default_free: bool, complete: bool = False) -> Model:
    if isinstance(entry, str) and not complete:
        entry = {"id": entry}
    where = f"{where} model {entry.get('id')!r}" if isinstance(entry, Mapping) else f"{where} model"
    fields = _checked(entry, MODEL_FIELDS, where, complete)
    fields.setdefault("free", default_free)
    _reason_with_date(fields, where)
    return Model(**fields)


def _reason_with_date(fields: dict[str, Any], where: str) -> None:
    if "retired_reason" in fields and "retired_on" not in fields:
        raise RegistryError(f"{where}: `retired_reason` needs `retired_on` (the date it was retired)")


def parse_provider(entry: Any, complete: bool = False) -> Provider:
    """One provider entry; `complete` (the shipped registry) requires every field to be written out."""
    where = f"provider {entry.get('id')!r}" if isinstance(entry, Mapping) else "provider"
    fields = _checked(entry, PROVIDER_FIELDS, where, complete)
    unknown = set(PLACEHOLDER.findall(fields["base_url"])) - PLACEHOLDERS
    if complete and unknown:
        raise RegistryError(
            f"{where}.base_url has unknown placeholders {sorted(unknown)}; known: {sorted(PLACEHOLDERS)}"
        )
    raw_models = fields.pop("models", [])
    if not isinstance(raw_models, list):
        raise RegistryError(f"{where}.models must be a list")
    default_free = fields.get("tier", "free") == "free"
    models = tuple(parse_model(m, where, default_free, complete) for m in raw_models)
    ids = [model.id for model in models]
    repeated = sorted({i for i in ids if ids.count(i) > 1})
    if repeated:
        raise RegistryError(f"{where}: models {repeated} are listed twice")
    fields.setdefault("name", fields["id"])
    _reason_with_date(fields, where)
    return Provider(models=models, **fields)
