"""Deterministic embeddings in the OpenAI format: unit vectors derived from a hash of each input."""

from __future__ import annotations

import base64
import hashlib
import math
import struct
from typing import Any

from llmagg_simulator.openai_errors import InvalidRequest

DEFAULT_DIMENSIONS = 8
MAX_DIMENSIONS = 4096


def _is_token_array(item: Any) -> bool:
    return isinstance(item, list) and bool(item) and all(isinstance(t, int) and not isinstance(t, bool) for t in item)


def inputs_of(body: Any) -> list[str | list[int]]:
    """Each input of the request (a string or a token array); raises InvalidRequest for a shape OpenAI refuses."""
    if not isinstance(body, dict):
        raise InvalidRequest("We could not parse the JSON body of your request.")
    if not isinstance(body.get("model"), str) or not body["model"]:
        raise InvalidRequest("you must provide a model parameter", "model")
    raw = body.get("input")
    if isinstance(raw, str) or _is_token_array(raw):
        inputs = [raw]
    elif isinstance(raw, list) and raw and all(isinstance(i, str) or _is_token_array(i) for i in raw):
        inputs = list(raw)
    else:
        raise InvalidRequest("'input' must be a string, an array of strings, or token arrays.", "input")
    if any(item == "" for item in inputs):
        raise InvalidRequest("'input' cannot contain an empty string.", "input")
    dimensions = body.get("dimensions")
    if dimensions is not None and (
        isinstance(dimensions, bool) or not isinstance(dimensions, int) or not 1 <= dimensions <= MAX_DIMENSIONS
    ):
        raise InvalidRequest(f"'dimensions' must be a whole number from 1 to {MAX_DIMENSIONS}.", "dimensions")
    if body.get("encoding_format", "float") not in ("float", "base64"):
        raise InvalidRequest("'encoding_format' must be 'float' or 'base64'.", "encoding_format")
    return inputs


def _text_of(item: str | list[int]) -> str:
    return item if isinstance(item, str) else " ".join(map(str, item))


def vector(text: str, dimensions: int) -> list[float]:
    """A unit-length vector, the same for the same text and length."""
    stream = hashlib.sha256(text.encode()).digest()
    while len(stream) < 2 * dimensions:
        stream += hashlib.sha256(stream).digest()
    raw = [int.from_bytes(stream[2 * i : 2 * i + 2], "little") / 32767.5 - 1.0 for i in range(dimensions)]
    norm = math.sqrt(sum(x * x for x in raw)) or 1.0
    return [round(x / norm, 6) for x in raw]


def encode_base64(values: list[float]) -> str:
    """How OpenAI sends `encoding_format: "base64"`: little-endian float32, base64."""
    return base64.b64encode(struct.pack(f"<{len(values)}f", *values)).decode()


def _tokens(item: str | list[int]) -> int:
    return len(item) if isinstance(item, list) else max(1, len(item.split()))


def embeddings(body: dict[str, Any]) -> dict[str, Any]:
    inputs = inputs_of(body)
    dimensions = body.get("dimensions") or DEFAULT_DIMENSIONS
    as_base64 = body.get("encoding_format") == "base64"
    data = []
    for index, item in enumerate(inputs):
        values = vector(_text_of(item), dimensions)
        data.append(
            {"object": "embedding", "index": index, "embedding": encode_base64(values) if as_base64 else values}
        )
    tokens = sum(_tokens(item) for item in inputs)
    return {
        "object": "list",
        "data": data,
        "model": body["model"],
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }
