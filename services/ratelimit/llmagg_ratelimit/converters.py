"""Symmetric translations between llmagg.ratelimit.v1 messages and the domain's types."""

from __future__ import annotations

import datetime
import math
import re
import time
from collections.abc import Callable, Sequence
from typing import TypeVar

from llmagg.common.errors import ErrorKind, ServiceError
from llmagg.ratelimit.v1 import ratelimit_pb2 as pb
from llmagg_ratelimit.domain.ledger import Decision, Headroom, LeaseReturn, QuotaWindow, Settlement
from llmagg_ratelimit.domain.limits import QuotaKey
from llmagg_ratelimit.domain.ports import BUCKETS, DIMENSIONS, UsageQuery, UsageRecord, UsageTotal

MAX_KEYS = 1000
MAX_SETTLEMENTS = 1000
MAX_LEASE_REQUESTS = 1000
_MAX_TOKENS = 10**9
_RESERVATION_ID = re.compile(r"[A-Za-z0-9_-]{0,64}")
_TRACE_ID = re.compile(r"(?:[0-9a-f]{32})?")  # W3C trace-context's, as OpenTelemetry writes it; "": not traced
MAX_REQUESTED_MODEL = 256
T = TypeVar("T")
U = TypeVar("U")


def _invalid(message: str, param: str) -> ServiceError:
    return ServiceError(ErrorKind.INVALID_ARGUMENT, message, code="invalid_request", param=param)


def to_key(message: pb.QuotaKey, where: str = "key") -> QuotaKey:
    if not message.provider or not message.account:
        raise _invalid(f"`{where}` needs a provider and an account.", where)
    return QuotaKey(message.provider, message.account, message.model)


def from_key(key: QuotaKey) -> pb.QuotaKey:
    return pb.QuotaKey(provider=key.provider, account=key.account, model=key.model)


def tokens(value: int, where: str) -> int:
    """A token count: negative is nonsense (refused); beyond what any request can use, it is clamped, so
    that a huge estimate is still metered (and denied by a token limit) rather than refused."""
    if value < 0:
        raise _invalid(f"`{where}` must be at least 0.", where)
    return min(value, _MAX_TOKENS)


def reserve_response(decision: Decision) -> pb.ReserveResponse:
    return pb.ReserveResponse(
        granted=decision.granted,
        reservation_id=decision.reservation_id,
        retry_after_s=decision.retry_after_s,
        reason=decision.reason,
        requests=decision.requests if decision.granted else 0,
        tokens=decision.tokens,
        valid_for_s=decision.valid_for_s,
        remaining=decision.remaining if decision.granted else 0.0,
    )


def to_settlement(message: pb.Settlement) -> Settlement:
    for name in ("latency_ms", "retry_after_s", "ended_at", "first_token_ms"):
        if not math.isfinite(getattr(message, name)):
            raise _invalid(f"`{name}` must be a finite number.", name)
    if not _TRACE_ID.fullmatch(message.trace_id):
        raise _invalid("`trace_id` must be 32 lowercase hex digits (or empty: not traced).", "trace_id")
    if len(message.requested_model) > MAX_REQUESTED_MODEL:
        raise _invalid(f"`requested_model` must be at most {MAX_REQUESTED_MODEL} characters.", "requested_model")
    return Settlement(
        key=to_key(message.key, "settlements.key"),
        reservation_id=message.reservation_id,
        client_id=message.client_id,
        estimated_tokens=tokens(message.estimated_tokens, "estimated_tokens"),
        usage_known=message.usage_known,
        prompt_tokens=tokens(message.prompt_tokens, "prompt_tokens"),
        completion_tokens=tokens(message.completion_tokens, "completion_tokens"),
        outcome=message.outcome or "ok",
        latency_ms=max(message.latency_ms, 0.0),
        upstream_status=message.upstream_status,
        upstream_headers={k.lower(): v for k, v in message.upstream_headers.items()},
        retry_after_s=max(message.retry_after_s, 0.0),
        quota_id=message.quota_id,
        ended_at=message.ended_at,
        leased=message.leased,
        requested_model=message.requested_model,
        trace_id=message.trace_id,
        first_token_ms=message.first_token_ms if message.first_token_ms > 0 else None,
    )


def checked_each(
    items: Sequence[T], convert: Callable[[T], U], where: str
) -> tuple[list[tuple[int, U]], list[pb.RefusedItem]]:
    """Every item of a batch converted on its own: the good ones with their index, and the bad ones
    refused with why."""
    good: list[tuple[int, U]] = []
    refused: list[pb.RefusedItem] = []
    for index, item in enumerate(items):
        try:
            good.append((index, convert(item)))
        except ServiceError as error:
            refused.append(pb.RefusedItem(list=where, index=index, reason=error.message))
    return good, refused


def reservation_id(value: str, where: str) -> str:
    """A caller's name for a reservation: up to 64 letters, digits, '-' or '_' ("": the service names it)."""
    if not _RESERVATION_ID.fullmatch(value):
        raise _invalid("A reservation id is up to 64 letters, digits, '-' or '_'.", where)
    return value


def to_lease_return(message: pb.LeaseReturn) -> LeaseReturn:
    if not message.reservation_id:
        raise _invalid("A lease return needs the lease's reservation_id.", "returns.reservation_id")
    if message.requests > MAX_LEASE_REQUESTS:
        raise _invalid(f"A lease holds at most {MAX_LEASE_REQUESTS} requests.", "returns.requests")
    return LeaseReturn(
        reservation_id(message.reservation_id, "returns.reservation_id"),
        message.requests,
        tokens(message.tokens, "returns.tokens"),
        message.unclaimed,
    )


def headroom_response(keys: list[QuotaKey], room: dict[QuotaKey, Headroom]) -> pb.HeadroomResponse:
    return pb.HeadroomResponse(
        headroom=[
            pb.KeyHeadroom(key=from_key(key), remaining=room[key].remaining, retry_after_s=room[key].retry_after_s)
            for key in keys
        ]
    )


def _time(text: str, param: str) -> float:
    text = text.strip()
    try:
        if len(text) == 10:
            when = datetime.datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=datetime.UTC)
        else:
            when = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise _invalid(f"`{param}` must be an RFC 3339 time or a date (YYYY-MM-DD), got {text!r}.", param) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.UTC)
    return when.timestamp()


def rfc3339(ts: float) -> str:
    return datetime.datetime.fromtimestamp(ts, datetime.UTC).isoformat().replace("+00:00", "Z")


def to_usage_query(message: pb.QueryUsageRequest, client_filter: str | None) -> UsageQuery:
    """The query asked for; `client_filter` (a plain key's own id) replaces any client_id asked for."""
    end = _time(message.end, "end") if message.end else time.time()
    start = _time(message.start, "start") if message.start else end - 86400
    if start >= end:
        raise _invalid("`start` must be before `end`.", "start")
    if message.bucket not in BUCKETS:
        raise _invalid(f"`bucket` must be one of hour, day, month (or left out), got {message.bucket!r}.", "bucket")
    group_by: list[str] = []
    for item in message.group_by:
        for name in item.split(","):  # ?group_by=provider,model as well as repeated
            name = name.strip()
            if name not in DIMENSIONS:
                raise _invalid(f"`group_by` takes {', '.join(DIMENSIONS)}; got {name!r}.", "group_by")
            if name not in group_by:
                group_by.append(name)
    filters = [(name, getattr(message, name)) for name in ("provider", "account", "model") if getattr(message, name)]
    client = client_filter if client_filter is not None else message.client_id
    if client:
        filters.append(("client_id", client))
    return UsageQuery(start, end, message.bucket, tuple(group_by), tuple(filters))


def usage_response(query: UsageQuery, totals: list[UsageTotal]) -> pb.QueryUsageResponse:
    rows = []
    for total in totals:
        dims = dict(total.dimensions)
        rows.append(
            pb.UsageRow(
                bucket_start=rfc3339(total.bucket_start),
                provider=dims.get("provider", ""),
                account=dims.get("account", ""),
                model=dims.get("model", ""),
                client_id=dims.get("client_id", ""),
                outcome=dims.get("outcome", ""),
                requests=total.requests,
                attempts=total.attempts,
                prompt_tokens=total.prompt_tokens,
                completion_tokens=total.completion_tokens,
                total_tokens=total.prompt_tokens + total.completion_tokens,
                latency_ms_avg=round(total.latency_ms_avg, 3),
                cost_avoided_usd=round(total.cost_avoided_usd, 6),
            )
        )
    return pb.QueryUsageResponse(
        object="usage", start=rfc3339(query.start), end=rfc3339(query.end), bucket=query.bucket, data=rows
    )


def recent_response(records: list[UsageRecord]) -> pb.ListRecentAttemptsResponse:
    return pb.ListRecentAttemptsResponse(
        object="list",
        data=[
            pb.RecentAttempt(
                at=rfc3339(r.ts),
                client_id=r.client_id,
                provider=r.provider,
                account=r.account,
                model=r.model,
                outcome=r.outcome,
                prompt_tokens=r.prompt_tokens,
                completion_tokens=r.completion_tokens,
                latency_ms=round(r.latency_ms, 3),
                cost_avoided_usd=round(r.cost_avoided_usd, 6),
                requested_model=r.requested_model,
                trace_id=r.trace_id,
                first_token_ms=round(r.first_token_ms, 3) if r.first_token_ms is not None else 0.0,
            )
            for r in records
        ],
    )


def windows_response(windows: list[QuotaWindow]) -> pb.GetQuotaWindowsResponse:
    return pb.GetQuotaWindowsResponse(
        windows=[
            pb.QuotaWindow(
                key=pb.QuotaKey(provider=w.key.provider, account=w.key.account, model=w.key.model),
                name=w.name,
                applies_to=w.applies_to,
                dimension=w.dimension,
                used=w.used,
                limit=w.limit,
                resets_in_s=round(w.resets_in_s, 3),
                resets_at=rfc3339(w.resets_at),
            )
            for w in windows
        ]
    )
