"""Per-account limit overrides from the credentials service: its account listing, read every
`refresh_s` by the suite's credentials client (llmagg.credentials.client) and handed to the limit book.
While credentials cannot be reached the last listing stays in force (the `credentials` health name
says so)."""

from __future__ import annotations

from collections.abc import Sequence

from llmagg.common.secrets import Secret
from llmagg.credentials.client import CredentialsClient
from llmagg.credentials.v1 import credentials_pb2 as pb
from llmagg_ratelimit.domain.limits import LimitBook


class CredentialsLimits:
    def __init__(self, address: str, token: Secret | None, book: LimitBook, refresh_s: float = 5.0) -> None:
        self._client = CredentialsClient(address, token, refresh_s=refresh_s)
        self._book = book
        self.healthy = self._client.healthy

    async def start(self) -> None:
        await self._client.start()
        await self.refresh()
        self._client.poll(self._apply)

    async def close(self) -> None:
        await self._client.close()

    async def refresh(self) -> None:
        listed = await self._client.refresh()
        if listed is not None:
            self._apply(listed)

    def _apply(self, listed: Sequence[pb.Account], listing: int = 0) -> None:
        self._book.set_overrides({(item.provider, item.alias): dict(item.limits) for item in listed if item.limits})
