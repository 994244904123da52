"""A request as the router reads it, once: what it asks for (`model`, `models`, `:variants`), how
(`provider` pin or OpenRouter's provider object, `model_quality`), what a model must be able to do
for it, what it is metered for, and the body that goes upstream. Its values are checked here too
(request_values.py): a request that gets past `parse_request` is walked with what it holds, never
read again.

What depends on the moment (the catalogue's known ids, which accounts exist, the pin's provider) is
the resolver's; the quality mode is checked there as well, so that it fails as a routed request does.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, replace
from typing import Any

from llmagg.common.errors import ErrorKind, ServiceError
from llmagg_router.domain.json_limits import MAX_JSON_DEPTH, too_deep
from llmagg_router.domain.preferences import (
    NO_PREFERENCES,
    AskedModel,
    Preferences,
    asked_models,
    needed_capabilities,
    parse_fallback_models,
    parse_provider_object,
)
from llmagg_router.domain.request_values import check_chat_values, check_embedding_values
from llmagg_router.domain.tokens import completion_allowance, estimate_prompt_tokens, requested_completion_tokens
from llmagg_router.domain.upstream import Operation

ROUTER_FIELDS = ("provider", "model_quality", "models")  # ours (and OpenRouter's); never sent upstream


@dataclass(frozen=True)
class CallerHints:
    """What the caller said about a request outside its body (gRPC metadata, HTTP headers)."""

    client_id: str = ""  # who is calling, as the gateway says (x-llmagg-client-id): usage is charged to it
    session: str | None = None  # x-session-id: keep this session on one account (see affinity.py)
    max_wait_s: float = 0.0  # x-llmagg-max-wait: wait this long for a rate-limited account instead of a 429
    hedge: bool | None = None  # x-llmagg-hedge: start the next candidate beside a slow one (None: the setting)


NO_HINTS = CallerHints()


@dataclass(frozen=True)
class ParsedRequest:
    model: str  # the first model asked for, as asked (`models` puts `model` first)
    provider: str | None  # our `provider` pin (OpenRouter's provider object is in `preferences`)
    quality: str | None  # `model_quality` as asked (the resolver checks it and defaults it to balanced)
    upstream_body: dict[str, Any]  # the body without the router's own fields
    preferences: Preferences = NO_PREFERENCES  # fallbacks, provider object, capabilities needed, answer cap
    operation: Operation = Operation.CHAT
    asked: tuple[AskedModel, ...] = ()  # `model` and the fallbacks, each split from its `:variant`
    prompt_tokens: int = 0  # estimated: models with a smaller window are skipped without a round trip
    allowance: int = 0  # the answer's tokens metered, before a candidate's window clamps them

    @property
    def model_type(self) -> str:
        return "chat" if self.operation is Operation.CHAT else "embedding"


def parse_request(body: Any, operation: Operation) -> ParsedRequest:
    """The request, checked and read; a ServiceError (400) names the first field that is wrong."""
    if not isinstance(body, dict):
        raise _invalid("The request body must be a JSON object.", "invalid_body", None)
    model = body.get("model")
    fallbacks: tuple[str, ...] = ()
    if body.get("models") is not None:
        model, fallbacks = parse_fallback_models(body["models"], model if isinstance(model, str) else None)
    if not isinstance(model, str) or not model:
        raise _invalid(
            "You must provide a model parameter (a model id, `provider/model` or `auto`).", "missing_model", "model"
        )
    if operation is Operation.CHAT:
        check_chat_values(body)
    elif "input" not in body:
        raise _invalid("You must provide an `input` parameter.", "missing_input", "input")
    else:
        check_embedding_values(body)
    if too_deep(body):
        raise _invalid(f"The request body nests more than {MAX_JSON_DEPTH} levels deep.", "invalid_json", None)
    if not isinstance(body.get("stream", False), bool):
        raise _invalid("`stream` must be a boolean.", "invalid_stream", "stream")
    provider = body.get("provider")
    preferences = NO_PREFERENCES
    if isinstance(provider, dict):  # OpenRouter's provider object; a string is our pin
        preferences = parse_provider_object(provider)
        provider = None
    quality = body.get("model_quality")
    for name, value in (("provider", provider), ("model_quality", quality)):
        if value is not None and not isinstance(value, str):
            raise _invalid(f"`{name}` must be a string or an object of routing preferences.", f"invalid_{name}", name)
    upstream = {k: v for k, v in body.items() if k not in ROUTER_FIELDS}
    limit = requested_completion_tokens(upstream)
    return ParsedRequest(
        model,
        provider or None,
        quality or None,
        upstream,
        _with_request_needs(preferences, upstream, fallbacks, limit),
        operation,
        asked_models(model, fallbacks),
        estimate_prompt_tokens(upstream),
        completion_allowance(upstream, limit),
    )


def _with_request_needs(
    preferences: Preferences, body: dict[str, Any], fallbacks: tuple[str, ...], limit: int | None
) -> Preferences:
    needs = needed_capabilities(body)
    if preferences is NO_PREFERENCES and not fallbacks:
        return _needing(needs, limit)  # the common request: one shared plan key per need and limit
    return replace(
        preferences,
        fallbacks=fallbacks,
        needs=needs,
        max_output_tokens=limit,
        fields=frozenset(body) if preferences.require_parameters else frozenset(),
    )


@functools.lru_cache(maxsize=1024)
def _needing(needs: frozenset[str], limit: int | None) -> Preferences:
    """No preferences but what a request needs: one object for each (the resolver finds its plan by it)."""
    if not needs and not limit:
        return NO_PREFERENCES
    return replace(NO_PREFERENCES, needs=needs, max_output_tokens=limit)


def _invalid(message: str, code: str, param: str | None) -> ServiceError:
    return ServiceError(ErrorKind.INVALID_ARGUMENT, message, code=code, param=param)
