"""No provider key comes back through `logprobs`: a choice's logprob entries spell its text again, a token per
entry (`token`, and its UTF-8 `bytes`), so a key the text's redaction took out could be joined back from them.

- A run of entries whose tokens or bytes, joined, hold (part of) a key becomes one entry: the run's text
  redacted (all of it `[redacted]` when only the bytes spelt the key), its bytes redacted likewise, the
  run's summed logprob, no alternatives.
- An alternative (`top_logprobs`) that would complete a key after the text before it is redacted.
- `bytes` that are not a list of bytes are dropped (a client could read a key from them all the same).

`KeyRedactor.answer` applies this to a whole answer; `StreamRedactor` to each chunk, holding back the
entries at the end that could begin a key, like text.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from llmagg.common.secrets import REDACTED

if TYPE_CHECKING:
    from llmagg_router.domain.key_redaction import KeyRedactor

# The lists of a choice's `logprobs` whose entries each stand for one token of its text.
TOKEN_LISTS = ("content", "refusal")
_REDACTED_BYTES = REDACTED.encode()


def without_keys(redactor: KeyRedactor, entries: list[Any]) -> list[Any]:
    """`entries` without a key (in a stream: with the entries held before them, which could begin one)."""
    tokens, spelt = token_texts(entries), byte_texts(entries)
    marked = _touching_a_key(redactor, tokens) | _touching_a_key(redactor, [s or "" for s in spelt])
    _check_alternatives(redactor, entries, tokens, marked)
    for position, entry in enumerate(entries):
        if spelt[position] is None and isinstance(entry, dict) and entry.get("bytes") is not None:
            entry["bytes"] = None
    if not marked:
        return entries
    kept: list[Any] = []
    run: list[int] = []
    for position in range(len(entries) + 1):
        if position in marked:
            run.append(position)
            continue
        if run:
            kept.append(
                _one_entry(redactor, [entries[p] for p in run], [tokens[p] for p in run], [spelt[p] for p in run])
            )
            run = []
        if position < len(entries):
            kept.append(entries[position])
    return kept


def held_from(redactor: KeyRedactor, entries: list[Any]) -> int:
    """Where the entries begin whose tokens (or bytes) could be the start of a key (len(entries): none)."""
    held = len(entries)
    for pieces in (token_texts(entries), [s or "" for s in byte_texts(entries)]):
        at = redactor.held_from("".join(pieces))
        end = 0
        for position, piece in enumerate(pieces):
            end += len(piece)
            if end > at:
                held = min(held, position)
                break
    return held


def token_texts(entries: list[Any]) -> list[str]:
    return [e["token"] if isinstance(e, dict) and isinstance(e.get("token"), str) else "" for e in entries]


def byte_texts(entries: list[Any]) -> list[str | None]:
    """Each entry's bytes as text, a character per byte (a key is ASCII: its bytes spell it); "" without
    bytes, None for bytes that are not a list of bytes."""
    return [_byte_text(entry.get("bytes") if isinstance(entry, dict) else None) for entry in entries]


def _byte_text(value: Any) -> str | None:
    if value is None:
        return ""
    if isinstance(value, list) and all(type(b) is int and 0 <= b < 256 for b in value):
        return bytes(value).decode("latin-1")
    return None


def _touching_a_key(redactor: KeyRedactor, pieces: list[str]) -> set[int]:
    """The positions of the pieces that hold a part of a key of the text they join into."""
    text = "".join(pieces)
    keyed = [(at, at + len(key)) for key in redactor.keys for at in _occurrences(text, key)]
    if not keyed:
        return set()
    touching, start = set(), 0
    for position, piece in enumerate(pieces):
        end = start + len(piece)
        # An empty piece that stands inside a key is part of it too (its alternatives could fill the gap).
        if any(begin <= start < stop if start == end else (start < stop and begin < end) for begin, stop in keyed):
            touching.add(position)
        start = end
    return touching


def _check_alternatives(redactor: KeyRedactor, entries: list[Any], tokens: list[str], marked: set[int]) -> None:
    """Redact each alternative that spells a key, or completes one after the text before its position."""
    longest = max((len(key) for key in redactor.keys), default=0)
    text = ""
    for position, entry in enumerate(entries):
        alternatives = entry.get("top_logprobs") if isinstance(entry, dict) else None
        if position not in marked and isinstance(alternatives, list):
            context = text[-(longest - 1) :] if longest > 1 else ""
            for n, alternative in enumerate(alternatives):
                if isinstance(alternative, dict):
                    entry["top_logprobs"][n] = _alternative(redactor, alternative, context)
        text += tokens[position]


def _alternative(redactor: KeyRedactor, alternative: dict[str, Any], context: str) -> dict[str, Any]:
    token = alternative.get("token")
    spelt = _byte_text(alternative.get("bytes"))
    candidates = [context + token if isinstance(token, str) else context, context + (spelt or "")]
    if any(key in candidate for key in redactor.keys for candidate in candidates):
        return {"token": REDACTED, "logprob": alternative.get("logprob"), "bytes": list(_REDACTED_BYTES)}
    if spelt is None:
        return {**alternative, "bytes": None}
    return alternative


def _one_entry(redactor: KeyRedactor, run: list[Any], tokens: list[str], spelt: list[str | None]) -> dict[str, Any]:
    text = redactor.text("".join(tokens))
    if REDACTED not in text:  # spelt by the bytes only: the tokens say something else, taken out as well
        text = REDACTED
    if all(s for s in spelt):  # the run's bytes, with each key's bytes replaced (a token may hold part of a character)
        encoded = list(redactor.text("".join(s or "" for s in spelt)).encode("latin-1"))
    else:
        encoded = list(text.encode())
    numbers = [e["logprob"] for e in run if isinstance(e, dict) and type(e.get("logprob")) in (int, float)]
    return {"token": text, "logprob": sum(numbers), "bytes": encoded, "top_logprobs": []}


def _occurrences(text: str, key: str) -> list[int]:
    found, at = [], text.find(key)
    while at != -1:
        found.append(at)
        at = text.find(key, at + 1)
    return found
