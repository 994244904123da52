"""How deeply JSON may nest: deeper than this is refused, both from clients and from upstreams.

orjson reads 1024 levels but writes only 254; a body the router could read but not write again
would fail late with a server error. Real requests (tool schemas included) stay far below this.
"""

from __future__ import annotations

from typing import Any

MAX_JSON_DEPTH = 128


def too_deep(value: Any, limit: int = MAX_JSON_DEPTH) -> bool:
    """True when `value` nests lists and objects more than `limit` levels deep."""
    level: list[Any] = [value]
    for _ in range(limit):
        deeper: list[Any] = []
        for item in level:
            if isinstance(item, dict):
                deeper.extend(v for v in item.values() if isinstance(v, dict | list))
            elif isinstance(item, list):
                deeper.extend(v for v in item if isinstance(v, dict | list))
        if not deeper:
            return False
        level = deeper
    return True
