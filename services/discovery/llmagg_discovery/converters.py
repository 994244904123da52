"""Domain records -> protobuf messages, and the request fields that need reading (spans of time)."""

from __future__ import annotations

import datetime
import re

from llmagg.common.errors import ErrorKind, ServiceError
from llmagg.discovery.v1 import discovery_pb2 as pb
from llmagg_discovery.domain.catalogue import iso
from llmagg_discovery.domain.records import (
    AccountStatus,
    CatalogueSnapshot,
    Change,
    ChangeKind,
    MergedModel,
    MergedProvider,
    ModelState,
)
from llmagg_discovery.domain.scheduler import SourceStatus

_STATES = {
    ModelState.ACTIVE: pb.MODEL_STATE_ACTIVE,
    ModelState.UNCONFIRMED: pb.MODEL_STATE_UNCONFIRMED,
    ModelState.SUSPENDED: pb.MODEL_STATE_SUSPENDED,
    ModelState.RETIRED: pb.MODEL_STATE_RETIRED,
}
_KINDS = {kind: getattr(pb, f"CHANGE_KIND_{kind.name}") for kind in ChangeKind}
_SPAN = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhdw])$")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
DEFAULT_SINCE_S = 7 * 86400.0


def model(entry: MergedModel) -> pb.CatalogModel:
    message = pb.CatalogModel(
        provider=entry.provider,
        model=entry.model,
        name=entry.name,
        type=entry.type,
        state=_STATES[entry.state],
        state_reason=entry.state_reason,
        state_since=iso(entry.state_since),
        free=entry.free,
        context_length=entry.context_length,
        quality=entry.quality,
        aliases=entry.aliases,
        limits=dict(entry.limits),
        capabilities=entry.capabilities,
        expiration_date=entry.expiration_date,
        provenance=dict(entry.provenance),
        confidence=entry.confidence,
        first_seen=iso(entry.first_seen),
        last_seen=iso(entry.last_seen),
        sources=entry.sources,
    )
    if entry.pricing is not None:
        message.pricing.CopyFrom(pb.Pricing(prompt=entry.pricing.prompt, completion=entry.pricing.completion))
    return message


def account(status: AccountStatus) -> pb.AccountStatus:
    message = pb.AccountStatus(
        alias=status.alias,
        free_tier=status.free_tier,
        limits=dict(status.limits),
        usage_usd=status.usage_usd,
        checked_at=iso(status.checked_at),
    )
    if status.limit_usd is not None:
        message.limit_usd = status.limit_usd
    if status.limit_remaining_usd is not None:
        message.limit_remaining_usd = status.limit_remaining_usd
    return message


def provider(entry: MergedProvider) -> pb.CatalogProvider:
    return pb.CatalogProvider(
        id=entry.id,
        name=entry.name,
        tier=entry.tier,
        state=_STATES[entry.state],
        state_reason=entry.state_reason,
        base_url=entry.base_url,
        protocol=entry.protocol,
        website=entry.website,
        limits=dict(entry.limits),
        shared_quota=entry.shared_quota,
        credits=pb.Credits(usd=entry.credits_usd, text=entry.credits_text),
        notes=entry.notes,
        provenance=dict(entry.provenance),
        accounts=[account(a) for a in entry.accounts],
        first_seen=iso(entry.first_seen),
        last_seen=iso(entry.last_seen),
    )


def catalog(
    snapshot: CatalogueSnapshot, provider_id: str = "", free_only: bool = False, include_retired: bool = True
) -> pb.Catalog:
    models = [
        model(m)
        for m in snapshot.models
        if (not provider_id or m.provider == provider_id)
        and (not free_only or m.free)
        and (include_retired or m.state is not ModelState.RETIRED)
    ]
    providers = [
        provider(p)
        for p in snapshot.providers
        if (not provider_id or p.id == provider_id) and (include_retired or p.state is not ModelState.RETIRED)
    ]
    return pb.Catalog(
        revision=snapshot.revision, updated_at=iso(snapshot.updated_at), providers=providers, models=models
    )


def change(entry: Change) -> pb.CatalogChange:
    return pb.CatalogChange(
        id=entry.id,
        at=iso(entry.at),
        kind=_KINDS[entry.kind],
        provider=entry.provider,
        model=entry.model,
        source=entry.source,
        detail=entry.detail,
    )


def source_status(status: SourceStatus) -> pb.SourceStatus:
    return pb.SourceStatus(
        name=status.name,
        enabled=status.enabled,
        interval_s=status.interval_s,
        last_attempt_at=iso(status.last_attempt_at),
        last_success_at=iso(status.last_success_at),
        last_error=status.last_error,
        consecutive_failures=status.consecutive_failures,
        next_run_at=iso(status.next_run_at),
    )


def since(text: str, now: float) -> float:
    """`since` of ListChanges: an RFC 3339 time, a span back from now (30m, 24h, 7d), or "" (7 days)."""
    text = text.strip()
    if not text:
        return now - DEFAULT_SINCE_S
    span = _SPAN.match(text.lower())
    if span:
        return now - float(span.group(1)) * _SECONDS[span.group(2)]
    try:
        moment = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ServiceError(
            ErrorKind.INVALID_ARGUMENT,
            f"`since` must be an RFC 3339 time (2026-07-30T00:00:00Z) or a span such as 30m, 24h, 7d; got {text!r}.",
            code="invalid_since",
            param="since",
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.UTC)
    return moment.timestamp()
