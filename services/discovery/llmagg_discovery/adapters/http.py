"""HTTP for the network sources: one pooled aiohttp session, bounded answers, conditional requests.

A GET with a `cache_key` remembers the answer's ETag / Last-Modified and sends If-None-Match /
If-Modified-Since next time; a 304 hands back the remembered body (`not_modified`). Errors name the
failure, never a header: keys travel in headers only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson

from llmagg.common.logging import scrub
from llmagg_discovery.domain.ports import SourceError

MAX_BODY_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes
    not_modified: bool = False

    def json(self) -> Any:
        try:
            return orjson.loads(self.body)
        except orjson.JSONDecodeError:
            raise SourceError(f"the answer (HTTP {self.status}) is not JSON") from None

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")


@dataclass
class _Validators:
    etag: str | None
    last_modified: str | None
    body: bytes


class HttpClient:
    def __init__(self, timeout_s: float = 20.0, user_agent: str = "llm-aggregator-discovery") -> None:
        self._timeout = aiohttp.ClientTimeout(total=timeout_s, sock_connect=min(timeout_s, 10.0))
        self._user_agent = user_agent
        self._session: aiohttp.ClientSession | None = None
        self._validators: dict[str, _Validators] = {}

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=self._timeout,
                headers={"User-Agent": self._user_agent},
                connector=aiohttp.TCPConnector(limit=32),
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def _read(self, response: aiohttp.ClientResponse) -> bytes:
        chunks, size = [], 0
        async for chunk in response.content.iter_chunked(64 * 1024):
            size += len(chunk)
            if size > MAX_BODY_BYTES:
                raise SourceError(f"the answer is larger than {MAX_BODY_BYTES} bytes")
            chunks.append(chunk)
        return b"".join(chunks)

    async def request(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str] | None = None,
        json: Any = None,
        cache_key: str | None = None,
        timeout_s: float | None = None,
    ) -> Answer:
        sent = dict(headers or {})
        remembered = self._validators.get(cache_key) if cache_key else None
        if remembered is not None:
            if remembered.etag:
                sent["If-None-Match"] = remembered.etag
            if remembered.last_modified:
                sent["If-Modified-Since"] = remembered.last_modified
        options = {"timeout": aiohttp.ClientTimeout(total=timeout_s)} if timeout_s else {}  # else the session's
        try:
            async with self._client().request(
                method, url, headers=sent, data=orjson.dumps(json) if json is not None else None, **options
            ) as response:
                if response.status == 304 and remembered is not None:
                    return Answer(200, remembered.body, not_modified=True)
                body = await self._read(response)
                if cache_key and response.status == 200:
                    etag, modified = response.headers.get("ETag"), response.headers.get("Last-Modified")
                    if etag or modified:
                        self._validators[cache_key] = _Validators(etag, modified, body)
                return Answer(response.status, body)
        except TimeoutError:
            raise SourceError(f"{_where(url)} did not answer in time") from None
        except aiohttp.ClientError as problem:
            raise SourceError(f"{_where(url)}: {type(problem).__name__}") from None

    async def get_ok(self, url: str, headers: Mapping[str, str] | None = None, cache_key: str | None = None) -> Answer:
        """A GET that must answer 200 (or 304 for what was remembered)."""
        answer = await self.request("GET", url, headers, cache_key=cache_key)
        if answer.status != 200:
            raise SourceError(f"{_where(url)} answered HTTP {answer.status}: {scrub(answer.text[:200])}")
        return answer


def _where(url: str) -> str:
    """scheme://host/path of a URL (never its query, which some APIs put keys in)."""
    return url.split("?", 1)[0]
