"""One request's way through its candidates: which to try next (fits, quota headroom, circuits), what
failed, and the error that answers when every candidate is used up."""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping

from llmagg.common.errors import ErrorKind, ServiceError
from llmagg_router.domain.attempt import QuotaDenied, describe
from llmagg_router.domain.limits import RouterLimits
from llmagg_router.domain.ports import CircuitState, Headroom, HealthStore, KeyUnavailable, QuotaKey
from llmagg_router.domain.request import ParsedRequest
from llmagg_router.domain.resolver import Resolution
from llmagg_router.domain.task_profile import profile_of
from llmagg_router.domain.upstream import Candidate, Failure, UpstreamError


def _by_headroom(candidates: list[Candidate], headroom: Mapping[QuotaKey, Headroom]) -> list[Candidate]:
    """The accounts of each provider's model ordered by what is left of their quotas, most first.

    The order of the models (free first, quality mode, latency) stays; only the rotation of one model's
    accounts gives way to headroom (ties keep the rotation)."""
    ranked: list[Candidate] = []
    run: list[Candidate] = []

    def flush() -> None:
        run.sort(key=lambda c: -(headroom[c.quota_key].remaining if c.quota_key in headroom else 1.0))
        ranked.extend(run)
        run.clear()

    for candidate in candidates:
        if run and (run[0].provider.id, run[0].model_id) != (candidate.provider.id, candidate.model_id):
            flush()
        run.append(candidate)
    flush()
    return ranked


class Walk:
    """One request's way through its candidates: which to try next, what failed, what to answer."""

    def __init__(
        self,
        request: ParsedRequest,
        resolution: Resolution,
        headroom: Mapping[QuotaKey, Headroom],
        health: HealthStore,
        limits: RouterLimits,
    ) -> None:
        self.model = request.model
        self.request = request
        self.limits = limits
        # Models whose window is smaller than the prompt (as estimated) are skipped without a round trip.
        self.prompt_tokens = request.prompt_tokens
        self.allowance = request.allowance  # the answer's tokens metered, before a candidate's window clamps them
        self.too_small = 0
        self.attempts = 0  # candidates called so far (one without quota is skipped, not called)
        self.earlier_attempts = 0  # by the walks before this one, when the request waited for capacity
        self.failures: list[tuple[Candidate, UpstreamError]] = []
        self.soonest_retry_s = resolution.soonest_retry_s
        self.quota_waits: list[float] = []
        self.keyless: list[str] = []  # candidates skipped because no key could be leased, and why
        self.min_context = 0
        self._health = health
        self._unreachable: set[str] = set()  # endpoints this request could not connect to
        self._candidates: list[Candidate] = []
        self.route_reasons: dict[str, str] = {}  # provider/model -> why the meta-controller put it there
        for candidate in resolution.candidates:
            room = headroom.get(candidate.quota_key)
            if room is not None and room.remaining <= 0:
                self.quota_waits.append(room.retry_after_s or limits.default_cooldown_s)
            else:
                self._candidates.append(candidate)
        if headroom:
            self._candidates = _by_headroom(self._candidates, headroom)

    @functools.cached_property
    def profile(self) -> str:
        """The request's task profile key (task_profile.py). Read when first asked for: after the answer is
        on its way, unless the meta-controller orders the candidates by it (then set before the walk)."""
        return profile_of(self.request).key

    def candidates(self) -> Iterator[Candidate]:
        """In order, skipping models too small for the prompt and endpoints known to be down; those
        behind an open circuit come last (half-open ones once, as the probe: see `_usable_now`)."""
        last_resort: list[Candidate] = []
        for candidate in self._candidates:
            if self.attempts >= self.limits.max_attempts:
                return
            if not self._fits(candidate) or candidate.endpoint_circuit in self._unreachable:
                continue
            if self._usable_now(candidate):
                yield candidate
            else:
                last_resort.append(candidate)
        for candidate in last_resort:
            if self.attempts >= self.limits.max_attempts:
                return
            if self._fits(candidate) and candidate.endpoint_circuit not in self._unreachable:
                yield candidate

    def estimated_tokens(self, candidate: Candidate) -> int:
        """What an attempt of `candidate` reserves: no answer is longer than its model's context window."""
        window = candidate.context_window
        return self.prompt_tokens + (min(self.allowance, window) if window else self.allowance)

    def _fits(self, candidate: Candidate) -> bool:
        window = candidate.context_window
        if window is None:
            return True
        if window < self.prompt_tokens:
            self.too_small += 1
            return False
        return not (self.min_context and window <= self.min_context)

    def _usable_now(self, candidate: Candidate) -> bool:
        """Closed circuits are; an open one is not; a half-open one is for the one request that claims its probe."""
        for circuit in (candidate.endpoint_circuit, candidate.model_circuit):
            state = self._health.circuit_state(circuit)
            if state is CircuitState.OPEN or (
                state is CircuitState.HALF_OPEN and not self._health.claim_probe(circuit)
            ):
                return False
        return True

    def denied(self, denial: QuotaDenied) -> None:
        self.quota_waits.append(denial.retry_after_s or self.limits.default_cooldown_s)

    def no_key(self, candidate: Candidate, problem: KeyUnavailable) -> None:
        self.keyless.append(f"{candidate.account.alias}: {problem.reason}")

    def failed(self, candidate: Candidate, error: UpstreamError) -> None:
        """Note the failure; raise when it must go back to the client instead of falling over."""
        if error.failure is Failure.CLIENT:
            upstream = error.error or {}
            raise ServiceError(
                ErrorKind.INVALID_ARGUMENT,
                upstream.get("message") or error.message,
                code=upstream.get("code") or "upstream_invalid_request",
                param=upstream.get("param"),
            )
        if error.failure is Failure.CONTEXT_LENGTH:
            self.min_context = max(self.min_context, candidate.context_window or 0)
        if error.failure is Failure.CONNECT:
            self._unreachable.add(candidate.endpoint_circuit)
        self.failures.append((candidate, error))

    def exhausted(self) -> ServiceError:
        # A candidate whose protocol cannot express the request was not called: it neither failed
        # nor was rate limited. When no candidate could take the request, the request is the problem.
        failures = [(c, e) for c, e in self.failures if e.failure is not Failure.UNSUPPORTED]
        if self.failures and not failures:
            reasons = "; ".join(f"{describe(c)}: {e.message}" for c, e in self.failures)
            return ServiceError(
                ErrorKind.INVALID_ARGUMENT,
                f"No provider that serves {self.model!r} can take this request ({reasons}).",
                code="unsupported_request",
            )
        too_long = (
            failures
            and failures[-1][1].failure is Failure.CONTEXT_LENGTH
            and not any(f.failure not in (Failure.CONTEXT_LENGTH, Failure.RATE_LIMITED) for _, f in failures)
        )
        only_too_small = self.too_small and all(f.failure is Failure.CONTEXT_LENGTH for _, f in failures)
        if too_long or (only_too_small and not (self.quota_waits or self.keyless or self.soonest_retry_s)):
            return ServiceError(
                ErrorKind.INVALID_ARGUMENT,
                f"The request (about {self.prompt_tokens} tokens) is longer than the context window of every "
                f"model that can serve {self.model!r}.",
                code="context_length_exceeded",
                param="messages",
            )
        waits = [f.retry_after_s for _, f in failures if f.failure is Failure.RATE_LIMITED and f.retry_after_s]
        waits += self.quota_waits
        if self.soonest_retry_s is not None:
            waits.append(self.soonest_retry_s)
        if all(f.failure is Failure.RATE_LIMITED for _, f in failures) and (failures or waits):
            return ServiceError(
                ErrorKind.RESOURCE_EXHAUSTED,
                f"Every account that can serve {self.model!r} is rate limited right now; retry after the "
                "Retry-After header.",
                grpc_message=f"Every account that can serve {self.model!r} is rate limited right now; retry "
                "after the delay in the RetryInfo detail (or the retry-after trailer).",
                code="rate_limit_exceeded",
                retry_after_s=min(waits) if waits else self.limits.default_cooldown_s,
            )
        if not failures:
            why = (
                f"no key could be leased ({'; '.join(self.keyless)})"
                if self.keyless
                else ("the providers rejected every configured key")
            )
            return ServiceError(
                ErrorKind.UNAVAILABLE,
                f"No usable account can serve {self.model!r}: {why}.",
                code="no_usable_account",
                retryable=bool(self.keyless),
            )
        tried = "; ".join(f"{describe(c)}: {e.message}" for c, e in self.failures)
        if all(f.failure is Failure.TOO_LARGE for _, f in failures):
            return ServiceError(
                ErrorKind.UNAVAILABLE,
                f"Every provider's answer for {self.model!r} was too large to pass on ({tried}).",
                code="upstream_response_too_large",
                http_status=502,
            )
        return ServiceError(
            ErrorKind.UNAVAILABLE,
            f"All {len(failures)} candidates for {self.model!r} failed ({tried}).",
            code="all_candidates_failed",
        )
