"""Source `accounts`: what OpenRouter says of each account (/api/v1/key): free tier (50 free requests a
day) or topped up (1,000), usage and credit left. Its limits flow to the catalogue (and so to ratelimit)."""

from __future__ import annotations

import asyncio

from llmagg_discovery.adapters.http import HttpClient
from llmagg_discovery.adapters.provider_auth import auth_headers
from llmagg_discovery.domain import model_lists
from llmagg_discovery.domain.ports import SourceContext, SourceError
from llmagg_discovery.domain.records import AccountStatus, SourceReport

SOURCE = "accounts"


class AccountLimitsSource:
    name = SOURCE

    def __init__(self, http: HttpClient, interval_s: float, timeout_s: float) -> None:
        self._http = http
        self.interval_s = interval_s
        self.timeout_s = timeout_s

    async def run(self, context: SourceContext) -> SourceReport:
        accounts = [
            account
            for account in await context.accounts.accounts()
            if account.provider in context.providers and context.providers[account.provider].listing_api == "openrouter"
        ]

        async def status(account) -> AccountStatus:
            provider = context.providers[account.provider]
            headers = auth_headers(provider, await context.accounts.key(account), "openrouter")
            answer = await self._http.get_ok(f"{account.base_url.rstrip('/')}/key", headers)
            return model_lists.openrouter_key(answer.json(), account.alias, context.now)

        results = await asyncio.gather(*(status(a) for a in accounts), return_exceptions=True)
        found: dict[str, list[AccountStatus]] = {}
        problems = []
        for account, result in zip(accounts, results, strict=True):
            if isinstance(result, Exception):
                problems.append(f"{account.alias}: {result}")
            elif isinstance(result, BaseException):
                raise result
            else:
                found.setdefault(account.provider, []).append(result)
        if accounts and not found:
            raise SourceError("no account could be checked: " + "; ".join(problems))
        return SourceReport(
            SOURCE, accounts={pid: tuple(statuses) for pid, statuses in found.items()}, problems=tuple(problems)
        )
