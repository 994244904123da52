"""`model: "ensemble"`: the same chat request to several free models at once, within the request's
deadline and each candidate's own quota, then one answer chosen from those that came back:

- `best`: the answer the heuristics judge best (answer_quality.py), ties to the meta-controller's
  quality estimate for the profile, then to the order asked;
- `vote`: the answer most candidates agree on (same text once normalised), ties as `best`;
- `fuse`: the consensus answer, the one closest to all the others (mean word-set similarity).

The request says `"ensemble": {"models": [...]} ` or `{"count": N}` (default 3: `auto`'s first distinct
models) and `"strategy"` (default `best`). A candidate that fails never fails the request while another
answered; the response carries every candidate's provider, model, score, usage or error under
`ensemble`. Agreement is fed back to the meta-controller as a quality judgement. Streaming is not
offered (the answer is chosen after all candidates end)."""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from llmagg.common.errors import ErrorKind, ServiceError
from llmagg_router.domain.answer_quality import answer_quality
from llmagg_router.domain.meta_controller import MetaController
from llmagg_router.domain.request import parse_request
from llmagg_router.domain.resolver import AUTO, Resolver
from llmagg_router.domain.routing_stats import ArmStats
from llmagg_router.domain.task_profile import profile_of
from llmagg_router.domain.upstream import Operation

ENSEMBLE = "ensemble"
STRATEGIES = ("best", "vote", "fuse")
DEFAULT_COUNT, MAX_COUNT = 3, 5
_SPACES = re.compile(r"\s+")


@dataclass(frozen=True)
class EnsemblePlan:
    models: tuple[str, ...]
    strategy: str


def is_ensemble(body: Any) -> bool:
    return isinstance(body, dict) and body.get("model") == ENSEMBLE


def _invalid(message: str, param: str) -> ServiceError:
    return ServiceError(ErrorKind.INVALID_ARGUMENT, message, code="invalid_ensemble", param=param)


def plan_ensemble(body: dict[str, Any], resolver: Resolver) -> EnsemblePlan:
    spec = body.get("ensemble") or {}
    if not isinstance(spec, Mapping):
        raise _invalid('`ensemble` must be an object: {"models": [...] or "count": N, "strategy": ...}.', "ensemble")
    strategy = spec.get("strategy", "best")
    if strategy not in STRATEGIES:
        raise _invalid(
            f"`ensemble.strategy` must be one of {', '.join(STRATEGIES)}; got {strategy!r}.", "ensemble.strategy"
        )
    if body.get("stream"):
        raise _invalid("`model: ensemble` does not stream: its answer is chosen once every candidate ended.", "stream")
    models = spec.get("models")
    if models is not None:
        if (
            not isinstance(models, list)
            or not 2 <= len(models) <= MAX_COUNT
            or not all(isinstance(m, str) and m for m in models)
        ):
            raise _invalid(f"`ensemble.models` must list 2 to {MAX_COUNT} model ids.", "ensemble.models")
        return EnsemblePlan(tuple(dict.fromkeys(models)), strategy)
    count = spec.get("count", DEFAULT_COUNT)
    if not isinstance(count, int) or isinstance(count, bool) or not 2 <= count <= MAX_COUNT:
        raise _invalid(f"`ensemble.count` must be a whole number from 2 to {MAX_COUNT}.", "ensemble.count")
    asked = parse_request({**_single(body), "model": AUTO}, Operation.CHAT)
    arms = dict.fromkeys(f"{c.provider.id}/{c.model_id}" for c in resolver.resolve_request(asked).candidates)
    return EnsemblePlan(tuple(list(arms)[:count]), strategy)


def _single(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k not in ("ensemble", "models")}


def _text(answer: Mapping[str, Any]) -> str:
    choices = answer.get("choices") or [{}]
    content = (choices[0].get("message") or {}).get("content")
    return content if isinstance(content, str) else ""


def _normalised(text: str) -> str:
    return _SPACES.sub(" ", text.strip().lower()).rstrip(".")


def _similarity(a: str, b: str) -> float:
    one, two = set(_normalised(a).split()), set(_normalised(b).split())
    return len(one & two) / len(one | two) if one | two else 1.0


async def run_ensemble(
    body: dict[str, Any],
    plan: EnsemblePlan,
    complete: Callable[[dict[str, Any]], Awaitable[Any]],
    meta: MetaController | None,
    timeout_s: float,
) -> Any:
    """Every candidate in parallel through `complete` (the router's own routing, quota and fallback
    for one model); the chosen RoutedResponse with the `ensemble` report in its body."""
    single = _single(body)

    async def one(model: str) -> Any:
        return await complete({**single, "model": model})

    tasks = [asyncio.ensure_future(one(model)) for model in plan.models]
    _, pending = await asyncio.wait(tasks, timeout=timeout_s)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)  # their attempts settle their quota first
    results: list[tuple[str, Any, BaseException | None]] = []
    for model, task in zip(plan.models, tasks, strict=True):
        if task in pending:
            results.append((model, None, TimeoutError("no answer within the request deadline")))
        elif (error := task.exception()) is not None:
            results.append((model, None, error))
        else:
            results.append((model, task.result(), None))
    answered = [(model, routed) for model, routed, error in results if error is None]
    if not answered:
        first = next(error for _, _, error in results if error is not None)
        if isinstance(first, ServiceError):
            raise first
        raise ServiceError(
            ErrorKind.UNAVAILABLE, "No candidate of the ensemble answered.", code="all_candidates_failed"
        )
    profile = profile_of(parse_request({**single, "model": AUTO}, Operation.CHAT)).key
    scores = {model: _score(single, routed, meta, profile) for model, routed in answered}
    texts = {model: _text(routed.body) for model, routed in answered}
    if plan.strategy == "vote":
        votes = Counter(_normalised(t) for t in texts.values())
        agreement = {m: votes[_normalised(t)] / len(answered) for m, t in texts.items()}
    else:
        agreement = {
            m: sum(_similarity(t, other) for o, other in texts.items() if o != m) / max(len(answered) - 1, 1)
            for m, t in texts.items()
        }
    if plan.strategy == "best":
        ranked = sorted(answered, key=lambda a: (-scores[a[0]], plan.models.index(a[0])))
    else:
        ranked = sorted(answered, key=lambda a: (-agreement[a[0]], -scores[a[0]], plan.models.index(a[0])))
    chosen_model, chosen = ranked[0]
    if meta is not None and len(answered) > 1:  # agreement as a quality judgement (FrugalGPT-style scorer)
        for model, routed in answered:
            arm = f"{routed.route.provider}/{routed.route.model}"
            meta.store.record(profile, arm, ArmStats(good=agreement[model], bad=1 - agreement[model]))
    report = []
    for model, routed, error in results:
        if error is None:
            report.append({
                "model": model, "provider": routed.route.provider, "served_model": routed.route.model,
                "score": round(scores[model], 3), "agreement": round(agreement[model], 3),
                "usage": routed.body.get("usage"), "chosen": model == chosen_model,
            })  # fmt: skip
        else:
            code = error.code if isinstance(error, ServiceError) else "timeout"
            report.append({"model": model, "error": {"code": code, "message": str(error)[:300]}, "chosen": False})
    chosen.body["ensemble"] = {"strategy": plan.strategy, "candidates": report}
    return chosen, f"ensemble; strategy={plan.strategy}; answered={len(answered)}/{len(results)}"


def _score(body: dict[str, Any], routed: Any, meta: MetaController | None, profile: str) -> float:
    judged = answer_quality(body, routed.body)
    if judged is not None:
        return judged
    if meta is not None:
        seen = meta.store.stats(profile).get(f"{routed.route.provider}/{routed.route.model}")
        if seen is not None and seen.quality is not None:
            return seen.quality
    return 0.5


async def complete_ensemble(router: Any, body: dict[str, Any], own_key: Any, caller: Any) -> Any:
    """The Router's `complete` for `model: "ensemble"`: each candidate is an ordinary routed request."""
    plan = plan_ensemble(body, router.resolver)

    async def complete(single: dict[str, Any]) -> Any:
        return await router.complete(single, Operation.CHAT, own_key, caller)

    chosen, reason = await run_ensemble(body, plan, complete, router.meta, router.limits.request_timeout_s)
    return replace(chosen, route=replace(chosen.route, reason=reason))
