"""The contract between the routing logic and the protocol adapters that talk to providers."""

from __future__ import annotations

import enum
import functools
import urllib.parse
from collections.abc import AsyncIterator, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any, Protocol

from llmagg.common.secrets import Secret
from llmagg.registry import Account, Model, Provider
from llmagg_router.domain.ports import QuotaKey


@dataclass(frozen=True)
class Candidate:
    """One way to serve a request: a provider's model through one account."""

    provider: Provider
    model_id: str
    model: Model | None  # None when the model is not in the registry and is passed through as given
    account: Account

    @property
    def context_window(self) -> int | None:
        return self.model.context_window if self.model else None

    @property
    def quota_model(self) -> str:
        """The model a cooldown applies to: "" where all of an account's models share one quota."""
        return "" if self.provider.shared_quota else self.model_id

    @property
    def quota_key(self) -> QuotaKey:
        """The quota ledger's key: the model asked for (the ledger knows which models share a pool)."""
        return QuotaKey(self.provider.id, self.account.alias, self.model_id)

    @property
    def model_circuit(self) -> str:
        """The circuit of answers that fail (5xx, timeouts, garbage): this provider's model."""
        return f"{self.provider.id}/{self.model_id}"

    @property
    def endpoint_circuit(self) -> str:
        """The circuit of connections that fail: the host every model of the account sits behind."""
        return endpoint_of(self.account.base_url)


@functools.lru_cache(maxsize=4096)
def endpoint_of(base_url: str) -> str:
    """scheme://host:port of a base URL."""
    parts = urllib.parse.urlsplit(base_url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return f"{parts.scheme}://{parts.hostname}:{port}"


class Operation(enum.Enum):
    CHAT = "chat"
    EMBEDDINGS = "embeddings"


class Failure(enum.Enum):
    """Why an attempt failed; decides whether and where the router falls over."""

    RATE_LIMITED = "rate_limited"  # 429/529: cool the account down, try the next one
    AUTH = "auth"  # 401/403: disable the account, try the next one
    SERVER = "server"  # 5xx: count toward the circuit, try the next one
    TIMEOUT = "timeout"
    CONNECT = "connect"
    BAD_RESPONSE = "bad_response"  # unparseable or cut short
    TOO_LARGE = "too_large"  # an answer larger than the router may pass on (says nothing of the provider's health)
    NOT_FOUND = "not_found"  # the provider does not serve this model (any more)
    CONTEXT_LENGTH = "context_length"  # only a larger-context model can help
    CLIENT = "client"  # the request itself is wrong: returned to the client, no fallback
    # The candidate's protocol cannot express the request (a tool type, several choices): the next
    # candidate may; this one was not called and learns nothing.
    UNSUPPORTED = "unsupported"


# Response headers that tell what is left of a provider's quota; the quota ledger learns from them.
QUOTA_HEADER_PREFIXES = ("x-ratelimit-", "anthropic-ratelimit-", "retry-after")
_MAX_QUOTA_HEADERS = 32


def quota_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """The rate-limit headers of a response, names lowercase, bounded in number and length."""
    found: dict[str, str] = {}
    for name, value in headers.items():
        lowered = name.lower()
        if lowered.startswith(QUOTA_HEADER_PREFIXES) and len(found) < _MAX_QUOTA_HEADERS:
            found[lowered] = value[:128]
    return found


class UpstreamAnswer(dict):
    """A provider's JSON answer, with the rate-limit headers it came with."""

    quota_headers: Mapping[str, str] = {}


class UpstreamError(Exception):
    def __init__(
        self,
        failure: Failure,
        message: str,
        *,
        status: int | None = None,
        retry_after_s: float | None = None,
        error: dict[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        quota_id: str = "",
    ) -> None:
        super().__init__(message)
        self.failure = failure
        self.message = message
        self.status = status
        self.retry_after_s = retry_after_s
        self.error = error  # the upstream's OpenAI-shaped `error` object, for client errors
        self.headers = dict(headers or {})  # its rate-limit headers (quota_headers)
        self.quota_id = quota_id  # Gemini's QuotaFailure quotaId of a 429


class ProviderAdapter(Protocol):
    """Speaks one wire protocol. Raises UpstreamError for every failure, never anything else."""

    async def request(
        self, candidate: Candidate, key: Secret | None, operation: Operation, body: dict[str, Any]
    ) -> dict[str, Any]:
        """One JSON request/response exchange (an UpstreamAnswer carries the rate-limit headers)."""
        ...

    def stream(
        self,
        candidate: Candidate,
        key: Secret | None,
        body: dict[str, Any],
        max_bytes: int | None = None,
        joined: bool = False,
    ) -> AbstractAsyncContextManager[AsyncIterator[dict[str, Any]]]:
        """Open a chat stream; iterate OpenAI-shaped chunks (`[DONE]` ends the iteration). The iterable it
        gives may carry the response's rate-limit headers as `quota_headers`.

        With `max_bytes`, a stream longer than that fails with Failure.TOO_LARGE (for a stream the
        router collects whole, rather than passing on as it comes). With `joined` the caller joins the
        chunks into one answer and takes the key out of that (KeyRedactor.answer): no text is held back
        from one chunk to the next for a key that could start in it."""
        ...

    async def close(self) -> None: ...
