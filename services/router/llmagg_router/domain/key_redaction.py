"""No provider key comes back out of a provider's answer: the keys an attempt sent are removed from what it got.

Error answers are scrubbed where they are read (upstream_errors); this covers the answers that succeed. Two
steps, both on the hot path and both a plain substring search unless a key is there:

- `KeyRedactor.json`: each JSON document (a whole answer, one stream event) before it is parsed, so every
  field of it is covered (text, tool-call arguments, id, model, fields the router does not know); and
  `KeyRedactor.answer` a whole answer's messages where the router joined pieces (a dialect's text
  blocks, a stream's chunks put back together for a non-stream client);
- `StreamRedactor`: the text a client joins from a stream's chunks (content, tool-call arguments, ...),
  where a key may be cut in two across chunks. The end of a piece that could begin a key is held back until
  the next piece shows whether it does (then it is redacted) or not (then it is passed on); whatever is held
  is passed on before the stream's finishing chunk, its end, or its error, so no byte is lost. A tool call's
  name (which some clients join and others take whole) is held back whole and goes on in one piece with its
  call's next chunk.

A choice's `logprobs` spell its text again, token by token: logprob_redaction.py, applied by both.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import Any

import orjson

from llmagg.common.secrets import MIN_SECRET_LENGTH, REDACTED
from llmagg_router.domain import logprob_redaction
from llmagg_router.domain.logprob_redaction import TOKEN_LISTS

_REDACTED_JSON = REDACTED.encode()
# Delta fields that name or classify rather than carry text a client joins.
_NOT_JOINED = frozenset({"index", "type", "id", "role"})
# Joined by some clients, taken whole by others: held back whole, never passed on in pieces of our making.
_WHOLE = "name"

Path = tuple[Any, ...]


@functools.lru_cache(maxsize=256)  # a redactor is made for every attempt, nearly always for a key seen before
def _prepared(keys: tuple[str, ...]) -> tuple[tuple[str, ...], tuple[bytes, ...]]:
    """The keys long enough to be keys, longest first (so a key that contains another is removed whole), and
    each as JSON text writes it."""
    kept = tuple(sorted({k for k in keys if len(k) >= MIN_SECRET_LENGTH}, key=len, reverse=True))
    return kept, tuple(orjson.dumps(key)[1:-1] for key in kept)


class KeyRedactor:
    """Removes the values of `keys` (those long enough to be keys) from what the provider answered."""

    def __init__(self, keys: Iterable[str]) -> None:
        self.keys, self._needles = _prepared(tuple(keys))

    def json(self, raw: bytes) -> bytes:
        """A JSON document with every key's value replaced by [redacted], wherever it is; `raw` itself (no
        copy) when no key is in it."""
        for needle in self._needles:
            if needle in raw:
                raw = raw.replace(needle, _REDACTED_JSON)
        if b"\\" in raw and (b"\\u" in raw or b"\\/" in raw):
            # A key may hide behind escapes (`\u0073k-...`): look again in the document written plainly.
            try:
                plain = orjson.dumps(orjson.loads(raw))
            except (orjson.JSONDecodeError, orjson.JSONEncodeError):
                return raw  # not JSON, or nested past what can be written: refused as such when parsed
            if any(needle in plain for needle in self._needles):
                return self.json(plain)
        return raw

    def answer(self, answer: dict[str, Any]) -> dict[str, Any]:
        """A whole answer without keys in its messages, wherever the router joined pieces into them: the text
        blocks of an Anthropic, Gemini or Cohere answer, the chunks of a stream put back together (a tool
        call's name included). A key cut across two pieces is whole only once joined."""
        if not self.keys:
            return answer
        for choice in answer.get("choices") or ():
            if not isinstance(choice, dict):
                continue
            if isinstance(choice.get("message"), dict):
                self._strings(choice["message"])
            logprobs = choice.get("logprobs")
            if isinstance(logprobs, dict):
                for name in TOKEN_LISTS:
                    if isinstance(logprobs.get(name), list):
                        logprobs[name] = logprob_redaction.without_keys(self, logprobs[name])
        return answer

    def _strings(self, value: dict[str, Any] | list[Any]) -> None:
        for name, item in value.items() if isinstance(value, dict) else enumerate(value):
            if isinstance(item, str):
                value[name] = self.text(item)
            elif isinstance(item, dict | list):
                self._strings(item)

    def text(self, text: str) -> str:
        for key in self.keys:
            if key in text:
                text = text.replace(key, REDACTED)
        return text

    def held_from(self, text: str) -> int:
        """Where the longest end of `text` that could be the start of a key begins (len(text): none)."""
        held = len(text)
        for key in self.keys:
            first = key[0]
            at = text.find(first, max(0, len(text) - len(key) + 1))
            while at != -1 and at < held:
                if key.startswith(text[at:]):
                    held = at
                    break
                at = text.find(first, at + 1)
        return held

    def stream(self) -> StreamRedactor:
        return StreamRedactor(self)


class StreamRedactor:
    """The keys of one attempt taken out of the text a client joins from its stream's OpenAI chunks."""

    def __init__(self, redactor: KeyRedactor) -> None:
        self._redactor = redactor
        self._held: dict[Path, str] = {}  # (choice index, field path) -> text held back, in arrival order
        self._held_entries: dict[Path, list[Any]] = {}  # (choice index, logprobs list) -> its entries held back
        self._last: dict[str, Any] = {}  # the last chunk: its id, created and model go on a chunk of held text

    def chunk(self, chunk: dict[str, Any]) -> list[dict[str, Any]]:
        """What to pass on for `chunk`, in order: held text that must go first, then the chunk itself."""
        if not self._redactor.keys:
            return [chunk]
        self._last = chunk
        choices = chunk.get("choices")
        finished = set()
        for choice in choices if isinstance(choices, list) else ():
            if not isinstance(choice, dict):
                continue
            index = choice.get("index", 0)
            index = index if isinstance(index, int) else 0
            done = bool(choice.get("finish_reason"))
            if done:
                finished.add(index)
            delta = choice.get("delta")
            if delta and isinstance(delta, dict):
                # A choice that finishes here holds nothing back: no piece of it follows.
                self._redact(delta, (index,), hold=not done)
            logprobs = choice.get("logprobs")
            if logprobs and isinstance(logprobs, dict):
                self._logprobs(logprobs, index, hold=not done)
        if not self._held and not self._held_entries:
            return [chunk]
        # What is still held of a choice that finishes here, or of every choice before a usage chunk, goes first.
        ending = {path for path in [*self._held, *self._held_entries] if not choices or path[0] in finished}
        flushed = self._flush(ending)
        return [flushed, chunk] if flushed else [chunk]

    def flush(self) -> list[dict[str, Any]]:
        """At the stream's end or error: a chunk with every piece of text still held back, if any."""
        flushed = self._flush({*self._held, *self._held_entries})
        return [flushed] if flushed else []

    def _logprobs(self, logprobs: dict[str, Any], index: int, hold: bool) -> None:
        """A chunk's logprob entries, after those held before them, without a key; with `hold`, without the
        entries at the end that could start one (held for the next chunk)."""
        for name in TOKEN_LISTS:
            entries = logprobs.get(name)
            path = (index, "logprobs", name)
            if not isinstance(entries, list) or not (entries or path in self._held_entries):
                continue
            # What was held is a possible start of a key: redacted together with what follows it.
            entries = logprob_redaction.without_keys(self._redactor, [*self._held_entries.pop(path, []), *entries])
            held = logprob_redaction.held_from(self._redactor, entries) if hold else len(entries)
            if held < len(entries):
                self._held_entries[path] = entries[held:]
            logprobs[name] = entries[:held]

    def _redact(self, delta: dict[str, Any], path: Path, hold: bool) -> None:
        whole = (*path, _WHOLE)
        released = whole in self._held and not isinstance(delta.get(_WHOLE), str)
        if released:
            # The name held back did not go on into a key: it goes whole with this next piece of its call.
            delta[_WHOLE] = self._held.pop(whole)
        for name, value in list(delta.items()):
            if name in _NOT_JOINED:
                continue
            if name == _WHOLE and isinstance(value, str):
                if not released:
                    self._whole(delta, whole, value, hold)
            elif isinstance(value, str):
                delta[name] = self._joined((*path, name), value, hold)
            elif isinstance(value, dict):
                self._redact(value, (*path, name), hold)
            elif isinstance(value, list):
                for position, entry in enumerate(value):
                    if isinstance(entry, dict):
                        index = entry.get("index")
                        step = ("index", index) if isinstance(index, int) else position
                        self._redact(entry, (*path, name, step), hold)

    def _joined(self, path: Path, piece: str, hold: bool) -> str:
        """`piece` of a joined text, with what was held before it, without keys and (with `hold`) without an
        end that could start one (held for the next piece)."""
        redactor = self._redactor
        text = redactor.text(self._held.pop(path, "") + piece)
        if not hold:
            return text
        held = redactor.held_from(text)
        if held < len(text):
            self._held[path] = text[held:]
        return text[:held]

    def _whole(self, delta: dict[str, Any], path: Path, piece: str, hold: bool) -> None:
        """A name (with what was held of it) without keys; held back whole while its end could start one."""
        redactor = self._redactor
        text = redactor.text(self._held.pop(path, "") + piece)
        if hold and redactor.held_from(text) < len(text):
            self._held[path] = text
            del delta[path[-1]]
        else:
            delta[path[-1]] = text

    def _flush(self, paths: set[Path]) -> dict[str, Any] | None:
        """One chunk carrying the held text of `paths` (each in the delta shape it came in), or None."""
        if not paths:
            return None
        deltas: dict[Any, dict[str, Any]] = {}
        for path in [p for p in self._held if p in paths]:  # in the order they were held
            _place(deltas.setdefault(path[0], {}), path[1:], self._held.pop(path))
        logprobs: dict[Any, dict[str, Any]] = {}
        for path in [p for p in self._held_entries if p in paths]:
            logprobs.setdefault(path[0], {})[path[2]] = self._held_entries.pop(path)
        choices = [
            {"index": index, "delta": deltas.get(index, {}), "finish_reason": None}
            | ({"logprobs": logprobs[index]} if index in logprobs else {})
            for index in dict.fromkeys([*deltas, *logprobs])
        ]
        envelope = {name: self._last[name] for name in ("id", "created", "model") if name in self._last}
        return {**envelope, "object": "chat.completion.chunk", "choices": choices}


def _place(target: dict[str, Any], steps: Path, text: str) -> None:
    """Put `text` at `steps` under `target`, making the dicts and the list entries (by `index`) on the way."""
    name, rest = steps[0], steps[1:]
    if not rest:
        target[name] = text
        return
    step = rest[0]
    if isinstance(step, tuple | int):  # `name` holds a list; the entry is named by its index (or its position)
        entries = target.setdefault(name, [])
        index = step[1] if isinstance(step, tuple) else None
        entry = next((e for e in entries if index is not None and e.get("index") == index), None)
        if entry is None:
            entry = {} if index is None else {"index": index}
            entries.append(entry)
        _place(entry, rest[1:], text)
    else:
        _place(target.setdefault(name, {}), rest, text)
