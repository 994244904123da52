"""Source `models`: every provider with an account, asked for its own model list.

One account per provider is used (the first the directory gives). Providers are asked concurrently
and fail alone: a provider that cannot be listed is named in the report's problems and left as it
was. A listing that would drop most of a provider's models at once is refused as suspect.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection

import orjson

from llmagg.registry import Provider
from llmagg.registry.schema import PLACEHOLDER
from llmagg_discovery.adapters.http import HttpClient
from llmagg_discovery.adapters.provider_auth import auth_headers
from llmagg_discovery.domain import model_lists
from llmagg_discovery.domain.ports import ProviderAccount, SourceContext, SourceError
from llmagg_discovery.domain.records import ModelFacts, ModelKey, ModelState, SourceReport

SOURCE = "models"
MAX_PAGES = 20
_CONCURRENCY = 8
# A listing that leaves out more than this share of the models it listed last time (and at least
# _SUSPECT_MIN of them) is refused rather than retiring them.
_SUSPECT_SHARE = 0.5
_SUSPECT_MIN = 4

_PAGE_QUERY = {
    "gemini": ("pageSize", "pageToken"),
    "anthropic": ("limit", "after_id"),
    "cohere": ("page_size", "page_token"),
}


def listing_url(provider: Provider, account: ProviderAccount) -> str:
    if provider.models_url:
        return provider.models_url
    return f"{account.base_url.rstrip('/')}/models"


def first_account_per_provider(accounts: Collection[ProviderAccount]) -> dict[str, ProviderAccount]:
    chosen: dict[str, ProviderAccount] = {}
    for account in accounts:
        chosen.setdefault(account.provider, account)
    return chosen


def _parser(api: str, known: Collection[str]) -> Callable[[object], model_lists.Page]:
    return {
        "openai": model_lists.openai_models,
        "openrouter": lambda payload: model_lists.openrouter_models(payload, known),
        "gemini": model_lists.gemini_models,
        "anthropic": model_lists.anthropic_models,
        "cohere": model_lists.cohere_models,
    }[api]


class ModelListSource:
    name = SOURCE

    def __init__(self, http: HttpClient, interval_s: float, timeout_s: float) -> None:
        self._http = http
        self.interval_s = interval_s
        self.timeout_s = timeout_s

    async def run(self, context: SourceContext) -> SourceReport:
        accounts = first_account_per_provider(await context.accounts.accounts())
        listable = {
            pid: (context.providers[pid], account)
            for pid, account in accounts.items()
            if pid in context.providers
            and context.providers[pid].listing_api != "none"
            and not context.providers[pid].retired
            and not PLACEHOLDER.search(context.providers[pid].models_url)
        }
        gate = asyncio.Semaphore(_CONCURRENCY)

        async def list_one(provider: Provider, account: ProviderAccount) -> dict[str, ModelFacts]:
            async with gate:
                return await self._list(provider, account, context)

        results = await asyncio.gather(*(list_one(p, a) for p, a in listable.values()), return_exceptions=True)
        models: dict[ModelKey, ModelFacts] = {}
        complete: set[str] = set()
        problems: list[str] = []
        for pid, result in zip(listable, results, strict=True):
            if isinstance(result, BaseException):
                if not isinstance(result, Exception):
                    raise result
                problems.append(f"{pid}: {result}")
                continue
            problem = _suspect(pid, result, context)
            if problem:
                problems.append(problem)
                continue
            complete.add(pid)
            models.update({ModelKey(pid, model_id): facts for model_id, facts in result.items()})
        if listable and not complete:
            raise SourceError("no provider's model list could be read: " + "; ".join(problems))
        return SourceReport(
            SOURCE, models=models, complete_for=frozenset(complete), authoritative=True, problems=tuple(problems)
        )

    async def _list(
        self, provider: Provider, account: ProviderAccount, context: SourceContext
    ) -> dict[str, ModelFacts]:
        api = provider.listing_api
        key = await context.accounts.key(account)
        headers = auth_headers(provider, key, api)
        known = {k.model for k in context.catalogue.models if k.provider == provider.id}  # type: ignore[attr-defined]
        parse = _parser(api, known)
        url = listing_url(provider, account)
        found: dict[str, ModelFacts] = {}
        token: str | None = None
        for page_number in range(MAX_PAGES):
            target = url
            if api in _PAGE_QUERY:
                size_name, token_name = _PAGE_QUERY[api]
                target += f"?{size_name}=1000" + (f"&{token_name}={token}" if token else "")
            cache_key = (
                f"{provider.id}:{account.alias}:{target}" if page_number == 0 and api not in _PAGE_QUERY else None
            )
            payload = (await self._http.get_ok(target, headers, cache_key)).json()
            if key is not None and _quotes(payload, key.reveal()):
                # Whatever a provider sends back may reach /v1/models: a listing carrying the key goes nowhere.
                raise SourceError("the model list quotes the account's key; ignored")
            page = parse(payload)
            found.update(page.models)
            token = page.next_token
            if not token:
                break
        if not found:
            raise SourceError("the model list is empty")
        return found


def _quotes(payload: object, key: str) -> bool:
    """Whether the key appears anywhere in a parsed answer (re-serialised, so JSON escapes cannot hide it)."""
    return bool(key) and key.encode() in orjson.dumps(payload)


def _suspect(provider_id: str, listed: dict[str, ModelFacts], context: SourceContext) -> str | None:
    catalogue = context.catalogue
    before = [
        key.model
        for key, record in catalogue.models.items()  # type: ignore[attr-defined]
        if key.provider == provider_id
        and SOURCE in record.sightings
        and record.sightings[SOURCE].missing_since is None
        and record.state is not ModelState.RETIRED
    ]
    dropped = [model for model in before if model not in listed]
    if len(dropped) >= _SUSPECT_MIN and len(dropped) > _SUSPECT_SHARE * len(before):
        return (
            f"{provider_id}: the list leaves out {len(dropped)} of the {len(before)} models it had; ignored as suspect"
        )
    return None
