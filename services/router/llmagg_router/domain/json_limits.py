"""How deeply JSON may nest: deeper than this is refused, both from clients and from upstreams.

orjson reads 1024 levels but writes only 254; a body the router could read but not write again
would fail late with a server error. Real requests (tool schemas included) stay far below this.
"""

from __future__ import annotations

from typing import Any

MAX_JSON_DEPTH = 128


def too_deep(value: Any, limit: int = MAX_JSON_DEPTH, raw: bytes | None = None) -> bool:
    """True when `value` nests lists and objects more than `limit` levels deep.

    Given the `raw` JSON it was parsed from, most values are cleared by counting brackets: with no
    more than `limit` of them, nothing can nest deeper.
    """
    if raw is not None and raw.count(b"[") + raw.count(b"{") <= limit:
        return False
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
