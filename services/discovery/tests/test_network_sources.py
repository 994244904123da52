"""The network sources against the provider simulator (loopback only): every model-list shape, OpenRouter's
key, probes and their verdicts, conditional requests, and a provider that hangs or answers garbage failing alone."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from aiohttp import web

from llmagg.registry import merge_providers
from llmagg_devstack import SimulatorProcess
from llmagg_discovery.adapters.account_source import AccountLimitsSource
from llmagg_discovery.adapters.community_source import CommunitySource
from llmagg_discovery.adapters.http import HttpClient
from llmagg_discovery.adapters.model_list_source import ModelListSource
from llmagg_discovery.adapters.probe_source import ProbeSource
from llmagg_discovery.domain.baseline import registry_report
from llmagg_discovery.domain.catalogue import Catalogue, Policy
from llmagg_discovery.domain.ports import ProviderAccount, SourceContext
from llmagg_discovery.domain.probes import ProbePlan
from llmagg_discovery.domain.records import ModelKey, ProbeOutcome

from .helpers import SNAPSHOT, FakeAccounts

NAMES = {"openai": "nd-oai", "openrouter": "nd-or", "gemini": "nd-gem", "anthropic": "nd-claude", "cohere": "nd-co"}


@pytest.fixture(scope="module")
def sim(tmp_path_factory) -> Iterator[SimulatorProcess]:
    with SimulatorProcess(log_path=tmp_path_factory.mktemp("sim") / "sim.log") as simulator:
        yield simulator


@pytest.fixture
def providers(sim):
    for name in NAMES.values():
        sim.reset(name)
    root = sim.url
    return merge_providers(
        [
            {"id": NAMES["openai"], "base_url": f"{root}/{NAMES['openai']}/v1", "models": ["sim-small"]},
            {"id": NAMES["openrouter"], "base_url": f"{root}/{NAMES['openrouter']}/api/v1", "models_api": "openrouter"},
            {
                "id": NAMES["gemini"], "base_url": f"{root}/{NAMES['gemini']}/v1beta/openai", "models_api": "gemini",
                "models_url": f"{root}/{NAMES['gemini']}/v1beta/models",
            },
            {
                "id": NAMES["anthropic"], "base_url": f"{root}/{NAMES['anthropic']}/v1", "protocol": "anthropic",
                "auth": "x-api-key", "models": ["sim-small"],
            },
            {
                "id": NAMES["cohere"], "base_url": f"{root}/{NAMES['cohere']}/compatibility/v1", "models_api": "cohere",
                "models_url": f"{root}/{NAMES['cohere']}/v1/models",
            },
        ]
    )  # fmt: skip


@pytest.fixture
def context(providers):
    catalogue = Catalogue(Policy())
    catalogue.apply(registry_report(providers), 0.0)
    accounts = FakeAccounts(*(ProviderAccount(pid, f"{pid}-1", p.base_url) for pid, p in providers.items()))
    return SourceContext(providers, catalogue, accounts, 1000.0)


@pytest.fixture
async def http():
    client = HttpClient(timeout_s=2.0)
    yield client
    await client.close()


def models_of(report, provider):
    return {key.model: facts for key, facts in report.models.items() if key.provider == provider}


async def test_every_model_list_shape_is_read(sim, context, http):
    sim.set_models(
        NAMES["openrouter"], [{"id": "org/new:free", "context_length": 65536}, {"id": "org/paid", "free": False}]
    )
    report = await ModelListSource(http, 3600, 30).run(context)
    assert report.complete_for == frozenset(NAMES.values()) and report.authoritative and report.problems == ()
    for name in ("openai", "gemini", "anthropic", "cohere"):
        assert set(models_of(report, NAMES[name])) == {"sim-small", "sim-large", "sim-embed"}, name
    assert models_of(report, NAMES["gemini"])["sim-embed"].type == "embedding"
    assert models_of(report, NAMES["cohere"])["sim-embed"].type == "embedding"
    assert models_of(report, NAMES["gemini"])["sim-large"].context_length == 131072
    openrouter = models_of(report, NAMES["openrouter"])
    assert set(openrouter) == {"org/new:free"}  # a paid model is not for a free catalogue
    assert (openrouter["org/new:free"].free, openrouter["org/new:free"].context_length) == (True, 65536)
    assert "tools" in openrouter["org/new:free"].capabilities
    keys = {r["headers"].get("x-goog-api-key") for r in sim.requests(NAMES["gemini"])}
    assert keys == {"sk-test-FAKE-discovery-key"}
    assert {r["headers"].get("anthropic-version") for r in sim.requests(NAMES["anthropic"])} == {"2023-06-01"}


async def test_a_provider_that_hangs_or_answers_garbage_fails_alone(sim, context, http):
    sim.set_behaviour(NAMES["openai"], {"type": "hang", "max_hang_s": 10})
    sim.set_behaviour(NAMES["gemini"], "malformed_json")
    sim.set_models(NAMES["cohere"], [])
    report = await ModelListSource(http, 3600, 30).run(context)
    assert report.complete_for == frozenset({NAMES["openrouter"], NAMES["anthropic"]})
    problems = "\n".join(report.problems)
    assert f"{NAMES['openai']}: " in problems and "did not answer in time" in problems
    assert f"{NAMES['gemini']}: the answer (HTTP 200) is not JSON" in problems
    assert f"{NAMES['cohere']}: the model list is empty" in problems
    assert models_of(report, NAMES["openai"]) == {}


async def test_openrouter_says_whether_each_account_is_on_the_free_tier(context, http):
    report = await AccountLimitsSource(http, 900, 30).run(context)
    [status] = report.accounts[NAMES["openrouter"]]
    assert (status.alias, status.free_tier, dict(status.limits)) == (
        f"{NAMES['openrouter']}-1",
        True,
        {"rpm": 20, "rpd": 50},
    )


async def test_probes_judge_each_answer(sim, context, http):
    oai = NAMES["openai"]
    models = ["sim-small", {"id": "sim-embed", "type": "embedding"}, "gone-model", "broken-model", "limited-model"]
    sim.set_models(oai, [m if isinstance(m, str) else m["id"] for m in models])
    context.catalogue.apply(
        registry_report(merge_providers([{"id": oai, "base_url": "http://x/v1", "models": models}])), 0
    )
    sim.set_model_behaviour(oai, "gone-model", "410")
    sim.set_model_behaviour(oai, "broken-model", "500")
    sim.set_model_behaviour(oai, "limited-model", "429")
    context.now = 10_000.0
    report = await ProbeSource(http, ProbePlan(3600, 60, batch=10), 30, 2).run(context)
    verdicts = {key.model: verdict.outcome for key, verdict in report.verdicts.items() if key.provider == oai}
    assert verdicts == {
        "sim-small": ProbeOutcome.OK, "sim-embed": ProbeOutcome.OK, "gone-model": ProbeOutcome.GONE,
        "broken-model": ProbeOutcome.FAILED, "limited-model": ProbeOutcome.INCONCLUSIVE,
    }  # fmt: skip
    bodies = {r["body"]["model"]: r for r in sim.requests(oai)}
    assert bodies["sim-small"]["path"].endswith("/chat/completions") and bodies["sim-small"]["body"]["max_tokens"] == 1
    assert bodies["sim-embed"]["path"].endswith("/embeddings")
    assert report.verdicts[ModelKey(NAMES["anthropic"], "sim-small")].outcome is ProbeOutcome.OK
    assert sim.requests(NAMES["anthropic"])[-1]["path"].endswith("/v1/messages")


async def test_the_community_list_is_fetched_again_only_when_it_changed(context, http):
    seen: list[str | None] = []

    async def readme(request: web.Request) -> web.Response:
        seen.append(request.headers.get("If-None-Match"))
        if request.headers.get("If-None-Match") == '"v1"':
            return web.Response(status=304)
        return web.Response(text=SNAPSHOT.read_text(), headers={"ETag": '"v1"'})

    app = web.Application()
    app.router.add_get("/README.md", readme)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        source = CommunitySource(f"http://127.0.0.1:{port}/README.md", http, 3600, 30)
        first = await source.run(context)
        second = await source.run(context)
    finally:
        await runner.cleanup()
    assert seen == [None, '"v1"']
    assert first.models == second.models and len(first.providers) == 26


async def test_a_hanging_community_url_is_bounded_by_the_client_timeout(http, context):
    async def hang(request: web.Request) -> web.Response:
        await asyncio.sleep(30)
        return web.Response(text="late")

    app = web.Application()
    app.router.add_get("/README.md", hang)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    port = runner.addresses[0][1]
    try:
        with pytest.raises(Exception, match="did not answer in time"):
            await CommunitySource(f"http://127.0.0.1:{port}/README.md", http, 3600, 30).run(context)
    finally:
        await runner.cleanup()


async def test_a_model_list_that_quotes_the_accounts_key_is_ignored(sim, context, http):
    """A hostile or broken provider that puts the key it was sent into its model list (an id or any other field)
    must not carry it into the catalogue, and so to /v1/models: that listing is ignored whole."""
    key = "sk-test-FAKE-discovery-key"
    sim.set_models(NAMES["openai"], ["sim-small", f"leak-{key}"])
    sim.set_models(NAMES["cohere"], ["sim-small", f"sim-{key}-large"])
    sim.set_models(NAMES["openrouter"], [{"id": "org/new:free", "name": f"yours: {key}"}])
    report = await ModelListSource(http, 3600, 30).run(context)
    assert report.complete_for == frozenset({NAMES["gemini"], NAMES["anthropic"]})
    assert sorted(report.problems) == sorted(
        f"{NAMES[name]}: the model list quotes the account's key; ignored"
        for name in ("openai", "cohere", "openrouter")
    )
    assert key not in repr(report)
