"""BYOK: a client's own provider key for one request (`x-provider-api-key` with a `provider` pin).

The key is used for that request only, through a KeySource of one account that exists for the
request's lifetime. It is never stored, logged or traced: the account's alias carries a short hash
of it (so cooldowns of one client's key do not bench another's), never the key.
"""

from __future__ import annotations

import hashlib

from llmagg.common.errors import ErrorKind, ServiceError
from llmagg.common.secrets import Secret
from llmagg.registry import Account, Provider
from llmagg_router.domain.ports import KeyOutcome


class OwnKey:
    """A KeySource with the one account of a request's own key."""

    generation = 0

    def __init__(self, provider: Provider, key: Secret) -> None:
        if provider.placeholders:
            raise ServiceError(
                ErrorKind.INVALID_ARGUMENT,
                f"{provider.id} needs account parameters ({', '.join(provider.placeholders)}) that a request "
                "cannot give: add the account instead (`llmagg accounts add`).",
                code="own_key_unsupported",
                param="provider",
            )
        fingerprint = hashlib.sha256(key.reveal().encode()).hexdigest()[:10]
        self._account = Account(provider.id, f"byok-{fingerprint}", provider.base_url)
        self._provider = provider.id
        self._key = key

    async def start(self) -> None:
        """Nothing to start."""

    async def close(self) -> None:
        """Nothing to close."""

    def accounts(self, provider: str) -> tuple[Account, ...]:
        return (self._account,) if provider == self._provider else ()

    def usable(self, account: Account) -> bool:
        return True

    async def lease(self, account: Account) -> Secret | None:
        return self._key

    async def report(self, account: Account, outcome: KeyOutcome) -> None:
        """A client's own key is not ours to disable."""
