"""The catalog in the OpenAI format, and in OpenRouter's (`/api/v1/models`, `/api/v1/key`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from llmagg_simulator.catalog import CREATED, MODELS, SimModel

# What OpenRouter's /api/v1/key says of every simulated key: a free-tier account.
KEY_DATA = {
    "label": "sk-or-v1-sim...",
    "limit": None,
    "limit_remaining": None,
    "usage": 0,
    "usage_daily": 0,
    "is_free_tier": True,
}


def model(provider: str, model_id: str) -> dict[str, Any]:
    return {"id": model_id, "object": "model", "created": CREATED, "owned_by": provider}


def model_list(provider: str, models: Sequence[SimModel] = MODELS) -> dict[str, Any]:
    return {"object": "list", "data": [model(provider, m.id) for m in models]}


def _price(model: SimModel) -> str:
    return "0" if model.free or model.id.endswith(":free") else "0.000001"


def openrouter_model(model: SimModel) -> dict[str, Any]:
    return {
        "id": model.id,
        "canonical_slug": model.id,
        "name": model.display_name,
        "created": CREATED,
        "description": f"{model.display_name}, a simulated model.",
        "context_length": model.input_token_limit,
        "architecture": {"modality": "text->text", "input_modalities": ["text"], "output_modalities": ["text"]},
        "pricing": {"prompt": _price(model), "completion": _price(model), "request": "0", "image": "0"},
        "top_provider": {
            "context_length": model.input_token_limit,
            "max_completion_tokens": model.output_token_limit,
            "is_moderated": False,
        },
        "per_request_limits": None,
        "supported_parameters": ["max_tokens", "temperature", "tools", "tool_choice", "response_format"],
        "expiration_date": model.expiration_date or None,
    }


def openrouter_model_list(models: Sequence[SimModel] = MODELS) -> dict[str, Any]:
    return {"data": [openrouter_model(m) for m in models if not m.embeds]}


def openrouter_key() -> dict[str, Any]:
    return {"data": dict(KEY_DATA)}
