"""What the router's unit tests share: a small registry, accounts, a fake clock and a scripted upstream."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

from llmagg.common.secrets import Secret
from llmagg_router.domain.config import RoutingConfig, build_config
from llmagg_router.domain.ports import Headroom, Observed, QuotaKey, Reservation, Usage
from llmagg_router.domain.upstream import Candidate, Operation, UpstreamError

PROVIDERS = [
    {
        "id": "fast",
        "name": "Fast",
        "protocol": "openai",
        "base_url": "https://fast.example/v1",
        "speed": 5,
        "models": [
            {"id": "llama-8b", "quality": 1, "context_window": 8000, "aliases": ["llama-8b"], "capabilities": []},
            {"id": "llama-70b", "quality": 3, "context_window": 32000, "aliases": ["llama-70b"]},
        ],
    },
    {
        "id": "smart",
        "name": "Smart",
        "protocol": "openai",
        "base_url": "https://smart.example/v1",
        "speed": 2,
        "models": [
            {
                "id": "meta/llama-70b-instruct",
                "quality": 3,
                "context_window": 128000,
                "aliases": ["llama-70b"],
                "capabilities": ["tools", "json_schema"],
                "max_output_tokens": 4096,
            },
            {"id": "big-model", "quality": 5, "context_window": 200000},
            {"id": "embed-1", "type": "embedding", "context_window": 8000},
        ],
    },
    {
        "id": "paid",
        "name": "Paid",
        "protocol": "openai",
        "base_url": "https://paid.example/v1",
        "tier": "trial",
        "speed": 5,
        "models": [{"id": "llama-70b", "quality": 5, "context_window": 64000, "aliases": ["llama-70b"]}],
    },
    {
        "id": "shared",
        "name": "Shared quota",
        "protocol": "openai",
        "base_url": "https://shared.example/v1",
        "shared_quota": True,
        "drop_params": ["stream_options", "seed"],
        "models": [{"id": "a:free"}, {"id": "b:free"}],
    },
    {
        "id": "claude",
        "name": "Anthropic",
        "protocol": "anthropic",
        "base_url": "https://claude.example/v1",
        "auth": "x-api-key",
        "models": [{"id": "claude-x", "quality": 5}],
    },
]

ENV = {"KEY_A": "sk-test-aaaaaaaaaaaa", "KEY_B": "sk-test-bbbbbbbbbbbb", "KEY_C": "sk-test-cccccccccccc"}

ACCOUNTS = [
    {"provider": "fast", "alias": "fast-1", "api_key_env": "KEY_A"},
    {"provider": "fast", "alias": "fast-2", "api_key_env": "KEY_B"},
    {"provider": "smart", "alias": "smart-1", "api_key_env": "KEY_C"},
    {"provider": "paid", "alias": "paid-1", "api_key_env": "KEY_A"},
    {"provider": "shared", "alias": "shared-1", "api_key_env": "KEY_A"},
    {"provider": "claude", "alias": "claude-1", "api_key_env": "KEY_A"},
]


def make_config(accounts=None, chains=None) -> RoutingConfig:
    user: dict[str, Any] = {"accounts": ACCOUNTS if accounts is None else accounts}
    if chains:
        user["fallback_chains"] = chains
    return build_config(PROVIDERS, user, ENV)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        """What the router sleeps, recorded; time moves on at once."""
        self.slept.append(seconds)
        self.now += seconds


class ScriptedUpstream:
    """Answers per provider id from a script: an exception to raise, a dict, or a list of chunks.

    A chunk list may contain an UpstreamError, raised when the stream reaches it, and floats: seconds
    to pause there.
    """

    def __init__(self) -> None:
        self.script: dict[str, list[Any]] = {}
        self.calls: list[tuple[str, str, str, dict[str, Any]]] = []
        self.keys: list[str | None] = []
        self.called = asyncio.Event()
        self.streams_closed = 0
        self.joined: list[bool] = []  # per stream opened: whether its reader joins it whole

    def on(self, provider: str, *outcomes: Any) -> None:
        self.script.setdefault(provider, []).extend(outcomes)

    def _next(self, candidate: Candidate, key: Secret | None, body: dict[str, Any]) -> Any:
        self.calls.append((candidate.provider.id, candidate.account.alias, candidate.model_id, body))
        self.keys.append(key.reveal() if key else None)
        self.called.set()
        queue = self.script.get(candidate.provider.id)
        outcome = queue.pop(0) if queue else None
        if isinstance(outcome, UpstreamError):
            raise outcome
        return outcome

    async def request(
        self, candidate: Candidate, key: Secret | None, operation: Operation, body: dict[str, Any]
    ) -> dict[str, Any]:
        outcome = self._next(candidate, key, body)
        if outcome is None:
            return {"id": "r", "model": candidate.model_id, "choices": [{"message": {"content": "ok"}}]}
        return dict(outcome)

    @contextlib.asynccontextmanager
    async def stream(
        self,
        candidate: Candidate,
        key: Secret | None,
        body: dict[str, Any],
        max_bytes: int | None = None,
        joined: bool = False,
    ) -> AsyncIterator[AsyncIterator[dict]]:
        self.joined.append(joined)
        outcome = self._next(candidate, key, body)
        if outcome is None:
            chunks = content_chunks("ok")
        elif isinstance(outcome, dict):  # a whole answer, streamed as a provider would stream it
            chunks = as_chunks(outcome)
        else:
            chunks = outcome

        async def events():
            for chunk in chunks:
                if isinstance(chunk, UpstreamError):
                    raise chunk
                if isinstance(chunk, float):
                    await asyncio.sleep(chunk)
                    continue
                yield dict(chunk)

        try:
            yield events()
        finally:
            self.streams_closed += 1

    async def close(self) -> None:
        pass

    def attempted(self) -> list[tuple[str, str]]:
        return [(provider, alias) for provider, alias, _, _ in self.calls]


def content_chunks(*pieces: str) -> list[dict[str, Any]]:
    chunks = [{"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]}]
    chunks += [{"choices": [{"index": 0, "delta": {"content": p}}]} for p in pieces]
    chunks.append({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    return chunks


def as_chunks(completion: dict[str, Any]) -> list[dict[str, Any]]:
    """The stream a provider sends for `completion`: its content word by word, then its usage."""
    words = str(completion["choices"][0]["message"].get("content") or "").split(" ")
    chunks = content_chunks(*[w if i == 0 else f" {w}" for i, w in enumerate(words)])
    for chunk in chunks:
        chunk.update({k: v for k, v in completion.items() if k not in ("choices", "usage", "object")})
    if "usage" in completion:
        chunks.append({"choices": [], "usage": completion["usage"]})
    return chunks


class RecordingQuota:
    """A QuotaLedger that denies what it is told to and records every reservation and settlement."""

    def __init__(
        self, deny: dict[tuple[str, str], float] | None = None, headroom: dict[QuotaKey, Headroom] | None = None
    ) -> None:
        self.deny = dict(deny or {})  # (provider, account) -> retry-after seconds
        self.room = dict(headroom or {})
        self.reserved: list[tuple[str, str, str, int]] = []
        self.settled: list[tuple[str, str, Usage | None, str]] = []
        self.observed: list[Observed | None] = []
        self.clients: list[str] = []
        self.asked: list[list[QuotaKey]] = []

    async def reserve(self, key: QuotaKey, estimated_tokens: int, client_id: str = "") -> Reservation:
        self.reserved.append((key.provider, key.account, key.model, estimated_tokens))
        self.clients.append(client_id)
        wait = self.deny.get((key.provider, key.account))
        if wait is not None:
            return Reservation(key, granted=False, retry_after_s=wait)
        return Reservation(key, granted=True, id=f"r{len(self.reserved)}", client_id=client_id)

    async def settle(
        self, reservation: Reservation, usage: Usage | None, outcome: str, observed: Observed | None = None
    ) -> None:
        self.settled.append((reservation.key.provider, reservation.key.account, usage, outcome))
        self.observed.append(observed)

    async def headroom(self, keys: Sequence[QuotaKey]) -> Mapping[QuotaKey, Headroom]:
        self.asked.append(list(keys))
        return {key: self.room[key] for key in keys if key in self.room}


CHAT_BODY = {"model": "llama-70b", "messages": [{"role": "user", "content": "hi"}]}


# --- the native dialects' translation tests ------------------------------------------------------


def chat(model: str, *messages: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """An OpenAI chat body as the router hands it to an adapter."""
    return {"model": model, "messages": list(messages), **fields}


def user(content: Any) -> dict[str, Any]:
    return {"role": "user", "content": content}


def fed(translator: Any, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The chunks a stream translator makes of `events`, and of the clean end of the stream."""
    chunks = [chunk for event in events for chunk in translator.feed(event)]
    return chunks + list(translator.end())


def deltas(chunks: list[dict[str, Any]]) -> list[Any]:
    """Each chunk as (delta, finish_reason), or its usage for the usage chunk."""
    return [
        (c["choices"][0]["delta"], c["choices"][0]["finish_reason"]) if c["choices"] else c["usage"] for c in chunks
    ]
