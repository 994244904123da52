"""The catalog in the OpenAI format."""

from __future__ import annotations

from typing import Any

from llmagg_simulator.catalog import CREATED, MODEL_IDS


def model(provider: str, model_id: str) -> dict[str, Any]:
    return {"id": model_id, "object": "model", "created": CREATED, "owned_by": provider}


def model_list(provider: str) -> dict[str, Any]:
    return {"object": "list", "data": [model(provider, model_id) for model_id in MODEL_IDS]}
