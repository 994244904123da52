"""The meta-controller behind `model: "auto"`: per (task profile, model) it keeps estimates of success
rate, time to first content, tokens per second and answer quality, and orders the candidates that
quota, capability and health allow by Thompson sampling, so that it exploits the model that answers
best for this kind of task and still tries a new or uncertain one now and then.

The static quality tier (1-5) of the catalogue is the prior: a model nobody has measured starts where
its tier puts it, with the weight of PRIOR_WEIGHT answers, and the measurements take over as they
come. Free before paid stays: sampling reorders models within each block. See docs/routing.md for
the research followed (Thompson sampling, RouteLLM, FrugalGPT)."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from llmagg.common.errors import ErrorKind, ServiceError
from llmagg_router.domain.routing_stats import ArmStats, RoutingStatsStore, Served
from llmagg_router.domain.upstream import Candidate

PRIOR_WEIGHT = 2.0  # answers' worth of belief in the static quality tier
# How much a second of time to first content costs against quality, per quality mode.
LATENCY_WEIGHT = {"fastest": 0.5, "balanced": 0.05, "best_quality": 0.0}
FEEDBACK_WEIGHT = 1.0  # a client's score counts as much as one judged answer


def arm_of(candidate: Candidate) -> str:
    return f"{candidate.provider.id}/{candidate.model_id}"


def _is_free(candidate: Candidate) -> bool:
    return candidate.model.free if candidate.model else candidate.provider.tier == "free"


@dataclass(frozen=True)
class Choice:
    candidates: tuple[Candidate, ...]
    reasons: dict[str, str]  # arm -> why it is where it is (the x-llmagg-route-reason of its answer)


class MetaController:
    def __init__(self, store: RoutingStatsStore, rng: random.Random | None = None, discount: float = 1.0) -> None:
        """`discount` (0 < d <= 1): each new observation of a model on a profile first multiplies what was
        known of it by `d` (discounted Thompson sampling), so its record is worth at most 1 / (1 - d)
        observations and a model that got worse is dropped after a few bad answers; 1 keeps everything."""
        if not 0 < discount <= 1:
            raise ValueError(f"the discount must be in (0, 1], got {discount}")
        self.store = store
        self._rng = rng or random.Random()
        self._discount = discount

    def _record(self, profile: str, arm: str, delta: ArmStats) -> None:
        """Add one observation, the old record discounted first. Written as one additive delta (the new
        observation minus (1 - d) of the total), so replicas can still add theirs to a shared store."""
        if self._discount < 1 and (known := self.store.stats(profile).get(arm)) is not None:
            delta.add(known.scaled(self._discount - 1))
        self.store.record(profile, arm, delta)

    def judged(self, profile: str, arm: str, quality: float) -> None:
        """A quality judgement of one answer (an ensemble's verdict or agreement)."""
        self._record(profile, arm, ArmStats(good=quality, bad=1 - quality))

    def choose(self, profile: str, candidates: Sequence[Candidate], quality_mode: str | None) -> Choice:
        """The model with the best Thompson sample of its value on `profile` first (its accounts in the
        order they came); the others stay in the resolver's order behind it, so that exploring costs at
        most one attempt and a request falls back as it always did."""
        groups: dict[str, list[Candidate]] = {}
        for candidate in candidates:
            groups.setdefault(arm_of(candidate), []).append(candidate)
        if len(groups) < 2:
            return Choice(tuple(candidates), {arm: f"only candidate; profile={profile}" for arm in groups})
        stats = self.store.stats(profile)
        weight = LATENCY_WEIGHT.get(quality_mode or "balanced", LATENCY_WEIGHT["balanced"])
        scored = []
        for position, (arm, members) in enumerate(groups.items()):
            value = self._sample(stats.get(arm) or ArmStats(), members[0], weight)
            scored.append((0 if _is_free(members[0]) else 1, -value, position, arm, value))
        _, _, _, chosen, value = min(scored)
        seen = stats.get(chosen)
        n = int(seen.attempts) if seen else 0
        reasons = dict.fromkeys(groups, f"fallback in static order; profile={profile}")
        reasons[chosen] = f"thompson; profile={profile}; of={len(groups)}; sample={value:.3f}; n={n}"
        ordered = (*groups[chosen], *(c for c in candidates if arm_of(c) != chosen))
        return Choice(ordered, reasons)

    def quality_estimate(self, profile: str, candidate: Candidate) -> float:
        """The mean of the quality belief `choose` samples from (the tier prior with what was judged)."""
        stats = (self.store.stats(profile).get(arm_of(candidate)) or ArmStats()).clamped()
        tier = (candidate.model.quality if candidate.model else 3) / 5
        return (PRIOR_WEIGHT * tier + stats.good) / (PRIOR_WEIGHT + stats.good + stats.bad)

    def _sample(self, stats: ArmStats, candidate: Candidate, latency_weight: float) -> float:
        stats = stats.clamped()
        tier = (candidate.model.quality if candidate.model else 3) / 5
        success = self._rng.betavariate(1 + stats.successes, 1 + stats.failures)
        quality = self._rng.betavariate(1 + PRIOR_WEIGHT * tier + stats.good, 1 + PRIOR_WEIGHT * (1 - tier) + stats.bad)
        ttft_s = (stats.ttft_ms or 0.0) / 1000
        return success * quality - latency_weight * ttft_s / (1 + ttft_s)

    def succeeded(
        self,
        profile: str,
        candidate: Candidate,
        ttft_ms: float,
        tokens_per_s: float | None,
        quality: float | None,
        request_id: str | None,
        client_id: str = "",
    ) -> None:
        arm = arm_of(candidate)
        delta = ArmStats(successes=1, ttft_ms_sum=ttft_ms, ttft_n=1)
        if tokens_per_s is not None:
            delta.tps_sum, delta.tps_n = tokens_per_s, 1
        if quality is not None:
            delta.good, delta.bad = quality, 1 - quality
        self._record(profile, arm, delta)
        if request_id:
            self.store.remember(request_id, Served(profile, arm, client_id))

    def failed(self, profile: str, candidate: Candidate) -> None:
        self._record(profile, arm_of(candidate), ArmStats(failures=1))

    async def feedback(self, request_id: str, score: float, client_id: str = "", admin: bool = False) -> Served:
        """A client's judgement of an answer (0 bad .. 1 good) updates the quality of the model that gave it.
        Only the client that asked (or an admin) may judge it: another client's id is as unknown as a
        wrong one, so that it learns nothing of other clients' requests."""
        if not isinstance(score, int | float) or isinstance(score, bool) or not 0 <= score <= 1:
            raise ServiceError(
                ErrorKind.INVALID_ARGUMENT, "`score` must be a number from 0 to 1.", code="invalid_score", param="score"
            )
        if not request_id:
            raise ServiceError(
                ErrorKind.INVALID_ARGUMENT, "`request_id` is required.", code="missing_request_id", param="request_id"
            )
        served = await self.store.served(request_id)
        if served is None or not (admin or served.client == client_id) or not await self.store.forget(request_id):
            raise ServiceError(
                ErrorKind.NOT_FOUND,
                f"No recent answer has the id {request_id!r} awaiting feedback; feedback is taken once per answer,"
                " for recent unstreamed requests only.",
                code="unknown_request_id",
                param="request_id",
            )
        self._record(
            served.profile, served.arm, ArmStats(good=FEEDBACK_WEIGHT * score, bad=FEEDBACK_WEIGHT * (1 - score))
        )
        return served

    async def feedback_json(self, body: object, client_id: str = "", admin: bool = False) -> dict[str, object]:
        """`POST /v1/feedback`: {"request_id": <an answer's id>, "score": 0..1}."""
        if not isinstance(body, dict):
            raise ServiceError(
                ErrorKind.INVALID_ARGUMENT,
                'The feedback must be a JSON object: {"request_id": "<the answer\'s id>", "score": 0..1}.',
                code="invalid_body",
            )
        request_id = body.get("request_id")
        if not isinstance(request_id, str):
            raise ServiceError(
                ErrorKind.INVALID_ARGUMENT,
                "`request_id` must be the id of an answer (a string).",
                code="missing_request_id",
                param="request_id",
            )
        score = body.get("score")
        served = await self.feedback(request_id, score, client_id, admin)  # type: ignore[arg-type]
        return {"object": "feedback", "request_id": request_id, "score": score, "model": served.arm}

    def scores(self) -> dict[str, dict[str, dict[str, float | None]]]:
        """Every profile's estimates per model, for /v1/admin/routing."""
        return {
            profile: {
                arm: {
                    "attempts": s.attempts,
                    "success_rate": s.success_rate,
                    "quality": s.quality,
                    "judged": s.good + s.bad,
                    "ttft_ms": s.ttft_ms,
                    "tokens_per_s": s.tokens_per_s,
                }
                for arm, s in sorted(arms.items())
            }
            for profile, arms in sorted(self.store.snapshot().items())
        }
