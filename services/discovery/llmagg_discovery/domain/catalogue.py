"""The catalogue: every source's reports merged per (provider, model), its states and its changes.

Per field, the value of the highest-ranked source that states it wins (the user's config over a
provider's own API over live probes over the community list over the shipped registry), and the
merged record says which source that was. States follow from the facts:

- RETIRED: the provider or the model is retired by a source (the registry's `retired_on`), a probe
  found it gone (410, "model not found"), or it has been missing from a complete listing for the
  grace period (unless a probe answered since);
- SUSPENDED: `suspend_after` probes in a row failed;
- UNCONFIRMED: only the community list names it;
- ACTIVE otherwise.

Nothing is ever deleted: a model that leaves every source is retired and stays in the history.
"""

from __future__ import annotations

import datetime
from collections.abc import Collection, Iterable
from dataclasses import dataclass

from llmagg_discovery.domain.inference import guess_quality, guess_type, inferred_alias
from llmagg_discovery.domain.records import (
    MODEL_FIELDS,
    PROVIDER_FIELDS,
    CatalogueSnapshot,
    Change,
    ChangeKind,
    MergedModel,
    MergedProvider,
    ModelKey,
    ModelRecord,
    ModelState,
    ProbeOutcome,
    ProviderRecord,
    Sighting,
    SourceReport,
)

# Which source wins a field when several state it (higher first). Unknown sources rank lowest.
SOURCE_RANK = {"config": 50, "models": 40, "accounts": 35, "probe": 30, "community": 20, "registry": 10}
# How sure a listing by each source makes us that the model exists under its id.
SOURCE_CONFIDENCE = {"config": 0.9, "models": 0.95, "registry": 0.7, "community": 0.4}
# Sources that name models by the ids a request uses: a model listed by one of them is routable.
ID_SOURCES = frozenset({"config", "models", "registry"})
PROBED_CONFIDENCE = 1.0
ROUTABLE = frozenset({ModelState.ACTIVE})


def iso(moment: float) -> str:
    if not moment:
        return ""
    return datetime.datetime.fromtimestamp(moment, datetime.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _rank(source: str) -> int:
    return SOURCE_RANK.get(source, 0)


@dataclass(frozen=True)
class Policy:
    grace_s: float = 3 * 86400.0  # missing from a complete listing this long: retired
    suspend_after: int = 3  # failed probes in a row: suspended


def _describe_limits(limits) -> str:
    return ", ".join(f"{name} {value:g}" for name, value in sorted((limits or {}).items())) or "none"


class Catalogue:
    def __init__(
        self,
        policy: Policy,
        models: Iterable[ModelRecord] = (),
        providers: Iterable[ProviderRecord] = (),
        revision: int = 0,
        updated_at: float = 0.0,
    ) -> None:
        self.policy = policy
        self.models: dict[ModelKey, ModelRecord] = {record.key: record for record in models}
        self.providers: dict[str, ProviderRecord] = {record.id: record for record in providers}
        self.revision = revision
        self.updated_at = updated_at
        self.dirty_models: set[ModelKey] = set()
        self.dirty_providers: set[str] = set()
        self._snapshot: CatalogueSnapshot | None = None
        self._aliases: dict[str, str] | None = None

    @property
    def empty(self) -> bool:
        return not self.models and not self.providers

    # --- applying what sources say ------------------------------------------------------------------
    def apply(self, report: SourceReport, now: float, record_changes: bool = True) -> list[Change]:
        """Merge one report; the changes it made (recorded or not, the state moves on)."""
        source = report.source
        touched: set[ModelKey] = set(report.models) | set(report.verdicts)
        for provider_id in report.complete_for | set(report.providers) | set(report.accounts):
            touched.update(key for key in self.models if key.provider == provider_id)
        before_models = {key: self.merged_model(key) for key in touched if key in self.models}
        before_providers = {
            pid: self.merged_provider(pid)
            for pid in set(report.providers) | {k.provider for k in touched}
            if pid in self.providers
        }
        for provider_id, facts in report.providers.items():
            self._provider(provider_id, now).claims[source] = facts
        for provider_id, accounts in report.accounts.items():
            self._provider(provider_id, now).accounts = accounts
        created: set[ModelKey] = set()
        for key, facts in report.models.items():
            record = self.models.get(key)
            if record is None:
                record = self.models[key] = ModelRecord(key, {}, {}, first_seen=now, state_since=now)
                created.add(key)
            self._provider(key.provider, now)
            record.claims[source] = facts
            sighting = record.sightings.get(source)
            if sighting is None:
                record.sightings[source] = Sighting(first=now, last=now)
            else:
                sighting.last, sighting.missing_since = now, None
        for provider_id in report.complete_for:
            self._mark_missing(provider_id, report, now)
        for key, verdict in report.verdicts.items():
            if key in self.models:
                self._record_probe(self.models[key], verdict.outcome, verdict.detail, now)
        self._aliases = None
        self.dirty_models |= touched
        self.dirty_providers |= set(before_providers) | set(report.providers) | set(report.accounts)
        changes = self._evaluate(touched, now, source, created)
        changes += self._diff(before_models, before_providers, touched, set(report.providers), now, source)
        if changes or any(key not in before_models for key in touched):
            self._bump(now)
        return changes if record_changes else []

    def reevaluate(self, now: float) -> list[Change]:
        """Time-based moves (a model missing past the grace period); called on a timer and after each run."""
        changes = self._evaluate(set(self.models), now, "discovery")
        if changes:
            self._bump(now)
        return changes

    def _bump(self, now: float) -> None:
        self.revision += 1
        self.updated_at = now
        self._snapshot = None

    def _provider(self, provider_id: str, now: float) -> ProviderRecord:
        record = self.providers.get(provider_id)
        if record is None:
            record = self.providers[provider_id] = ProviderRecord(provider_id, {}, first_seen=now, last_seen=now)
        record.last_seen = now
        self.dirty_providers.add(provider_id)
        return record

    def _mark_missing(self, provider_id: str, report: SourceReport, now: float) -> None:
        source = report.source
        for key, record in self.models.items():
            if key.provider != provider_id or key in report.models:
                continue
            others = [s for s, seen in record.sightings.items() if s != source and seen.missing_since is None]
            if not report.authoritative and (source not in record.sightings or others):
                continue  # a partial source's silence only counts for entries no one else lists
            sighting = record.sightings.setdefault(source, Sighting(first=0.0, last=0.0))
            if sighting.missing_since is None:
                sighting.missing_since = now
            self.dirty_models.add(key)

    def _record_probe(self, record: ModelRecord, outcome: ProbeOutcome, detail: str, now: float) -> None:
        probe = record.probe
        probe.last_at, probe.last_outcome = now, outcome.value
        if outcome is ProbeOutcome.OK:
            probe.last_ok_at, probe.consecutive_failures, probe.gone = now, 0, ""
        elif outcome is ProbeOutcome.FAILED:
            probe.consecutive_failures += 1
            probe.last_outcome = f"failed: {detail}" if detail else "failed"
        elif outcome is ProbeOutcome.GONE:
            probe.gone = detail or "gone"

    # --- states -------------------------------------------------------------------------------------
    def _provider_retirement(self, provider_id: str) -> str | None:
        record = self.providers.get(provider_id)
        if record is None:
            return None
        for source, facts in sorted(record.claims.items(), key=lambda item: -_rank(item[0])):
            if facts.retired_on:
                return f"the provider was retired on {facts.retired_on}: {facts.retired_reason or source}"
        return None

    def state_of(self, record: ModelRecord, now: float) -> tuple[ModelState, str]:
        provider_gone = self._provider_retirement(record.key.provider)
        if provider_gone:
            return ModelState.RETIRED, provider_gone
        for source, facts in sorted(record.claims.items(), key=lambda item: -_rank(item[0])):
            if facts.retired_on:
                return ModelState.RETIRED, f"retired on {facts.retired_on}: {facts.retired_reason or source}"
        probe = record.probe
        if probe.gone:
            return ModelState.RETIRED, f"a probe found it gone: {probe.gone}"
        missing = [(seen.missing_since, source) for source, seen in record.sightings.items() if seen.missing_since]
        if missing:
            since, source = min(missing)
            if now - since >= self.policy.grace_s and probe.last_ok_at <= since:
                return ModelState.RETIRED, f"missing from {source} since {iso(since)}"
        if probe.consecutive_failures >= self.policy.suspend_after:
            return (
                ModelState.SUSPENDED,
                f"{probe.consecutive_failures} probes in a row failed (last: {probe.last_outcome})",
            )
        confirmed = probe.last_ok_at > 0 or any(
            source in ID_SOURCES and not facts.display_name_only for source, facts in record.claims.items()
        )
        if not confirmed:
            return ModelState.UNCONFIRMED, "named only by the community list"
        return ModelState.ACTIVE, ""

    def _evaluate(
        self, keys: Iterable[ModelKey], now: float, source: str, created: Collection[ModelKey] = ()
    ) -> list[Change]:
        changes = []
        for key in sorted(keys):
            record = self.models.get(key)
            if record is None:
                continue
            state, reason = self.state_of(record, now)
            if (state, reason) == (record.state, record.state_reason):
                continue
            before = record.state
            record.state, record.state_reason = state, reason
            self.dirty_models.add(key)
            if state is before:
                continue  # the same state for another reason: no change to report
            record.state_since = now
            if key in created:
                continue  # new this run: reported as added (with its state) by the diff
            kind = {
                ModelState.RETIRED: ChangeKind.RETIRED,
                ModelState.SUSPENDED: ChangeKind.SUSPENDED,
            }.get(state, ChangeKind.RESTORED if before in (ModelState.RETIRED, ModelState.SUSPENDED) else None)
            if kind is None:
                kind = ChangeKind.UPDATED
                reason = f"{before.value} -> {state.value}" + (f": {reason}" if reason else "")
            changes.append(Change(now, kind, key.provider, key.model, source, reason or state.value))
        return changes

    # --- the merged view ------------------------------------------------------------------------------
    def _alias_index(self) -> dict[str, str]:
        if self._aliases is None:
            self._aliases = {
                alias: alias for record in self.models.values() for facts in record.claims.values()
                for alias in facts.aliases or ()
            }  # fmt: skip
        return self._aliases

    def merged_model(self, key: ModelKey) -> MergedModel:
        record = self.models[key]
        ordered = sorted(record.claims.items(), key=lambda item: -_rank(item[0]))
        values: dict[str, object] = {}
        provenance: dict[str, str] = {}
        for name in MODEL_FIELDS:
            for source, facts in ordered:
                value = getattr(facts, name)
                if value is not None:
                    values[name], provenance[name] = value, source
                    break
        aliases = tuple(dict.fromkeys(a for _, facts in ordered for a in facts.aliases or ()))
        if not aliases and (guessed := inferred_alias(key.model, self._alias_index())):
            aliases, provenance["aliases"] = (guessed,), "inferred"
        capabilities = tuple(dict.fromkeys(c for _, facts in ordered for c in facts.capabilities or ()))
        if "quality" not in values:
            values["quality"], provenance["quality"] = guess_quality(key.model), "inferred"
        if "type" not in values:
            values["type"], provenance["type"] = guess_type(key.model), "inferred"
        if "free" not in values:
            provider = self.merged_provider(key.provider) if key.provider in self.providers else None
            values["free"], provenance["free"] = bool(provider and provider.tier == "free"), "inferred"
        listing = [s for s, seen in record.sightings.items() if seen.missing_since is None and seen.last > 0]
        confidence = max((SOURCE_CONFIDENCE.get(s, 0.3) for s in listing), default=0.0)
        if record.probe.last_ok_at and not record.probe.consecutive_failures:
            confidence = PROBED_CONFIDENCE
        return MergedModel(
            provider=key.provider,
            model=key.model,
            name=str(values.get("name") or key.model),
            type=str(values.get("type") or "chat"),
            state=record.state,
            state_reason=record.state_reason,
            state_since=record.state_since,
            free=bool(values["free"]),
            context_length=int(values.get("context_length") or 0),
            quality=int(values["quality"]),
            aliases=aliases,
            limits=dict(values.get("limits") or {}),
            capabilities=capabilities,
            expiration_date=str(values.get("expiration_date") or ""),
            pricing=values.get("pricing"),  # type: ignore[arg-type]
            provenance=provenance,
            confidence=confidence,
            first_seen=record.first_seen,
            last_seen=max((seen.last for seen in record.sightings.values()), default=record.first_seen),
            sources=tuple(sorted(listing)),
        )

    def merged_provider(self, provider_id: str) -> MergedProvider:
        record = self.providers[provider_id]
        ordered = sorted(record.claims.items(), key=lambda item: -_rank(item[0]))
        values: dict[str, object] = {}
        provenance: dict[str, str] = {}
        for name in PROVIDER_FIELDS:
            for source, facts in ordered:
                value = getattr(facts, name)
                if value is not None:
                    values[name], provenance[name] = value, source
                    break
        retired = self._provider_retirement(provider_id)
        notes = tuple(dict.fromkeys(n for _, facts in ordered for n in facts.notes or ()))
        ended = values.get("free_tier_ended_on")
        if ended:  # newer than any older listing of its credits: none are left to spend
            notes = (f"free tier ended {ended}", *notes)
            values["credits_usd"], values["credits_text"] = 0.0, ""
            provenance["credits_usd"] = provenance["credits_text"] = provenance["free_tier_ended_on"]
        if retired:
            state, reason = ModelState.RETIRED, retired
        elif not any(source in ID_SOURCES for source in record.claims):
            state, reason = ModelState.UNCONFIRMED, "named only by the community list (no API base URL known)"
        else:
            state, reason = ModelState.ACTIVE, ""
        return MergedProvider(
            id=provider_id,
            name=str(values.get("name") or provider_id),
            tier=str(values.get("tier") or "free"),
            state=state,
            state_reason=reason,
            base_url=str(values.get("base_url") or ""),
            protocol=str(values.get("protocol") or ""),
            website=str(values.get("website") or ""),
            limits=dict(values.get("limits") or {}),
            shared_quota=bool(values.get("shared_quota") or False),
            credits_usd=float(values.get("credits_usd") or 0.0),
            credits_text=str(values.get("credits_text") or ""),
            notes=notes,
            provenance=provenance,
            accounts=record.accounts,
            first_seen=record.first_seen,
            last_seen=record.last_seen,
        )

    def _diff(
        self, before_models, before_providers, touched: set[ModelKey], reported: set[str], now: float, source: str
    ) -> list[Change]:
        """Changes of the merged records of the touched models and of their and the reported providers."""
        changes: list[Change] = []
        provider_ids = reported | {key.provider for key in touched}
        for provider_id in sorted(set(before_providers) | provider_ids):
            if provider_id not in self.providers:
                continue
            after = self.merged_provider(provider_id)
            old = before_providers.get(provider_id)
            if old is None:
                state = "" if after.state is ModelState.ACTIVE else f" ({after.state.value})"
                changes.append(Change(now, ChangeKind.ADDED, provider_id, "", source, f"provider {after.name}{state}"))
                continue
            changes += self._provider_changes(old, after, now, source)
        for key in sorted(touched):
            if key not in self.models:
                continue
            after = self.merged_model(key)
            old = before_models.get(key)
            if old is None:
                state = "" if after.state is ModelState.ACTIVE else f" ({after.state.value})"
                changes.append(Change(now, ChangeKind.ADDED, key.provider, key.model, source, f"{after.name}{state}"))
                continue
            changes += _model_changes(old, after, now, source)
        return changes

    def _provider_changes(self, old: MergedProvider, new: MergedProvider, now: float, source: str) -> list[Change]:
        found = []
        if old.state is not new.state:
            kind = {ModelState.RETIRED: ChangeKind.RETIRED, ModelState.UNCONFIRMED: ChangeKind.UPDATED}.get(
                new.state, ChangeKind.RESTORED if old.state is ModelState.RETIRED else ChangeKind.UPDATED
            )
            found.append(Change(now, kind, new.id, "", source, new.state_reason or "active again"))
        if dict(old.limits) != dict(new.limits):
            detail = f"{_describe_limits(old.limits)} -> {_describe_limits(new.limits)}"
            found.append(Change(now, ChangeKind.LIMITS_CHANGED, new.id, "", source, detail))
        old_accounts = {a.alias: dict(a.limits) for a in old.accounts}
        new_accounts = {a.alias: dict(a.limits) for a in new.accounts}
        for alias in sorted(set(old_accounts) | set(new_accounts)):
            if old_accounts.get(alias) != new_accounts.get(alias):
                detail = (
                    f"account {alias}: {_describe_limits(old_accounts.get(alias))} -> "
                    f"{_describe_limits(new_accounts.get(alias))}"
                )
                found.append(Change(now, ChangeKind.LIMITS_CHANGED, new.id, "", source, detail))
        if (old.tier, old.credits_usd) != (new.tier, new.credits_usd):
            detail = f"tier {old.tier} -> {new.tier}, credits ${old.credits_usd:g} -> ${new.credits_usd:g}"
            found.append(Change(now, ChangeKind.PRICING_CHANGED, new.id, "", source, detail))
        return found


def _model_changes(old: MergedModel, new: MergedModel, now: float, source: str) -> list[Change]:
    found = []
    key = (new.provider, new.model)
    if dict(old.limits) != dict(new.limits):
        detail = f"{_describe_limits(old.limits)} -> {_describe_limits(new.limits)}"
        found.append(Change(now, ChangeKind.LIMITS_CHANGED, *key, source, detail))
    if (old.free, old.pricing) != (new.free, new.pricing):
        detail = f"free {old.free} -> {new.free}"
        if new.pricing is not None:
            detail += f" (prompt {new.pricing.prompt or '?'}, completion {new.pricing.completion or '?'})"
        found.append(Change(now, ChangeKind.PRICING_CHANGED, *key, source, detail))
    updated = [
        f"{name} {getattr(old, name)!r} -> {getattr(new, name)!r}"
        for name in ("name", "type", "context_length", "quality", "expiration_date")
        if getattr(old, name) != getattr(new, name)
    ]
    if updated:
        found.append(Change(now, ChangeKind.UPDATED, *key, source, "; ".join(updated)))
    return found


def snapshot(catalogue: Catalogue) -> CatalogueSnapshot:
    """The whole merged catalogue at its revision (built once per revision)."""
    if catalogue._snapshot is None or catalogue._snapshot.revision != catalogue.revision:
        catalogue._snapshot = CatalogueSnapshot(
            revision=catalogue.revision,
            updated_at=catalogue.updated_at,
            providers=tuple(catalogue.merged_provider(pid) for pid in sorted(catalogue.providers)),
            models=tuple(catalogue.merged_model(key) for key in sorted(catalogue.models)),
        )
    return catalogue._snapshot
