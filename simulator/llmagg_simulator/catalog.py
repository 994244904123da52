"""The models every simulated provider serves, whatever its dialect; each dialect lists them in its own shape."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SimModel:
    id: str
    display_name: str
    input_token_limit: int
    output_token_limit: int
    embeds: bool = False  # an embedding model rather than a chat model


MODELS = (
    SimModel("sim-small", "Sim Small", 8192, 2048),
    SimModel("sim-large", "Sim Large", 131072, 8192),
    SimModel("sim-embed", "Sim Embed", 8192, 1, embeds=True),
)
MODEL_IDS = tuple(model.id for model in MODELS)
BY_ID = {model.id: model for model in MODELS}
CREATED = 1700000000  # 2023-11-14T22:13:20Z


def page(ids: list[str], start: int, size: int) -> tuple[list[str], int | None]:
    """`size` ids from `start`, and where the next page starts (None after the last)."""
    end = start + size
    return ids[start:end], (end if end < len(ids) else None)
