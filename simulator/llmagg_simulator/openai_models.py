"""The fixed model list every simulated provider serves."""

from __future__ import annotations

from typing import Any

MODEL_IDS = ("sim-small", "sim-large", "sim-embed")
CREATED = 1700000000


def model(provider: str, model_id: str) -> dict[str, Any]:
    return {"id": model_id, "object": "model", "created": CREATED, "owned_by": provider}


def model_list(provider: str) -> dict[str, Any]:
    return {"object": "list", "data": [model(provider, model_id) for model_id in MODEL_IDS]}
