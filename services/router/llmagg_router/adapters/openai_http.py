"""The OpenAI wire protocol (also OpenRouter, Groq, Cerebras, NIM, ...): bodies and chunks pass as they are."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from llmagg.common.secrets import Secret
from llmagg_router.adapters.http_adapter import Exchange
from llmagg_router.adapters.http_upstream import auth_headers
from llmagg_router.adapters.upstream_errors import classify, clean
from llmagg_router.domain.upstream import Candidate, Failure, Operation, UpstreamError

_PATHS = {Operation.CHAT: "/chat/completions", Operation.EMBEDDINGS: "/embeddings"}


def _in_stream_error(chunk: dict[str, Any]) -> UpstreamError:
    error = chunk.get("error")
    message = clean(error.get("message") if isinstance(error, dict) else error, 300) or ""
    code = str(error.get("code", "")) if isinstance(error, dict) else ""
    failure = Failure.RATE_LIMITED if code in ("429", "rate_limit_exceeded") else Failure.SERVER
    return UpstreamError(failure, f"error event in stream: {message}")


class OpenAIChunks:
    """OpenAI chunks are passed on as they come; a chunk with an `error` key is an error."""

    def __init__(self) -> None:
        self._finished = False

    def feed(self, chunk: dict[str, Any]) -> Iterable[dict[str, Any]]:
        if "error" in chunk:
            raise _in_stream_error(chunk)
        if not self._finished:
            self._finished = any(choice.get("finish_reason") for choice in chunk.get("choices") or ())
        return (chunk,)

    def end(self) -> Iterable[dict[str, Any]]:
        if not self._finished:
            raise UpstreamError(Failure.BAD_RESPONSE, "the stream ended before the response was complete")
        return ()


def _same(response: dict[str, Any]) -> dict[str, Any]:
    return response


class OpenAIDialect:
    def exchange(
        self, candidate: Candidate, key: Secret | None, operation: Operation, body: dict[str, Any]
    ) -> Exchange:
        url = candidate.account.base_url + _PATHS[operation]
        return Exchange(url, auth_headers(candidate, key), body, _same, OpenAIChunks)

    def classify(self, status: int, headers: Mapping[str, str], raw: bytes) -> UpstreamError:
        return classify(status, headers, raw)
