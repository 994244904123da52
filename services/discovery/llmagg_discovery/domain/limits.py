"""Free-tier limits as people write them ("40 requests/minute", "$10 for 3 months") -> the registry's names.

Every style of the community list: `**Limits:** 30 requests/minute, 2,000 requests/day`, `<br>`-joined
link text, table cells, per-second rates, "Up to ... with ..." upgrades, money and token credits. What
is not a plain limit is kept as a note, never guessed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_UNITS = {"k": 1e3, "thousand": 1e3, "m": 1e6, "million": 1e6, "b": 1e9, "billion": 1e9}
_RATE = re.compile(
    r"^(?P<amount>\d[\d,]*(?:\.\d+)?)\s*(?P<unit>k|thousand|m|million|b|billion)?\s*"
    r"(?P<what>requests?|reqs?|tokens?|neurons?)\s*(?:/|per|an?)\s*(?P<per>second|sec|minute|min|hour|day|month)\b"
    r"(?P<rest>.*)$",
    re.IGNORECASE,
)
_MONEY = re.compile(r"\$\s*(\d[\d,]*(?:\.\d+)?)")
_CONDITIONAL = re.compile(r"^\s*(up to|with|after)\b|\bwith\b|\bafter\b|\bif\b", re.IGNORECASE)
_SPLIT = re.compile(r"<br\s*/?>|,\s+(?=\$?\d)|;\s*", re.IGNORECASE)
_LINK = re.compile(r"\[([^\]]*)\]\([^)]*\)")
_TAGS = re.compile(r"<[^>]+>")

# (what is counted, per) -> (registry limit name, factor to the registry's period)
_NAMES = {
    ("request", "second"): ("rpm", 60),
    ("request", "minute"): ("rpm", 1),
    ("request", "hour"): ("rph", 1),
    ("request", "day"): ("rpd", 1),
    ("request", "month"): ("rpmonth", 1),
    ("token", "second"): ("tpm", 60),
    ("token", "minute"): ("tpm", 1),
    ("token", "hour"): ("tph", 1),
    ("token", "day"): ("tpd", 1),
    ("token", "month"): ("tpmonth", 1),
    ("neuron", "day"): ("neurons_per_day", 1),
}
_WHAT = {"request": "request", "requests": "request", "req": "request", "reqs": "request"}
_PER = {"sec": "second", "min": "minute"}


@dataclass(frozen=True)
class ParsedLimits:
    limits: dict[str, float] = field(default_factory=dict)
    credits_usd: float | None = None
    notes: tuple[str, ...] = ()


def plain_text(text: str) -> str:
    """Link text without its URL, tags removed, whitespace collapsed."""
    return " ".join(_TAGS.sub(" ", _LINK.sub(r"\1", text)).split())


def number(text: str, unit: str | None = None) -> float:
    value = float(text.replace(",", ""))
    return value * _UNITS.get((unit or "").lower(), 1)


def money(text: str) -> float | None:
    """The first dollar amount in `text` ("$0.5 for 1 year" -> 0.5), None when it names none."""
    found = _MONEY.search(text)
    return number(found.group(1)) if found else None


def _rate(piece: str) -> tuple[str, float] | None:
    match = _RATE.match(piece)
    if match is None or _CONDITIONAL.search(match.group("rest")):
        return None
    what = match.group("what").lower().rstrip("s")
    what = _WHAT.get(what, what)
    per = _PER.get(match.group("per").lower(), match.group("per").lower())
    named = _NAMES.get((what, per))
    if named is None:
        return None
    name, factor = named
    return name, number(match.group("amount"), match.group("unit")) * factor


def parse_limits(text: str) -> ParsedLimits:
    """Every limit in one limits text (a line, a table cell, a link's text); the rest as notes."""
    raw = _LINK.sub(r"\1", text)
    limits: dict[str, float] = {}
    credits: float | None = None
    notes: list[str] = []
    for part in _SPLIT.split(raw):
        piece = plain_text(part).strip(" .")
        if not piece:
            continue
        rate = None if piece.lower().startswith("up to") else _rate(piece)
        if rate is not None:
            name, value = rate
            # Two figures for one window: the stricter one holds.
            limits[name] = min(value, limits.get(name, value))
        elif piece.startswith("$") and credits is None and not _CONDITIONAL.search(piece):
            credits = money(piece)
        else:
            notes.append(piece)
    whole = {name: float(int(value)) if value == int(value) else value for name, value in limits.items()}
    return ParsedLimits(whole, credits, tuple(notes))
