"""The limit model: which counters a (provider, account, model) draws on and the limits they carry.

Scopes, as providers define them:
- the account (`a|provider|account`): the provider-level `limits` of the registry, with the account's
  overrides from the credentials service replacing them name by name (an admin knows the account:
  OpenRouter allows 1,000 requests a day after a $10 top-up where the registry says 50);
- the account and model (`m|provider|account|model`): the model's own `limits`;
- the shared pool: where a provider's models share one quota (`shared_quota`, OpenRouter's `:free`
  models), the account scope is the pool every model of the account draws on.
Beside the configured limits, each key's reporting scope (the pool, or the account and model) holds
counters per minute and per day for what upstreams teach (`learning.py`): limits named by headers,
and caps (at most N more until a time). The tightest limit in force wins.
"""

from __future__ import annotations

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
# The windows upstream headers name (Cerebras: requests per day, tokens per minute; OpenAI-style
# headers are per minute): counted on every key's reporting scope so a learned limit finds them full.
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
    """The limits this service enforces (requests and tokens per window); credits and neurons are not."""
    return {name: int(value) for name, value in limits.items() if name in LIMIT_WINDOWS and value > 0}


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


class LimitBook:
    """The limits of every provider, and the per-account overrides (replaced as credentials lists them)."""

    def __init__(self, providers: Mapping[str, ProviderQuota]) -> None:
        self.providers = dict(providers)
        self._overrides: dict[tuple[str, str], dict[str, int]] = {}

    def set_overrides(self, overrides: Mapping[tuple[str, str], Mapping[str, float]]) -> None:
        """(provider, alias) -> the account's limit overrides; everything not listed has none."""
        self._overrides = {key: count_limits(limits) for key, limits in overrides.items()}

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
            for name, amount in {**quota.limits, **self.overrides(key.provider, key.account)}.items():
                wanted[(account, name)] = amount
            for name, amount in quota.model_limits.get(key.model, {}).items():
                scope = account if quota.shared else model
                current = wanted.get((scope, name))
                wanted[(scope, name)] = amount if current is None else min(current, amount)
        reporting = self.reporting_scope(key)
        for name in LEARNABLE:
            wanted.setdefault((reporting, name), None)
        return wanted

    def entries(self, key: QuotaKey, tokens: int, now: float) -> list[Entry]:
        """Every counter a request of `tokens` (estimated) on `key` touches now, with its limit."""
        tz = self.timezone(key.provider)
        reporting = self.reporting_scope(key)
        where = f"{key.provider}/{key.account}" + ("" if reporting.startswith("a|") else f"/{key.model}")
        entries = []
        for (scope, name), limit in self.limits(key).items():
            dimension, window = LIMIT_WINDOWS[name]
            start, end = bounds(window, now, tz)
            label_where = where if scope == reporting else f"{key.provider}/{key.account}"
            entries.append(
                Entry(
                    counter=f"{scope}|{name}|{int(start)}",
                    dimension=dimension,
                    amount=1 if dimension is Dimension.REQUESTS else tokens,
                    limit=limit,
                    limit_key=learned_limit_key(scope, name) if scope == reporting and name in LEARNABLE else None,
                    expires_at=end,
                    label=f"{name} {LIMIT_PLACEHOLDER} on {label_where}",
                )
            )
        for dimension in Dimension:
            entries.append(
                Entry(
                    counter=cap_counter(reporting, dimension),
                    dimension=dimension,
                    amount=1 if dimension is Dimension.REQUESTS else tokens,
                    limit=None,
                    limit_key=cap_key(reporting, dimension),
                    expires_at=0.0,
                    label=f"the {dimension.value} {key.provider} said are left on {where}",
                )
            )
        return entries

    def price(self, key: QuotaKey) -> tuple[float, float]:
        quota = self.providers.get(key.provider)
        return quota.prices.get(key.model, (0.0, 0.0)) if quota else (0.0, 0.0)
