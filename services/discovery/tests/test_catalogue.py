"""The catalogue: fields merged by source rank with provenance, states, and every change recorded."""

from __future__ import annotations

import pytest

from llmagg_discovery.domain.baseline import registry_report
from llmagg_discovery.domain.catalogue import Catalogue, Policy
from llmagg_discovery.domain.records import (
    ChangeKind,
    ModelFacts,
    ModelKey,
    ModelState,
    Pricing,
    ProbeOutcome,
    ProviderFacts,
    SourceReport,
    Verdict,
)

from .helpers import REGISTRY

T0 = 1_800_000_000.0
LARGE, SMALL = ModelKey("acme", "acme-large"), ModelKey("acme", "acme-small")
NEW = ModelKey("acme", "acme-new")


def listing(*models: str, **facts) -> SourceReport:
    return SourceReport(
        "models",
        models={ModelKey("acme", m): ModelFacts(**facts) for m in models},
        complete_for=frozenset({"acme"}),
        authoritative=True,
    )


@pytest.fixture
def catalogue() -> Catalogue:
    catalogue = Catalogue(Policy(grace_s=3600, suspend_after=3))
    assert catalogue.apply(registry_report(REGISTRY), T0, record_changes=False) == []
    return catalogue


def kinds(changes):
    return [(c.kind, c.provider, c.model) for c in changes]


def test_the_registry_seeds_the_catalogue_and_its_retired_provider_is_retired(catalogue):
    assert catalogue.merged_model(LARGE).state is ModelState.ACTIVE
    gone = catalogue.merged_model(ModelKey("gone", "gone-1"))
    assert gone.state is ModelState.RETIRED and "2026-07-30: answers 410" in gone.state_reason
    assert catalogue.merged_provider("gone").state is ModelState.RETIRED


def test_a_model_a_provider_lists_is_added_and_routable(catalogue):
    changes = catalogue.apply(listing("acme-large", "acme-small", "acme-new", context_length=32768), T0 + 10)
    assert kinds(changes) == [
        (ChangeKind.UPDATED, "acme", "acme-large"),  # the API's context length beats the registry's
        (ChangeKind.ADDED, "acme", "acme-new"),
        (ChangeKind.UPDATED, "acme", "acme-small"),
    ]
    new = catalogue.merged_model(NEW)
    assert (new.state, new.context_length, new.provenance["context_length"], new.confidence) == (
        ModelState.ACTIVE,
        32768,
        "models",
        0.95,
    )
    assert catalogue.merged_model(LARGE).provenance == {
        "name": "registry", "type": "registry", "free": "registry", "context_length": "models", "quality": "registry",
        "aliases": "registry",
    }  # fmt: skip


def test_a_model_missing_from_its_list_is_retired_after_the_grace_period_not_before(catalogue):
    catalogue.apply(listing("acme-large", "acme-small"), T0)
    assert catalogue.apply(listing("acme-large"), T0 + 60) == []
    assert catalogue.reevaluate(T0 + 3000) == []
    changes = catalogue.reevaluate(T0 + 60 + 3600)
    assert kinds(changes) == [(ChangeKind.RETIRED, "acme", "acme-small")]
    assert "missing from models since" in changes[0].detail
    assert catalogue.merged_model(SMALL).state is ModelState.RETIRED  # kept, not deleted
    back = catalogue.apply(listing("acme-large", "acme-small"), T0 + 9000)
    assert kinds(back) == [(ChangeKind.RESTORED, "acme", "acme-small")]


def test_a_probe_that_answers_after_the_model_went_missing_keeps_it(catalogue):
    catalogue.apply(listing("acme-large", "acme-small"), T0)
    catalogue.apply(listing("acme-large"), T0 + 60)
    catalogue.apply(SourceReport("probe", verdicts={SMALL: Verdict(ProbeOutcome.OK)}), T0 + 120)
    assert catalogue.reevaluate(T0 + 99999) == []


def test_410_retires_at_once_and_three_failed_probes_suspend(catalogue):
    gone = catalogue.apply(SourceReport("probe", verdicts={LARGE: Verdict(ProbeOutcome.GONE, "HTTP 410 Gone")}), T0)
    assert kinds(gone) == [(ChangeKind.RETIRED, "acme", "acme-large")]
    assert catalogue.merged_model(LARGE).state_reason == "a probe found it gone: HTTP 410 Gone"
    failed = SourceReport("probe", verdicts={SMALL: Verdict(ProbeOutcome.FAILED, "HTTP 500")})
    assert catalogue.apply(failed, T0 + 1) == [] and catalogue.apply(failed, T0 + 2) == []
    assert kinds(catalogue.apply(failed, T0 + 3)) == [(ChangeKind.SUSPENDED, "acme", "acme-small")]
    limited = SourceReport("probe", verdicts={SMALL: Verdict(ProbeOutcome.INCONCLUSIVE, "HTTP 429")})
    assert catalogue.apply(limited, T0 + 4) == []
    ok = SourceReport("probe", verdicts={SMALL: Verdict(ProbeOutcome.OK)})
    assert kinds(catalogue.apply(ok, T0 + 5)) == [(ChangeKind.RESTORED, "acme", "acme-small")]


def test_community_limits_beat_the_registry_and_the_config_beats_both(catalogue):
    community = SourceReport("community", models={LARGE: ModelFacts(limits={"rpm": 10})}, complete_for=frozenset())
    changes = catalogue.apply(community, T0)
    assert kinds(changes) == [(ChangeKind.LIMITS_CHANGED, "acme", "acme-large")]
    assert changes[0].detail == "none -> rpm 10"
    catalogue.apply(SourceReport("config", models={LARGE: ModelFacts(limits={"rpm": 5})}), T0 + 1)
    merged = catalogue.merged_model(LARGE)
    assert (merged.limits, merged.provenance["limits"]) == ({"rpm": 5}, "config")


def test_a_model_only_the_community_names_is_unconfirmed_until_an_api_lists_it(catalogue):
    seen = SourceReport("community", models={NEW: ModelFacts(name="Acme New", display_name_only=False)})
    assert kinds(catalogue.apply(seen, T0)) == [(ChangeKind.ADDED, "acme", "acme-new")]
    assert catalogue.merged_model(NEW).state is ModelState.UNCONFIRMED
    confirmed = catalogue.apply(listing("acme-large", "acme-small", "acme-new"), T0 + 1)
    assert (ChangeKind.UPDATED, "acme", "acme-new") in kinds(confirmed)
    assert catalogue.merged_model(NEW).state is ModelState.ACTIVE


def test_pricing_and_provider_limits_changes_are_recorded(catalogue):
    catalogue.apply(listing("acme-large", "acme-small", free=True, pricing=Pricing("0", "0")), T0)
    priced = catalogue.apply(listing("acme-large", "acme-small", free=False, pricing=Pricing("1e-6", "2e-6")), T0 + 1)
    assert (ChangeKind.PRICING_CHANGED, "acme", "acme-large") in kinds(priced)
    limits = catalogue.apply(SourceReport("community", providers={"acme": ProviderFacts(limits={"rpd": 50})}), T0 + 2)
    assert kinds(limits) == [(ChangeKind.LIMITS_CHANGED, "acme", "")]


def test_a_new_free_model_gets_an_alias_and_a_quality_guess_from_its_id(catalogue):
    catalogue.apply(listing("acme-large", "acme-small", "vendor/acme-l-70b:free"), T0)
    catalogue.apply(listing("acme-large", "acme-small", "vendor/acme-l:free"), T0 + 1)
    guessed = catalogue.merged_model(ModelKey("acme", "vendor/acme-l:free"))
    assert (guessed.aliases, guessed.provenance["aliases"]) == (("acme-l",), "inferred")
    assert catalogue.merged_model(ModelKey("acme", "vendor/acme-l-70b:free")).quality == 3


def test_a_listed_model_of_no_stated_type_is_typed_from_its_id(catalogue):
    catalogue.apply(listing("acme-large", "acme-small", "whisper-large-v3", "acme-embed-2", "llama-guard-4"), T0)
    types = {
        m: catalogue.merged_model(ModelKey("acme", m)).type
        for m in ("whisper-large-v3", "acme-embed-2", "llama-guard-4")
    }
    assert types == {"whisper-large-v3": "other", "acme-embed-2": "embedding", "llama-guard-4": "other"}
    assert catalogue.merged_model(ModelKey("acme", "whisper-large-v3")).provenance["type"] == "inferred"


def test_a_provider_only_the_community_list_names_is_added_unconfirmed(catalogue):
    found = SourceReport("community", providers={"newco": ProviderFacts(name="NewCo", tier="free", credits_usd=5.0)})
    assert [(c.kind, c.provider, c.model, c.detail) for c in catalogue.apply(found, T0)] == [
        (ChangeKind.ADDED, "newco", "", "provider NewCo (unconfirmed)")
    ]
    merged = catalogue.merged_provider("newco")
    assert (merged.state, merged.tier, merged.credits_usd) == (ModelState.UNCONFIRMED, "free", 5.0)
    assert catalogue.merged_provider("acme").state is ModelState.ACTIVE
