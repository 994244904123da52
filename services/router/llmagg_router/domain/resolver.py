"""Turns a request's `model`, `provider` and `model_quality` into an ordered list of candidates."""

from __future__ import annotations

import itertools
from collections.abc import Collection
from dataclasses import dataclass, replace

from llmagg.common.errors import ErrorKind, ServiceError
from llmagg.registry import Model, Provider
from llmagg_router.domain.catalog_view import RETIRED, CatalogView, StaticCatalog, Withdrawal
from llmagg_router.domain.config import RoutingConfig
from llmagg_router.domain.ports import CatalogSource, HealthStore, KeySource
from llmagg_router.domain.preferences import NO_PREFERENCES, AskedModel, Preferences, asked_models
from llmagg_router.domain.request import ParsedRequest
from llmagg_router.domain.upstream import Candidate

QUALITY_MODES = ("fastest", "balanced", "best_quality")
_STATIC_CACHE_SIZE = 4096
AUTO = "auto"

HOW_TO_ADD_AN_ACCOUNT = (
    "Add one with the CLI (`llmagg accounts add groq`, or `llmagg configure`), or in the YAML file named by "
    "LLMAGG_CONFIG, e.g. `accounts: [{provider: groq, api_key_env: GROQ_API_KEY}]` with GROQ_API_KEY exported "
    "(see README, 'Add provider accounts'); `make demo` runs with simulated providers and needs no key."
)


@dataclass(frozen=True)
class Target:
    provider: Provider
    model_id: str
    model: Model | None
    # Static order (lower first); targets of equal rank are ordered by observed latency per request.
    rank: tuple = ()


@dataclass(frozen=True)
class Resolution:
    candidates: tuple[Candidate, ...]
    # Seconds until the soonest skipped (rate-limited) candidate is usable; None if none was skipped.
    soonest_retry_s: float | None


def _preferred(target: Target, preferences: Preferences) -> tuple:
    """A target's rank under the request's preferences: `provider.order` first, then models known to
    have what the request needs, then the sort asked for (free before trial credits in every sort)
    or the quality mode's own rank."""
    rank = target.rank
    if preferences.sort:
        model = target.model
        free = 0 if (model.free if model else target.provider.tier == "free") else 1
        # price: free first, then observed latency; latency: observed latency (the tie-break the
        # accounts step sorts by); throughput: the provider's serving speed.
        rank = (free, -target.provider.speed) if preferences.sort == "throughput" else (free,)
    unknown = 1 if preferences.needs and (target.model is None or target.model.capabilities is None) else 0
    return (preferences.order_position(target.provider.id), unknown, *rank)


def _none_allowed(model: str, preferences: Preferences) -> ServiceError:
    return ServiceError(
        ErrorKind.NOT_FOUND,
        f"No provider allowed by this request's preferences can serve {model!r}"
        + (f" with {', '.join(sorted(preferences.needs))}" if preferences.needs else "")
        + ". Check `provider.only`, `provider.ignore`, `provider.order` with `allow_fallbacks: false`, "
        "`:free` and `require_parameters`.",
        code="no_allowed_providers",
        param="provider",
    )


def _ranked(target: Target, quality: str, exact: bool = True) -> Target:
    """Rank: free before paid, then an exact id before an alias match, then the quality mode."""
    model, speed = target.model, target.provider.speed
    q = model.quality if model else 3
    free = 0 if (model.free if model else target.provider.tier == "free") else 1
    match = 0 if exact else 1
    if quality == "fastest":
        rank = (free, match, -speed, q)
    elif quality == "best_quality":
        rank = (free, match, -q, -speed)
    else:
        rank = (free, match, -(q + speed), -q)
    return replace(target, rank=rank)


def _withdrawn_error(what: str, withdrawal: Withdrawal, param: str) -> ServiceError:
    if withdrawal.state == RETIRED:
        return ServiceError(
            ErrorKind.NOT_FOUND,
            f"{what} is no longer served ({withdrawal.reason}). GET /v1/models lists the models you can route to.",
            code=f"{param}_retired",
            param=param,
        )
    return ServiceError(
        ErrorKind.UNAVAILABLE,
        f"{what} is suspended ({withdrawal.reason}); it is routed to again once it answers probes.",
        code=f"{param}_suspended",
        param=param,
    )


class Resolver:
    def __init__(
        self,
        config: RoutingConfig,
        keys: KeySource,
        health: HealthStore,
        protocols: Collection[str],
        catalog: CatalogSource | None = None,
    ) -> None:
        self.config = config
        self._keys = keys
        self._catalog = catalog or StaticCatalog(config.providers)
        self._health = health
        self._protocols = frozenset(protocols)
        self._rotation: dict[str, itertools.count] = {}
        self._static_cache: dict[tuple[tuple[AskedModel, ...], str, str, str, Preferences], tuple[Target, ...]] = {}
        self._derivations = 0
        self._derive()

    def _derive(self) -> None:
        """What follows from the accounts and the catalogue, derived again whenever either's generation changes."""
        keys = self._keys
        self._view: CatalogView = self._catalog.view()
        providers = self._view.providers
        self._generation = keys.generation
        self._catalog_generation = self._catalog.generation
        self._derivations += 1
        self._has_accounts = any(keys.accounts(pid) for pid in self.config.providers)
        # Providers that can be used at all: an adapter speaks their protocol and an account exists.
        self._routable = {
            pid: p for pid, p in providers.items() if p.protocol in self._protocols and keys.accounts(pid)
        }
        for pid in self._routable:
            self._rotation.setdefault(pid, itertools.count())
        # Model ids that end in `:free` (OpenRouter's) are ids, not the `:free` variant of another.
        self._known_ids = {m.id.lower() for p in providers.values() for m in p.models}
        self._static_cache.clear()

    def _current(self) -> None:
        if self._keys.generation != self._generation or self._catalog.generation != self._catalog_generation:
            self._derive()

    @property
    def generation(self) -> int:
        """Changes whenever the routable providers or their models were derived again (after catching up)."""
        self._current()
        return self._derivations

    @property
    def catalog(self) -> CatalogView:
        self._current()
        return self._view

    @property
    def routable_providers(self) -> dict[str, Provider]:
        self._current()
        return self._routable

    def resolve_request(self, request: ParsedRequest, own_key: KeySource | None = None) -> Resolution:
        """A parsed request's candidates in order. With `own_key` (its own provider key for the pinned
        provider) only that provider is routable, through that key's one account."""
        return self._resolve(
            request.asked, request.provider, request.quality, request.model_type, own_key, request.preferences
        )

    def resolve(
        self,
        model: str,
        provider_pin: str | None,
        quality: str | None,
        model_type: str = "chat",
        own_key: KeySource | None = None,
        preferences: Preferences = NO_PREFERENCES,
    ) -> Resolution:
        """`resolve_request` for a model named outside a request (its fallbacks in `preferences`)."""
        asked = asked_models(model, preferences.fallbacks)
        return self._resolve(asked, provider_pin, quality, model_type, own_key, preferences)

    def _resolve(
        self,
        asked: tuple[AskedModel, ...],
        provider_pin: str | None,
        quality: str | None,
        model_type: str,
        own_key: KeySource | None,
        preferences: Preferences,
    ) -> Resolution:
        quality = quality or "balanced"
        if quality not in QUALITY_MODES:
            raise ServiceError(
                ErrorKind.INVALID_ARGUMENT,
                f"`model_quality` must be one of {', '.join(QUALITY_MODES)}; got {quality!r}.",
                code="invalid_model_quality",
                param="model_quality",
            )
        if provider_pin:
            self._pinned(provider_pin)
        if own_key is not None:
            provider = self.own_key_provider(provider_pin)
            self._rotation.setdefault(provider.id, itertools.count())
            targets = self._planned(asked, provider_pin, quality, model_type, {provider.id: provider}, preferences)
            return self._with_accounts(targets, own_key)
        self._current()
        key = (asked, provider_pin or "", quality, model_type, preferences)
        targets = self._static_cache.get(key)
        if targets is None:
            targets = self._planned(asked, provider_pin, quality, model_type, self._routable, preferences)
            if len(self._static_cache) >= _STATIC_CACHE_SIZE:
                self._static_cache.clear()  # keys come from clients (pass-through ids): stay bounded
            self._static_cache[key] = targets
        return self._with_accounts(targets, self._keys)

    def routes_for(self, model: str) -> list[str]:
        """The known `provider/model` ids a request for `model` may be routed to, best first: what `resolve`
        derives before accounts, cooldowns and request preferences (for GET /v1/models/{id}). Empty when
        a chat or embeddings request for it would be refused, or would pass an unknown id through."""
        self._current()
        for model_type in ("chat", "embedding"):
            try:
                targets = self._planned(
                    asked_models(model), None, "balanced", model_type, self._routable, NO_PREFERENCES
                )
            except ServiceError:
                continue
            known = [f"{t.provider.id}/{t.model_id}" for t in targets if t.model is not None]
            if known:
                return known
        return []

    # --- the request's own wishes: a `models` list, OpenRouter's `provider` object, `:variants` ---
    def _planned(
        self,
        asked: tuple[AskedModel, ...],
        pin: str | None,
        quality: str,
        model_type: str,
        routable: dict[str, Provider],
        preferences: Preferences,
    ) -> tuple[Target, ...]:
        """Each model asked for, in the order asked, its targets filtered and ordered by the preferences."""
        planned: list[Target] = []
        seen: set[tuple[str, str]] = set()
        unservable: ServiceError | None = None
        for position, asking in enumerate(asked):
            wanted, variant = self._variant(asking)
            wishes = preferences.with_variant(variant) if variant else preferences
            try:
                found = self._targets(wanted, pin, quality, model_type, routable)
            except ServiceError as error:
                if error.kind is not ErrorKind.UNAVAILABLE:  # an unknown model is a mistake, not a fallback
                    raise
                unservable = unservable or error
                continue
            admitted = [t for t in found if self._admits(t, wishes)]
            if not admitted:
                unservable = unservable or _none_allowed(wanted, wishes)
            for target in admitted:
                if (target.provider.id, target.model_id) not in seen:
                    seen.add((target.provider.id, target.model_id))
                    planned.append(replace(target, rank=(position, *_preferred(target, wishes))))
        if not planned:
            assert unservable is not None
            raise unservable
        return tuple(sorted(planned, key=lambda t: t.rank))

    def _variant(self, asked: AskedModel) -> tuple[str, str | None]:
        """OpenRouter's `model:free|nitro|floor`, unless the whole id is a model's own (`...:free` ids)."""
        model = asked.id
        if (
            asked.variant is None
            or model.lower() in self._known_ids
            or model.partition("/")[2].lower() in self._known_ids
        ):
            return model, None
        return asked.base, asked.variant

    @staticmethod
    def _admits(target: Target, preferences: Preferences) -> bool:
        provider, model = target.provider, target.model
        if not preferences.admits_provider(provider.id):
            return False
        if preferences.free_only and not (model.free if model else provider.tier == "free"):
            return False
        if "tools" in preferences.needs and "tools" in provider.drop_params:
            return False  # never send a tools request where the tools would be dropped
        if preferences.require_parameters and provider.drop_params & preferences.fields:
            return False
        known = model.capabilities if model else None
        if preferences.needs:
            if known is None and preferences.require_parameters:
                return False  # require_parameters: only models known to take what the request uses
            if known is not None and not preferences.needs <= known:
                return False
        limit = model.max_output_tokens if model else None
        return not (limit and preferences.max_output_tokens and preferences.max_output_tokens > limit)

    def _pinned(self, pin: str) -> Provider:
        self._current()
        withdrawn = self._view.withdrawn_providers.get(pin)
        if withdrawn is not None:
            raise _withdrawn_error(f"The provider {pin!r}", withdrawn, "provider")
        provider = self._view.providers.get(pin)
        if provider is None:
            raise ServiceError(
                ErrorKind.NOT_FOUND,
                f"Unknown provider {pin!r}. GET /v1/models lists the providers you can route to.",
                grpc_message=f"Unknown provider {pin!r}. ListModels lists the providers you can route to.",
                code="provider_not_found",
                param="provider",
            )
        return provider

    def own_key_provider(self, pin: str | None) -> Provider:
        """The provider a request's own key (BYOK) is for: its `provider` pin, which must be speakable."""
        provider = self._pinned(pin) if pin else None
        if provider is None or provider.protocol not in self._protocols:
            raise ServiceError(
                ErrorKind.INVALID_ARGUMENT,
                "`x-provider-api-key` needs a `provider` pin naming a provider the router can speak to.",
                code="own_key_needs_provider",
                param="provider",
            )
        return provider

    # --- static part: which provider/model pairs, in which order (cached per request shape) ------
    def _targets(
        self, model: str, pin: str | None, quality: str, model_type: str, routable: dict[str, Provider]
    ) -> tuple[Target, ...]:
        view = self._view
        providers = view.providers
        if not routable and not self._has_accounts:
            raise ServiceError(
                ErrorKind.UNAVAILABLE,
                f"No provider account is configured. {HOW_TO_ADD_AN_ACCOUNT}",
                code="no_accounts_configured",
                retryable=False,
            )
        if model.lower() == AUTO:
            pool = [p for p in routable.values() if not pin or p.id == pin]
            targets = [_ranked(Target(p, m.id, m), quality) for p in pool for m in p.models if m.type == model_type]
            return self._routable_only(targets, model, pin, routable)
        chain = self.config.fallback_chains.get(model)
        if chain is not None:
            steps = [
                s
                for s in chain
                if (not pin or s.provider == pin)
                and s.provider in providers
                and not view.withdrawn(s.provider, s.model)
            ]
            targets = [
                Target(providers[s.provider], s.model, providers[s.provider].model(s.model), (i,))
                for i, s in enumerate(steps)
            ]
            return self._routable_only(targets, model, pin, routable)
        prefix, slash, rest = model.partition("/")
        if slash and prefix in view.withdrawn_providers and (not pin or pin == prefix):
            raise _withdrawn_error(f"The provider {prefix!r}", view.withdrawn_providers[prefix], "provider")
        if slash and prefix in providers and (not pin or pin == prefix):
            withdrawn = view.withdrawn(prefix, rest)
            if withdrawn is not None:
                raise _withdrawn_error(f"The model {rest!r} of {prefix!r}", withdrawn, "model")
            return self._routable_only(
                self._on_provider(providers[prefix], rest, quality, model_type), model, pin, routable
            )
        targets = []
        folded = model.lower()
        for provider in providers.values():
            if pin and provider.id != pin:
                continue
            for m in provider.models:
                if m.type != model_type:
                    continue
                if m.id == model or m.id.lower() == folded:
                    targets.append(_ranked(Target(provider, m.id, m), quality, exact=True))
                elif folded in m.aliases:
                    targets.append(_ranked(Target(provider, m.id, m), quality, exact=False))
        if not targets:
            gone = [w for (pid, mid), w in view.withdrawn_models.items() if mid == model and (not pin or pid == pin)]
            if gone:
                raise _withdrawn_error(f"The model {model!r}", gone[0], "model")
        if not targets and pin:
            # Registries are never complete: a pinned provider gets unknown model ids as given.
            targets = [Target(providers[pin], model, None)]
        return self._routable_only(targets, model, pin, routable)

    def _on_provider(self, provider: Provider, model: str, quality: str, model_type: str) -> list[Target]:
        known = provider.model(model)
        if known is not None:
            return [Target(provider, known.id, known)]
        aliased = [
            _ranked(Target(provider, m.id, m), quality)
            for m in provider.models
            if m.type == model_type and model.lower() in m.aliases
        ]
        return aliased or [Target(provider, model, None)]

    def _routable_only(
        self, targets: list[Target], model: str, pin: str | None, routable: dict[str, Provider]
    ) -> tuple[Target, ...]:
        usable = tuple(sorted((t for t in targets if t.provider.id in routable), key=lambda t: t.rank))
        if usable:
            return usable
        if not targets:
            where = f" on provider {pin!r}" if pin else ""
            raise ServiceError(
                ErrorKind.NOT_FOUND,
                f"The model {model!r} does not exist{where}. GET /v1/models lists the models you can route to; "
                "use `provider/model` to send any model id to a provider.",
                grpc_message=f"The model {model!r} does not exist{where}. ListModels lists the models you can "
                "route to; use `provider/model` to send any model id to a provider.",
                code="model_not_found",
                param="model",
            )
        providers = sorted({t.provider.id for t in targets})
        unsupported = sorted({t.provider.id for t in targets if t.provider.protocol not in self._protocols})
        detail = f" ({', '.join(unsupported)}: protocol not supported yet)" if unsupported else ""
        raise ServiceError(
            ErrorKind.UNAVAILABLE,
            f"The model {model!r} is served by {', '.join(providers)}{detail}, but no account is configured "
            f"for {'it' if len(providers) == 1 else 'any of them'}. {HOW_TO_ADD_AN_ACCOUNT}",
            code="no_account_for_model",
            retryable=False,
        )

    # --- dynamic part: accounts in rotation, minus the ones cooling down (circuits: see the walk) ---
    def _with_accounts(self, targets: tuple[Target, ...], keys: KeySource) -> Resolution:
        ready: list[Candidate] = []
        soonest: float | None = None
        health = self._health
        if len(targets) > 1:
            # Unmeasured targets count as fastest, so every tie gets explored once.
            targets = sorted(targets, key=lambda t: (t.rank, health.latency_ms(t.provider.id, t.model_id) or 0.0))
        for target in targets:
            provider = target.provider
            accounts = keys.accounts(provider.id)
            if not accounts:
                continue
            start = next(self._rotation[provider.id]) % len(accounts)
            for account in accounts[start:] + accounts[:start]:
                if not keys.usable(account):
                    continue
                candidate = Candidate(provider, target.model_id, target.model, account)
                wait = health.cooling_for(provider.id, account.alias, candidate.quota_model)
                if wait > 0:
                    soonest = wait if soonest is None else min(soonest, wait)
                    continue
                ready.append(candidate)
        return Resolution(tuple(ready), soonest)
