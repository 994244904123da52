"""The code and the explanation in a model's final answer.

Models answer in Markdown with fenced code blocks, sometimes several (the code, then a usage example
in another language), sometimes unterminated (cut by a token limit), with ``` or ~~~ fences of any
length, info strings (```python title="x.py"), indentation or CRLF line ends; some answer a JSON
object instead. The code is the blocks in the language asked for (else in the language of the
longest block), joined by a blank line; the explanation is the text around the blocks.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import orjson

_OPENING = re.compile(r"^ {0,3}(?P<fence>`{3,}|~{3,})\s*(?P<info>[^`]*?)\s*$")
_ALIASES = {
    "py": "python",
    "python3": "python",
    "js": "javascript",
    "node": "javascript",
    "jsx": "javascript",
    "ts": "typescript",
    "tsx": "typescript",
    "sh": "bash",
    "shell": "bash",
    "zsh": "bash",
    "c++": "cpp",
    "cxx": "cpp",
    "cs": "csharp",
    "c#": "csharp",
    "golang": "go",
    "rs": "rust",
    "kt": "kotlin",
    "rb": "ruby",
    "yml": "yaml",
}
_CODE_KEYS = ("generated_code", "code")


@dataclass(frozen=True)
class FinalAnswer:
    generated_code: str | None
    explanation: str | None


@dataclass(frozen=True)
class _Block:
    language: str
    code: str
    source: str  # the block as written, fences included


def canonical_language(name: str | None) -> str:
    word = name.strip().lower().split(" ")[0] if name and name.strip() else ""
    return _ALIASES.get(word, word)


def _split(text: str) -> list[str | _Block]:
    """The answer as text and fenced blocks, in order."""
    pieces: list[str | _Block] = []
    prose: list[str] = []
    lines = text.replace("\r\n", "\n").split("\n")
    index = 0
    while index < len(lines):
        opening = _OPENING.match(lines[index])
        if not opening:
            prose.append(lines[index])
            index += 1
            continue
        pieces.append("\n".join(prose))
        prose = []
        fence = opening.group("fence")
        closing = re.compile(rf"^ {{0,3}}{re.escape(fence[0])}{{{len(fence)},}}\s*$")
        start = index
        index += 1
        while index < len(lines) and not closing.match(lines[index]):
            index += 1
        body = lines[start + 1 : index]
        index += 1  # past the closing fence (or the end: an unterminated block runs to it)
        source = "\n".join(lines[start:index])
        pieces.append(_Block(canonical_language(opening.group("info")), "\n".join(body).strip("\n"), source))
    pieces.append("\n".join(prose))
    return pieces


def _tidy(text: str) -> str | None:
    tidy = re.sub(r"\n{3,}", "\n\n", text).strip()
    return tidy or None


def _from_json(text: str) -> FinalAnswer | None:
    stripped = text.strip()
    if not (stripped.startswith("{") and stripped.endswith("}")):
        return None
    try:
        value = orjson.loads(stripped)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(value, dict):
        return None
    code = next((value[key] for key in _CODE_KEYS if isinstance(value.get(key), str)), None)
    if code is None:
        return None
    explanation = value.get("explanation")
    return FinalAnswer(code or None, explanation if isinstance(explanation, str) and explanation else None)


def extract(content: str | None, language: str | None = None) -> FinalAnswer:
    """The generated code (None without a code block) and the explanation (None when there is no text)."""
    if not content or not content.strip():
        return FinalAnswer(None, None)
    as_json = _from_json(content)
    if as_json is not None:
        return as_json
    pieces = _split(content)
    blocks = [piece for piece in pieces if isinstance(piece, _Block) and piece.code.strip()]
    if not blocks:
        return FinalAnswer(None, _tidy("\n".join(piece for piece in pieces if isinstance(piece, str))))
    wanted = canonical_language(language)
    chosen = [block for block in blocks if wanted and block.language == wanted]
    if not chosen:
        main = max(blocks, key=lambda block: len(block.code)).language
        chosen = [block for block in blocks if block.language == main]
    # The explanation keeps every other block (a shell command, an example in another language) as written.
    taken = {id(block) for block in chosen}
    rest = [piece if isinstance(piece, str) else piece.source for piece in pieces if id(piece) not in taken]
    return FinalAnswer("\n\n".join(block.code for block in chosen), _tidy("\n".join(rest)))
