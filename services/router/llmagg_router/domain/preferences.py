"""OpenRouter's routing fields, so that its users switch by changing the base URL: a `models` fallback
list, a `provider` object (order, only, ignore, allow_fallbacks, sort, require_parameters, max_price)
and the `:free` / `:nitro` / `:floor` model variants. Our own string `provider` pin stays.

Free models come before trial credits whatever the sort: spending credits is never the quiet default.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from llmagg.common.errors import ErrorKind, ServiceError

SORTS = ("price", "throughput", "latency")
# `model:variant` -> what it asks of the routing.
VARIANTS = {"free": "free", "nitro": "throughput", "floor": "price"}
CAPABILITY_FIELDS = ("tools", "tool_choice", "functions", "function_call")


@dataclass(frozen=True)
class Preferences:
    fallbacks: tuple[str, ...] = ()  # `models`, after `model`: tried in this order when it fails
    order: tuple[str, ...] = ()  # providers first, in this order
    only: frozenset[str] | None = None
    ignore: frozenset[str] = frozenset()
    allow_fallbacks: bool = True  # with `order`: the providers not in it may serve too
    sort: str | None = None
    require_parameters: bool = False  # only models known to take every capability the request uses
    free_only: bool = False
    needs: frozenset[str] = field(default_factory=frozenset)  # capabilities the request uses
    max_output_tokens: int | None = None  # the answer the request allows for
    fields: frozenset[str] = field(default_factory=frozenset)  # the request's fields (require_parameters only)

    def with_variant(self, variant: str) -> Preferences:
        wanted = VARIANTS[variant]
        if wanted == "free":
            return replace(self, free_only=True)
        return replace(self, sort=wanted)

    def admits_provider(self, provider_id: str) -> bool:
        if self.only is not None and provider_id not in self.only:
            return False
        if provider_id in self.ignore:
            return False
        return self.allow_fallbacks or not self.order or provider_id in self.order

    def order_position(self, provider_id: str) -> int:
        try:
            return self.order.index(provider_id)
        except ValueError:
            return len(self.order)


NO_PREFERENCES = Preferences()


def _invalid(message: str, param: str) -> ServiceError:
    return ServiceError(ErrorKind.INVALID_ARGUMENT, message, code="invalid_provider_preferences", param=param)


def _slugs(value: Any, name: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _invalid(f"`provider.{name}` must be a list of provider ids.", f"provider.{name}")
    return tuple(v.lower() for v in value)


def _sort(value: Any) -> str:
    by = value.get("by") if isinstance(value, Mapping) else value  # OpenRouter also takes {"by": ...}
    if by not in SORTS:
        raise _invalid(f"`provider.sort` must be one of {', '.join(SORTS)}; got {by!r}.", "provider.sort")
    return by


def _only_free(max_price: Any) -> bool:
    """`max_price` with every price at 0: free models only. The router knows no prices beyond free or
    not, so a positive ceiling admits every model."""
    if not isinstance(max_price, Mapping) or not max_price:
        raise _invalid('`provider.max_price` must be an object of prices, e.g. {"prompt": 0}.', "provider.max_price")
    prices = list(max_price.values())
    if not all(isinstance(p, int | float) and not isinstance(p, bool) and p >= 0 for p in prices):
        raise _invalid("`provider.max_price` prices must be numbers of at least 0.", "provider.max_price")
    return all(p == 0 for p in prices)


def parse_provider_object(value: Mapping[str, Any]) -> Preferences:
    """OpenRouter's `provider` object. Fields it does not know (data_collection, quantizations, ...) are
    ignored, as OpenRouter's own clients may send them."""
    preferences: dict[str, Any] = {}
    for name in ("order", "only", "ignore"):
        if value.get(name) is not None:
            preferences[name] = _slugs(value[name], name)
    if "only" in preferences:
        preferences["only"] = frozenset(preferences["only"])
    if "ignore" in preferences:
        preferences["ignore"] = frozenset(preferences["ignore"])
    for name in ("allow_fallbacks", "require_parameters"):
        if value.get(name) is not None:
            if not isinstance(value[name], bool):
                raise _invalid(f"`provider.{name}` must be a boolean.", f"provider.{name}")
            preferences[name] = value[name]
    if value.get("sort") is not None:
        preferences["sort"] = _sort(value["sort"])
    if value.get("max_price") is not None:
        preferences["free_only"] = _only_free(value["max_price"])
    return Preferences(**preferences)


def parse_fallback_models(value: Any, model: str | None) -> tuple[str, tuple[str, ...]]:
    """`models` (and `model`, which goes first when both are given): the first to try and the rest."""
    if not isinstance(value, list) or not value or not all(isinstance(m, str) and m for m in value):
        raise ServiceError(
            ErrorKind.INVALID_ARGUMENT,
            "`models` must be a non-empty list of model ids, tried in order.",
            code="invalid_models",
            param="models",
        )
    ordered = list(dict.fromkeys([model, *value] if model else value))
    return ordered[0], tuple(ordered[1:])


def split_variant(model: str) -> tuple[str, str | None]:
    """`llama-3.3-70b:free` -> (`llama-3.3-70b`, `free`); ids without a known variant stay whole."""
    base, colon, variant = model.rpartition(":")
    if colon and base and variant in VARIANTS:
        return base, variant
    return model, None


@dataclass(frozen=True)
class AskedModel:
    """A model a request asks for, split from its `:variant` (the resolver keeps it whole when the
    whole id is a model's own, as OpenRouter's `...:free` ids are)."""

    id: str  # as asked
    base: str  # without the variant
    variant: str | None


_KEPT_MODEL_CHARS = 256  # ids come from clients: only short ones are kept (and only so many, below)


def asked_models(model: str, fallbacks: tuple[str, ...] = ()) -> tuple[AskedModel, ...]:
    """`model` then its fallbacks, in the order they are tried."""
    if not fallbacks and len(model) <= _KEPT_MODEL_CHARS:
        return _asked_alone(model)
    return tuple(AskedModel(m, *split_variant(m)) for m in (model, *fallbacks))


@functools.lru_cache(maxsize=1024)
def _asked_alone(model: str) -> tuple[AskedModel, ...]:
    """A model asked without fallbacks (most requests): one tuple for each, which the resolver's plans are
    found by."""
    return (AskedModel(model, *split_variant(model)),)


def needed_capabilities(body: Mapping[str, Any]) -> frozenset[str]:
    """What a model must be able to do for this request: call tools, follow a JSON schema, see images."""
    needs = set()
    if any(body.get(name) for name in CAPABILITY_FIELDS):
        needs.add("tools")
    response_format = body.get("response_format")
    if isinstance(response_format, Mapping) and response_format.get("type") in ("json_schema", "json_object"):
        needs.add(str(response_format["type"]))
    if _has_images(body.get("messages")):
        needs.add("vision")
    return frozenset(needs)


def _has_images(messages: Any) -> bool:
    if not isinstance(messages, list):
        return False
    for message in messages:
        content = message.get("content") if isinstance(message, Mapping) else None
        if isinstance(content, list) and any(
            isinstance(part, Mapping) and part.get("type") in ("image_url", "input_image") for part in content
        ):
            return True
    return False
