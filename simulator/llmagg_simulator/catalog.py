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
    free: bool = True  # priced "0" in the OpenRouter listing (a `:free` id is free whatever this says)
    expiration_date: str = ""  # OpenRouter's expiration_date, when set


def sim_model(raw: object) -> SimModel:
    """A model of a provider's list as the control API takes it: an id, or {id, name, context_length, free,
    expiration_date, embeds}."""
    if isinstance(raw, str) and raw:
        return BY_ID.get(raw) or SimModel(raw, raw, 32768, 4096)
    if not isinstance(raw, dict) or not isinstance(raw.get("id"), str) or not raw["id"]:
        raise ValueError(f"a model is an id or an object with an `id`; got {raw!r}")
    known = BY_ID.get(raw["id"])
    return SimModel(
        raw["id"],
        str(raw.get("name") or (known.display_name if known else raw["id"])),
        int(raw.get("context_length") or (known.input_token_limit if known else 32768)),
        known.output_token_limit if known else 4096,
        bool(raw.get("embeds", known.embeds if known else False)),
        bool(raw.get("free", True)),
        str(raw.get("expiration_date") or ""),
    )


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
