"""Live probing: which models to probe now, and what an answer says of the model.

Probes spend the providers' free quotas, so few go out: each round takes at most `batch` models per
provider (those probed longest ago), plus every model whose last probe failed (so that N failures in
a row are seen soon, not after N rounds). A 410 or "model not found" retires a model at once; 429
and 401/403 say nothing of the model (the account is limited or refused).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable
from dataclasses import dataclass

from llmagg_discovery.domain.records import ModelKey, ModelRecord, ModelState, ProbeOutcome, Verdict

_NOT_FOUND = re.compile(
    r"model[^.]{0,80}(not[ _]found|does not exist|doesn't exist|not exist|unknown|no longer|deprecated|retired|decommissioned)"
    r"|(not[ _]found|unknown|invalid)[ _]model|model_not_found|no such model",
    re.IGNORECASE,
)
_DETAIL_LIMIT = 200


@dataclass(frozen=True)
class ProbePlan:
    interval_s: float  # how often each model is probed when all is well
    retry_s: float  # how soon a model whose probe failed is probed again
    batch: int  # models per provider per round (failed ones not counted)


def classify(status: int | None, body: str = "", transport_error: str = "") -> Verdict:
    """What one probe answer says of the model."""
    if status is None:
        return Verdict(ProbeOutcome.FAILED, transport_error or "no answer")
    detail = f"HTTP {status}"
    if 200 <= status < 300:
        return Verdict(ProbeOutcome.OK, detail)
    if status == 410:
        return Verdict(ProbeOutcome.GONE, "HTTP 410 Gone")
    if status in (400, 404) and _NOT_FOUND.search(body):
        return Verdict(ProbeOutcome.GONE, f"HTTP {status}: model not found")
    if status in (401, 402, 403, 429) or 400 <= status < 500:
        return Verdict(ProbeOutcome.INCONCLUSIVE, detail)
    return Verdict(ProbeOutcome.FAILED, detail)


def due_for_probe(
    records: Iterable[ModelRecord], probeable: Collection[str], plan: ProbePlan, now: float
) -> list[ModelKey]:
    """The models to probe this round, failing ones first, then the least recently probed per provider."""
    retries: list[ModelKey] = []
    by_provider: dict[str, list[tuple[float, ModelKey]]] = {}
    for record in records:
        if record.key.provider not in probeable or record.state not in (ModelState.ACTIVE, ModelState.SUSPENDED):
            continue
        probe = record.probe
        failing = probe.consecutive_failures > 0 and record.state is ModelState.ACTIVE
        if failing:
            if now - probe.last_at >= plan.retry_s:
                retries.append(record.key)
        elif now - probe.last_at >= plan.interval_s:
            by_provider.setdefault(record.key.provider, []).append((probe.last_at, record.key))
    chosen = list(retries)
    for waiting in by_provider.values():
        chosen += [key for _, key in sorted(waiting)[: plan.batch]]
    return chosen


def short(text: str) -> str:
    return " ".join(text.split())[:_DETAIL_LIMIT]
