"""`model: "ensemble"`: the same chat request to several free models at once, within the request's
deadline and each candidate's own quota, then one answer chosen from those that came back:

- `best`: the answer a judge model names (ensemble_judge.py); without a readable verdict, the answer
  the heuristics judge best (answer_quality.py, then the meta-controller's quality estimate), then
  agreement, then the order asked;
- `vote`: the answer most candidates agree on (same text once normalised), ties as `best`;
- `fuse`: the judge's own answer written from the candidates; without it, the consensus answer (the
  one closest to all the others, mean word-set similarity).

A candidate that fails never fails the request while another answered; the response carries every
candidate's provider, model, score, usage or error, and the judge's, under `ensemble`. Verdicts (else
agreement) are fed back to the meta-controller as quality judgements. See docs/routing.md."""

from __future__ import annotations

import asyncio
import logging
import re
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from llmagg.common.errors import ErrorKind, ServiceError
from llmagg.common.running_loop import running_loop
from llmagg_router.domain.answer_quality import answer_quality
from llmagg_router.domain.ensemble_judge import Verdict, default_judge, judge_request, parse_verdict
from llmagg_router.domain.meta_controller import MetaController
from llmagg_router.domain.request import parse_request
from llmagg_router.domain.resolver import AUTO, Resolver
from llmagg_router.domain.task_profile import profile_of
from llmagg_router.domain.upstream import Operation

log = logging.getLogger(__name__)
ENSEMBLE = "ensemble"
STRATEGIES = ("best", "vote", "fuse")
DEFAULT_COUNT, MAX_COUNT = 3, 5
MAX_MODEL_CHARS = 256
_SPACES = re.compile(r"\s+")


@dataclass(frozen=True)
class EnsemblePlan:
    models: tuple[str, ...]
    strategy: str
    judge: str | None = None  # `best` and `fuse` only; None: no judge call
    profile: str = "chat"


def is_ensemble(body: Any) -> bool:
    return isinstance(body, dict) and body.get("model") == ENSEMBLE


def _invalid(message: str, param: str) -> ServiceError:
    return ServiceError(ErrorKind.INVALID_ARGUMENT, message, code="invalid_ensemble", param=param)


def plan_ensemble(body: dict[str, Any], resolver: Resolver, meta: MetaController | None = None) -> EnsemblePlan:
    spec = body.get("ensemble") or {}
    if not isinstance(spec, Mapping):
        raise _invalid('`ensemble` must be an object: {"models": [...] or "count": N, "strategy": ...}.', "ensemble")
    strategy = spec.get("strategy", "best")
    if strategy not in STRATEGIES:
        raise _invalid(
            f"`ensemble.strategy` must be one of {', '.join(STRATEGIES)}; got {strategy!r}.", "ensemble.strategy"
        )
    judge = spec.get("judge")
    if judge is not None and not (isinstance(judge, str) and 0 < len(judge) <= MAX_MODEL_CHARS):
        raise _invalid("`ensemble.judge` must be a model id.", "ensemble.judge")
    if judge == ENSEMBLE:
        raise _invalid("`ensemble.judge` must be one model, not `ensemble`.", "ensemble.judge")
    models = spec.get("models")
    if models is not None and (
        not isinstance(models, list)
        or not all(isinstance(m, str) and m for m in models)
        or not 2 <= len(dict.fromkeys(models)) <= MAX_COUNT
    ):
        raise _invalid(f"`ensemble.models` must list 2 to {MAX_COUNT} different model ids.", "ensemble.models")
    if models is not None and ENSEMBLE in models:
        raise _invalid("`ensemble.models` must list single models, not `ensemble`.", "ensemble.models")
    count = spec.get("count", DEFAULT_COUNT)
    if models is None and (not isinstance(count, int) or isinstance(count, bool) or not 2 <= count <= MAX_COUNT):
        raise _invalid(f"`ensemble.count` must be a whole number from 2 to {MAX_COUNT}.", "ensemble.count")
    asked = parse_request({**_single(body), "model": AUTO}, Operation.CHAT)
    profile = profile_of(asked).key
    candidates = resolver.resolve_request(asked).candidates
    if models is not None:
        chosen = tuple(dict.fromkeys(models))
    else:
        chosen = tuple(list(dict.fromkeys(f"{c.provider.id}/{c.model_id}" for c in candidates))[:count])
    if strategy != "vote" and judge is None:
        judge = default_judge(candidates, chosen, profile, meta)
    elif strategy != "vote":
        _known_judge(body, judge, resolver)
    return EnsemblePlan(chosen, strategy, judge if strategy != "vote" else None, profile)


def _known_judge(body: dict[str, Any], judge: str, resolver: Resolver) -> None:
    """A judge nobody can route to is the client's mistake (a 400 before any call); one that is only
    unavailable now (no quota, cooling) is a judge call that fails, and the ensemble falls back."""
    try:
        resolver.resolve_request(parse_request({**_single(body), "model": judge}, Operation.CHAT))
    except ServiceError as error:
        if error.code == "model_not_found":
            raise _invalid(f"`ensemble.judge`: {error.message}", "ensemble.judge") from None


def _single(body: dict[str, Any]) -> dict[str, Any]:
    """A candidate's request: the client's without the ensemble's fields (each candidate answers whole)."""
    return {k: v for k, v in body.items() if k not in ("ensemble", "models", "stream", "stream_options")}


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
    for one model), then the judge when there is one; the chosen RoutedResponse (the judge's own for a
    fused answer) with the `ensemble` report in its body, and the route reason."""
    single = _single(body)
    loop = running_loop()
    deadline = loop.time() + timeout_s
    results = await _candidates(single, plan.models, complete, timeout_s)
    answered = [(model, routed) for model, routed, error in results if error is None]
    if not answered:
        first = next(error for _, _, error in results if error is not None)
        if isinstance(first, ServiceError):
            raise first
        raise ServiceError(
            ErrorKind.UNAVAILABLE, "No candidate of the ensemble answered.", code="all_candidates_failed"
        )
    scores = {model: _score(single, routed, meta, plan.profile) for model, routed in answered}
    texts = {model: _text(routed.body) for model, routed in answered}
    agreement = _agreement(plan.strategy, texts)
    verdict = None
    if plan.judge is not None and plan.strategy != "vote" and len(answered) > 1:
        asked = judge_request(plan.judge, plan.strategy, single, list(texts.values()))
        verdict = await _judged(asked, plan.strategy, len(answered), complete, deadline - loop.time())
    if plan.strategy == "best":
        ranked = sorted(answered, key=lambda a: (-scores[a[0]], -agreement[a[0]], plan.models.index(a[0])))
    else:
        ranked = sorted(answered, key=lambda a: (-agreement[a[0]], -scores[a[0]], plan.models.index(a[0])))
    chosen_model, chosen = ranked[0]
    chosen_by = "heuristics+agreement" if plan.strategy == "best" else "agreement"
    fused = verdict is not None and plan.strategy == "fuse" and verdict.routed is not None
    if verdict is not None and verdict.choice is not None:
        chosen_model, chosen = answered[verdict.choice]
        chosen_by = "judge"
    elif fused:
        chosen_model, chosen, chosen_by = None, verdict.routed, "judge"
    if meta is not None and len(answered) > 1:  # FrugalGPT-style scorer: the verdict, else agreement
        for model, routed in answered:
            good = float(model == chosen_model) if chosen_by == "judge" and not fused else agreement[model]
            arm = f"{routed.route.provider}/{routed.route.model}"
            meta.judged(plan.profile, arm, good)
    report: dict[str, Any] = {
        "strategy": plan.strategy,
        "chosen_by": chosen_by,
        "candidates": _report(results, scores, agreement, chosen_model),
    }
    reason = f"ensemble; strategy={plan.strategy}; answered={len(answered)}/{len(results)}"
    if verdict is not None:
        report["judge"] = _judge_report(plan.judge, verdict, plan.strategy)
        reason += f"; judge={plan.judge}; verdict={_said(verdict, plan.strategy)}"
    chosen.body["ensemble"] = report
    return chosen, reason


async def _candidates(
    single: dict[str, Any],
    models: tuple[str, ...],
    complete: Callable[[dict[str, Any]], Awaitable[Any]],
    timeout_s: float,
) -> list[tuple[str, Any, BaseException | None]]:
    tasks = [asyncio.ensure_future(complete({**single, "model": model})) for model in models]
    _, pending = await asyncio.wait(tasks, timeout=timeout_s)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)  # their attempts settle their quota first
    results: list[tuple[str, Any, BaseException | None]] = []
    for model, task in zip(models, tasks, strict=True):
        if task in pending:
            results.append((model, None, TimeoutError("no answer within the request deadline")))
        elif (error := task.exception()) is not None:
            results.append((model, None, error))
        else:
            results.append((model, task.result(), None))
    return results


def _agreement(strategy: str, texts: dict[str, str]) -> dict[str, float]:
    if strategy == "vote":
        votes = Counter(_normalised(t) for t in texts.values())
        return {m: votes[_normalised(t)] / len(texts) for m, t in texts.items()}
    return {
        m: sum(_similarity(t, other) for o, other in texts.items() if o != m) / max(len(texts) - 1, 1)
        for m, t in texts.items()
    }


async def _judged(
    asked: dict[str, Any],
    strategy: str,
    count: int,
    complete: Callable[[dict[str, Any]], Awaitable[Any]],
    left_s: float,
) -> Verdict:
    """The judge's call within what is left of the deadline; never raises."""
    try:
        if left_s <= 0:
            raise TimeoutError("no time left for the judge within the request deadline")
        routed = await asyncio.wait_for(complete(asked), left_s)
    except (ServiceError, TimeoutError) as error:
        return Verdict(None, error=error)
    except Exception:  # a judge never fails the request
        log.exception("the ensemble's judge failed")
        return Verdict(None, error=ServiceError(ErrorKind.INTERNAL, "The judge call failed.", code="judge_failed"))
    text = _text(routed.body)
    if strategy == "best":
        return Verdict(parse_verdict(text, count), routed)
    if not text.strip():
        return Verdict(
            None, error=ServiceError(ErrorKind.UNAVAILABLE, "The judge's answer was empty.", code="empty_answer")
        )
    return Verdict(None, routed)


def _said(verdict: Verdict, strategy: str) -> str:
    if verdict.choice is not None:
        return str(verdict.choice + 1)
    if verdict.routed is None:
        return "failed"
    return "fused" if strategy == "fuse" else "unparseable"


def _judge_report(judge: str | None, verdict: Verdict, strategy: str) -> dict[str, Any]:
    said = _said(verdict, strategy)
    report: dict[str, Any] = {"model": judge}
    if verdict.routed is not None:
        route = verdict.routed.route
        report |= {"provider": route.provider, "served_model": route.model}
    report["verdict"] = verdict.choice + 1 if verdict.choice is not None else None
    report["outcome"] = "chosen" if verdict.choice is not None else said
    if verdict.routed is not None:
        report["usage"] = verdict.routed.body.get("usage")
    if verdict.error is not None:
        error = verdict.error
        code = error.code if isinstance(error, ServiceError) else "timeout"  # else only a TimeoutError
        report["error"] = {"code": code, "message": str(error)[:300]}
    return report


def _report(
    results: list[tuple[str, Any, BaseException | None]],
    scores: dict[str, float],
    agreement: dict[str, float],
    chosen_model: str | None,
) -> list[dict[str, Any]]:
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
    return report


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
    plan = plan_ensemble(body, router.resolver, router.meta)

    async def complete(single: dict[str, Any]) -> Any:
        return await router.complete(single, Operation.CHAT, own_key, caller)

    chosen, reason = await run_ensemble(body, plan, complete, router.meta, router.limits.request_timeout_s)
    return replace(chosen, route=replace(chosen.route, reason=reason))
