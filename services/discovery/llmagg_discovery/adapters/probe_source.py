"""Source `probe`: one cheap request (one output token) per chosen (provider, model), its answer judged.

Which models and how often: domain/probes.py. Probes go to OpenAI- and Anthropic-protocol providers
with an account; an embedding model is probed with a one-word embedding.
"""

from __future__ import annotations

import asyncio

from llmagg.registry import Provider
from llmagg_discovery.adapters.http import HttpClient
from llmagg_discovery.adapters.model_list_source import first_account_per_provider
from llmagg_discovery.adapters.provider_auth import auth_headers
from llmagg_discovery.domain.ports import ProviderAccount, SourceContext, SourceError
from llmagg_discovery.domain.probes import ProbePlan, classify, due_for_probe, short
from llmagg_discovery.domain.records import ModelKey, ProbeOutcome, SourceReport, Verdict

SOURCE = "probe"
PROBED_PROTOCOLS = frozenset({"openai", "anthropic"})
_CONCURRENCY = 4


def probe_request(provider: Provider, account: ProviderAccount, model: str, model_type: str) -> tuple[str, dict]:
    base = account.base_url.rstrip("/")
    if provider.protocol == "anthropic":
        return f"{base}/messages", {"model": model, "max_tokens": 1, "messages": [{"role": "user", "content": "Hi"}]}
    if model_type == "embedding":
        return f"{base}/embeddings", {"model": model, "input": "hi"}
    return f"{base}/chat/completions", {
        "model": model,
        "max_tokens": 1,
        "messages": [{"role": "user", "content": "Hi"}],
    }


class ProbeSource:
    name = SOURCE

    def __init__(self, http: HttpClient, plan: ProbePlan, timeout_s: float, request_timeout_s: float) -> None:
        self._http = http
        self._plan = plan
        self.interval_s = min(plan.interval_s, plan.retry_s)
        # Probes spend quota: a (re)start does not probe at once; what was probed lately is not due anyway.
        self.first_delay_s = plan.interval_s
        self.timeout_s = timeout_s
        self._request_timeout_s = request_timeout_s

    async def run(self, context: SourceContext) -> SourceReport:
        accounts = first_account_per_provider(await context.accounts.accounts())
        probeable = {
            pid for pid in accounts if pid in context.providers and context.providers[pid].protocol in PROBED_PROTOCOLS
        }
        catalogue = context.catalogue
        due = due_for_probe(catalogue.models.values(), probeable, self._plan, context.now)  # type: ignore[attr-defined]
        gate = asyncio.Semaphore(_CONCURRENCY)

        async def probe(key: ModelKey) -> Verdict:
            async with gate:
                provider, account = context.providers[key.provider], accounts[key.provider]
                model_type = catalogue.merged_model(key).type  # type: ignore[attr-defined]
                try:
                    headers = auth_headers(provider, await context.accounts.key(account), "openai")
                except Exception as problem:  # no key to be had: nothing is learned of the model
                    return Verdict(ProbeOutcome.INCONCLUSIVE, f"no key: {type(problem).__name__}")
                url, body = probe_request(provider, account, key.model, model_type)
                headers["Content-Type"] = "application/json"
                try:
                    answer = await self._http.request(
                        "POST", url, headers, json=body, timeout_s=self._request_timeout_s
                    )
                except SourceError as problem:
                    return classify(None, transport_error=short(str(problem)))
                return classify(answer.status, answer.text[:2000])

        verdicts = await asyncio.gather(*(probe(key) for key in due))
        return SourceReport(SOURCE, verdicts=dict(zip(due, verdicts, strict=True)))
