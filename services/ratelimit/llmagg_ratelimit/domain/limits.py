"""The limit model: which counters a (provider, account, model) draws on and the limits they carry.

Scopes, as providers define them:
- the account (`a|provider|account`): the provider-level `limits` of the registry, with the account's
  overrides from the credentials service replacing them name by name (an admin knows the account:
  OpenRouter allows 1,000 requests a day after a $10 top-up where the registry says 50);
- the account and model (`m|provider|account|model`): the model's own `limits`;
- the shared pool: where a provider's models share one quota (`shared_quota`, OpenRouter's `:free`
  models), the account scope is the pool every model of the account draws on.
Beside the configured limits, each key's reporting scope (the pool, or the account and model) holds
what upstreams teach (`learning.py`): limits named by headers (per minute and per day) and caps (at
most N more until a time); their counters count only while one is in force (the provider's remaining
count, which comes with the limit, says what was used before). The tightest limit in force wins.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

from llmagg_ratelimit.domain.ports import Entry
from llmagg_ratelimit.domain.windows import Dimension, Window, bounds

LIMIT_WINDOWS: dict[str, tuple[Dimension, Window]] = {
    "rpm": (Dimension.REQUESTS, Window.MINUTE),
    "rph": (Dimension.REQUESTS, Window.HOUR),
    "rpd": (Dimension.REQUESTS, Window.DAY),
    "rpmonth": (Dimension.REQUESTS, Window.MONTH),
    "tpm": (Dimension.TOKENS, Window.MINUTE),
    "tph": (Dimension.TOKENS, Window.HOUR),
    "tpd": (Dimension.TOKENS, Window.DAY),
    "tpmonth": (Dimension.TOKENS, Window.MONTH),
}
NAME_OF = {value: name for name, value in LIMIT_WINDOWS.items()}
# The windows upstream headers name (Cerebras: requests per day, tokens per minute).
LEARNABLE = ("rpm", "rpd", "tpm", "tpd")
LIMIT_PLACEHOLDER = "<limit>"  # in an entry's label: the limit found in force


class QuotaKey(NamedTuple):
    provider: str
    account: str
    model: str


@dataclass(frozen=True)
class ProviderQuota:
    """What the registry says of one provider's quotas."""

    id: str
    shared: bool = False
    reset_timezone: str = "UTC"
    limits: Mapping[str, int] = field(default_factory=dict)  # account-wide (the pool when shared)
    model_limits: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    prices: Mapping[str, tuple[float, float]] = field(default_factory=dict)  # model -> USD/1M in, out


def count_limits(limits: Mapping[str, float]) -> dict[str, int]:
    """The limits this service enforces (requests and tokens per window, whole and finite: a fraction rounds
    up, never to none); credits and neurons are not."""
    return {
        name: math.ceil(value)
        for name, value in limits.items()
        if name in LIMIT_WINDOWS and isinstance(value, int | float) and 0 < value < math.inf
    }


def _tightest(configured: Mapping[str, int], discovered: Mapping[str, int]) -> dict[str, int]:
    """Each limit either names, the lower where both do."""
    return {
        name: min(configured.get(name, math.inf), discovered.get(name, math.inf))
        for name in {**configured, **discovered}
    }


def _part(text: str) -> str:
    """A key component that cannot be mistaken for a separator (ids come from clients too)."""
    return text.replace("%", "%25").replace("|", "%7C")


def account_scope(provider: str, account: str) -> str:
    return f"a|{_part(provider)}|{_part(account)}"


def model_scope(provider: str, account: str, model: str) -> str:
    return f"m|{_part(provider)}|{_part(account)}|{_part(model)}"


def learned_limit_key(scope: str, name: str) -> str:
    return f"L|{scope}|{name}"


def cap_key(scope: str, dimension: Dimension) -> str:
    return f"C|{scope}|{dimension.value}"


def cap_counter(scope: str, dimension: Dimension) -> str:
    return f"U|{scope}|{dimension.value}"


_PLAN_CACHE = 65536


@dataclass(frozen=True)
class _Planned:
    prefix: str  # the counter's name before its window's start (the whole name of a cap's counter)
    dimension: Dimension
    window: Window | None  # None: a cap's counter, which ends with its cap
    limit: int | None
    limit_key: str | None
    label: str
    optional: bool


class LimitBook:
    """The limits of every provider; what the discovery service found of them (replacing the registry's
    as its catalogue changes); and the per-account overrides (replaced as credentials lists them), which
    win over both."""

    def __init__(self, providers: Mapping[str, ProviderQuota]) -> None:
        self.providers = dict(providers)
        self._overrides: dict[tuple[str, str], dict[str, int]] = {}
        self._discovered: tuple[dict[str, dict[str, int]], dict[tuple[str, str], dict[str, int]]] = ({}, {})
        self._plans: dict[QuotaKey, tuple[_Planned, ...]] = {}  # what entries() builds on, per key

    def set_discovered(
        self,
        account_limits: Mapping[str, Mapping[str, float]],
        model_limits: Mapping[tuple[str, str], Mapping[str, float]],
    ) -> None:
        """The catalogue's account-wide limits per provider and limits per (provider, model). A catalogue
        only tightens: of a limit both name the lower holds (its sources include a crowd-sourced list; a
        limit raised for an account is an override in credentials), and one it does not name stays."""
        discovered = (
            {provider: count_limits(limits) for provider, limits in account_limits.items()},
            {key: count_limits(limits) for key, limits in model_limits.items()},
        )
        if discovered != self._discovered:
            self._discovered = discovered
            self._plans.clear()

    def set_overrides(self, overrides: Mapping[tuple[str, str], Mapping[str, float]]) -> None:
        """(provider, alias) -> the account's limit overrides; everything not listed has none."""
        overrides = {key: count_limits(limits) for key, limits in overrides.items()}
        if overrides != self._overrides:
            self._overrides = overrides
            self._plans.clear()

    def overrides(self, provider: str, account: str) -> dict[str, int]:
        return self._overrides.get((provider, account), {})

    def timezone(self, provider: str) -> str:
        quota = self.providers.get(provider)
        return quota.reset_timezone if quota else "UTC"

    def reporting_scope(self, key: QuotaKey) -> str:
        """Where what the provider says about this key applies: the pool when shared, else the model."""
        quota = self.providers.get(key.provider)
        if quota is not None and quota.shared:
            return account_scope(key.provider, key.account)
        return model_scope(*key)

    def limits(self, key: QuotaKey) -> dict[tuple[str, str], int | None]:
        """(scope, limit name) -> configured limit (None: counted for learning only)."""
        quota = self.providers.get(key.provider)
        account, model = account_scope(key.provider, key.account), model_scope(*key)
        wanted: dict[tuple[str, str], int | None] = {}
        if quota is not None:
            discovered_account, discovered_models = self._discovered
            account_limits = _tightest(quota.limits, discovered_account.get(key.provider, {}))
            model_limits = _tightest(
                quota.model_limits.get(key.model, {}), discovered_models.get((key.provider, key.model), {})
            )
            for name, amount in {**account_limits, **self.overrides(key.provider, key.account)}.items():
                wanted[(account, name)] = amount
            for name, amount in model_limits.items():
                scope = account if quota.shared else model
                current = wanted.get((scope, name))
                wanted[(scope, name)] = amount if current is None else min(current, amount)
        reporting = self.reporting_scope(key)
        for name in LEARNABLE:
            wanted.setdefault((reporting, name), None)
        return wanted

    def _plan(self, key: QuotaKey) -> tuple[_Planned, ...]:
        """The counters of a key without their windows: derived once per key (and set of overrides)."""
        planned = self._plans.get(key)
        if planned is not None:
            return planned
        reporting = self.reporting_scope(key)
        account_where = f"{key.provider}/{key.account}"
        where = account_where + ("" if reporting.startswith("a|") else f"/{key.model}")
        items = []
        for (scope, name), limit in self.limits(key).items():
            dimension, window = LIMIT_WINDOWS[name]
            learnable = scope == reporting and name in LEARNABLE
            items.append(
                _Planned(
                    prefix=f"{scope}|{name}|",
                    dimension=dimension,
                    window=window,
                    limit=limit,
                    limit_key=learned_limit_key(scope, name) if learnable else None,
                    label=f"{name} {LIMIT_PLACEHOLDER} on {where if scope == reporting else account_where}",
                    optional=limit is None,
                )
            )
        for dimension in Dimension:
            items.append(
                _Planned(
                    prefix=cap_counter(reporting, dimension),
                    dimension=dimension,
                    window=None,
                    limit=None,
                    limit_key=cap_key(reporting, dimension),
                    label=f"the {dimension.value} {key.provider} said are left on {where}",
                    optional=True,
                )
            )
        if len(self._plans) >= _PLAN_CACHE:
            self._plans.clear()  # keys come from clients too (pass-through model ids): stay bounded
        planned = self._plans[key] = tuple(items)
        return planned

    def entries(self, key: QuotaKey, tokens: int, now: float) -> list[Entry]:
        """Every counter a request of `tokens` (estimated) on `key` touches now, with its limit."""
        tz = self.timezone(key.provider)
        entries = []
        for item in self._plan(key):
            if item.window is None:
                counter, expires_at = item.prefix, 0.0
            else:
                start, expires_at = bounds(item.window, now, tz)
                counter = f"{item.prefix}{int(start)}"
            entries.append(
                Entry(
                    counter=counter,
                    dimension=item.dimension,
                    amount=1 if item.dimension is Dimension.REQUESTS else tokens,
                    limit=item.limit,
                    limit_key=item.limit_key,
                    expires_at=expires_at,
                    label=item.label,
                    optional=item.optional,
                )
            )
        return entries

    def price(self, key: QuotaKey) -> tuple[float, float]:
        quota = self.providers.get(key.provider)
        return quota.prices.get(key.model, (0.0, 0.0)) if quota else (0.0, 0.0)
