"""Model-list parsers: what each provider's shape says, and garbage refused rather than read as an empty list."""

from __future__ import annotations

import pytest

from llmagg_discovery.domain import model_lists
from llmagg_discovery.domain.ports import SourceError
from llmagg_discovery.domain.probes import classify
from llmagg_discovery.domain.records import ProbeOutcome


def test_openai_style_lists_with_and_without_extra_fields():
    page = model_lists.openai_models(
        {
            "object": "list",
            "data": [{"id": "llama-3.3-70b", "context_window": 131072}, {"id": "m2", "type": "image"}, {"x": 1}],
        }
    )
    assert (page.models["llama-3.3-70b"].context_length, page.models["m2"].type) == (131072, "other")
    together = model_lists.openai_models([{"id": "t1", "type": "embedding", "context_length": 512}])
    assert (together.models["t1"].type, together.models["t1"].context_length) == ("embedding", 512)


def test_openrouter_keeps_free_models_and_known_ones_with_prices_and_expiry():
    payload = {
        "data": [
            {"id": "a/free:free", "name": "A", "context_length": 8192, "pricing": {"prompt": "0", "completion": "0"},
             "supported_parameters": ["tools"], "architecture": {"input_modalities": ["text", "image"]},
             "expiration_date": "2026-09-01"},
            {"id": "b/promo", "pricing": {"prompt": "0", "completion": "0"}},
            {"id": "c/paid", "pricing": {"prompt": "0.000001", "completion": "0.000002"}},
            {"id": "d/was-free", "pricing": {"prompt": "0.000001", "completion": "0.000002"}},
        ]
    }  # fmt: skip
    page = model_lists.openrouter_models(payload, known={"d/was-free"})
    assert set(page.models) == {"a/free:free", "b/promo", "d/was-free"}
    free = page.models["a/free:free"]
    assert (free.free, free.expiration_date, free.capabilities) == (True, "2026-09-01", ("tools", "vision"))
    assert page.models["d/was-free"].free is False and page.models["b/promo"].free is True


def test_paged_lists_say_where_the_next_page_starts():
    gemini = model_lists.gemini_models(
        {"models": [{"name": "models/g1", "supportedGenerationMethods": ["embedContent"]}], "nextPageToken": "2"}
    )
    assert (gemini.models["g1"].type, gemini.next_token) == ("embedding", "2")
    claude = model_lists.anthropic_models(
        {"data": [{"id": "c1", "display_name": "C1"}], "has_more": True, "last_id": "c1"}
    )
    assert (claude.models["c1"].name, claude.next_token) == ("C1", "c1")
    cohere = model_lists.cohere_models(
        {"models": [{"name": "embed-v4", "endpoints": ["embed"]}], "next_page_token": ""}
    )
    assert (cohere.models["embed-v4"].type, cohere.next_token) == ("embedding", None)


@pytest.mark.parametrize(
    ("parse", "payload"),
    [
        (model_lists.openai_models, {"error": {"message": "nope"}}),
        (model_lists.openai_models, "<html>"),
        (model_lists.openrouter_models, {"data": {"id": "x"}}),
        (model_lists.gemini_models, {"items": []}),
        (model_lists.cohere_models, None),
    ],
)
def test_garbage_is_refused_not_read_as_an_empty_list(parse, payload):
    with pytest.raises(SourceError, match="not a model list"):
        parse(payload)


def test_openrouter_key_says_free_tier_or_topped_up():
    free = model_lists.openrouter_key({"data": {"is_free_tier": True, "usage": 0.2, "limit": None}}, "or-1", 5.0)
    assert (free.free_tier, dict(free.limits), free.usage_usd, free.limit_usd) == (
        True,
        {"rpm": 20, "rpd": 50},
        0.2,
        None,
    )
    paid = model_lists.openrouter_key(
        {"data": {"is_free_tier": False, "limit": 10, "limit_remaining": 7.5}}, "or-2", 5.0
    )
    assert (dict(paid.limits)["rpd"], paid.limit_remaining_usd) == (1000, 7.5)
    with pytest.raises(SourceError):
        model_lists.openrouter_key({"data": {}}, "or-3", 5.0)


@pytest.mark.parametrize(
    ("status", "body", "outcome"),
    [
        (200, "", ProbeOutcome.OK),
        (410, "", ProbeOutcome.GONE),
        (404, '{"error": {"code": "model_not_found"}}', ProbeOutcome.GONE),
        (400, "The model `x` has been decommissioned", ProbeOutcome.GONE),
        (404, "Invalid URL (POST /v1/chat/completions)", ProbeOutcome.INCONCLUSIVE),
        (429, "", ProbeOutcome.INCONCLUSIVE),
        (401, "", ProbeOutcome.INCONCLUSIVE),
        (500, "", ProbeOutcome.FAILED),
        (529, "", ProbeOutcome.FAILED),
        (None, "", ProbeOutcome.FAILED),
    ],
)
def test_what_a_probe_answer_says_of_the_model(status, body, outcome):
    assert classify(status, body).outcome is outcome
