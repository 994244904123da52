"""The ensemble's judge: one more model, asked with a compact prompt which candidate answer is best
(`best`) or to write one answer from the candidates (`fuse`). Its call is an ordinary routed request
(quota, usage ledger, fallback across the judge's accounts); a verdict that cannot be read or a failed
call never fails the request: the ensemble falls back to agreement and heuristics."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from llmagg_router.domain.meta_controller import MetaController, arm_of
from llmagg_router.domain.upstream import Candidate

MAX_QUESTION_CHARS = 4_000
MAX_ANSWER_CHARS = 4_000
VERDICT_MAX_TOKENS = 16
_NUMBER = re.compile(r"(?<![\d.])(\d{1,2})(?!\d|\.\d)")
_LETTER = re.compile(r"\W*(?:answer\s+)?([a-z])\W*", re.IGNORECASE)

_BEST_SYSTEM = (
    "You compare candidate answers to a user's request. Reply with the number of the best answer "
    "(correct, complete, following the request) and nothing else."
)
_FUSE_SYSTEM = (
    "You are given a user's request and candidate answers from other assistants. Write the single best "
    "answer to the request, keeping what the candidates get right and leaving out their mistakes. Reply "
    "with that answer only, without mentioning the candidates."
)


@dataclass(frozen=True)
class Verdict:
    """What the judge said: `choice` is the 0-based index of the answer it picked (None when it could
    not be read or the call failed); `routed` its RoutedResponse when the call succeeded."""

    choice: int | None
    routed: Any = None
    error: BaseException | None = None


def default_judge(
    candidates: Sequence[Candidate], excluded: Sequence[str], profile: str, meta: MetaController | None
) -> str | None:
    """The free model `auto` could route to with the best quality estimate on `profile` that is not one
    of the ensemble's candidates (ties: `auto`'s order); None when there is none."""
    skip = set(excluded)
    best: tuple[float, int, str] | None = None
    for position, candidate in enumerate(candidates):
        arm = arm_of(candidate)
        free = candidate.model.free if candidate.model else candidate.provider.tier == "free"
        if not free or arm in skip or candidate.model_id in skip:
            continue
        value = meta.quality_estimate(profile, candidate) if meta is not None else _tier(candidate)
        if best is None or (-value, position) < (-best[0], best[1]):
            best = (value, position, arm)
    return best[2] if best else None


def _tier(candidate: Candidate) -> float:
    return (candidate.model.quality if candidate.model else 3) / 5


def question_of(body: Mapping[str, Any]) -> str:
    """The last user message's text (what the candidates answered), cut to MAX_QUESTION_CHARS."""
    for message in reversed(body.get("messages") or []):
        if isinstance(message, Mapping) and message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, list):
                content = " ".join(p.get("text", "") for p in content if isinstance(p, Mapping))
            return str(content or "")[:MAX_QUESTION_CHARS]
    return ""


def judge_request(judge: str, strategy: str, body: Mapping[str, Any], answers: Sequence[str]) -> dict[str, Any]:
    """The judge's chat request: the question and the numbered answers."""
    listed = "\n\n".join(f"Answer {n}:\n{text[:MAX_ANSWER_CHARS]}" for n, text in enumerate(answers, 1))
    ask = (
        "Which answer is best? Reply with its number only."
        if strategy == "best"
        else "Write the best answer to the request."
    )
    request: dict[str, Any] = {
        "model": judge,
        "messages": [
            {"role": "system", "content": _BEST_SYSTEM if strategy == "best" else _FUSE_SYSTEM},
            {"role": "user", "content": f"Request:\n{question_of(body)}\n\n{listed}\n\n{ask}"},
        ],
        "temperature": 0,
    }
    if strategy == "best":
        request["max_tokens"] = VERDICT_MAX_TOKENS
    elif isinstance(body.get("max_tokens"), int):
        request["max_tokens"] = body["max_tokens"]
    return request


def parse_verdict(text: str, count: int) -> int | None:
    """The 0-based index of the answer a verdict names: its first standalone number 1..count ("2",
    "Answer 2.", "**2**"), or a lone letter A.. ("B"); None for anything else."""
    number = _NUMBER.search(text)
    if number is not None:
        value = int(number.group(1))
        return value - 1 if 1 <= value <= count else None
    letter = _LETTER.fullmatch(text.strip())
    if letter is not None:
        index = ord(letter.group(1).lower()) - ord("a")
        return index if index < count else None
    return None
