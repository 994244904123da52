"""An upstream's error answers, in every shape a provider sends them, read and classified into Failures.

Everything an upstream says goes through `scrub` before it leaves the adapters: the router knows
every key it sends, and no key may come back out of an upstream's answer (an error that echoes the
Authorization header, say).

Google's errors carry `google.rpc` details (ErrorInfo, RetryInfo, QuotaFailure) on the native Gemini
API and on its OpenAI-compatible one alike, so every protocol reads them: a bad key is a 400 there.
"""

from __future__ import annotations

import datetime
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from llmagg.common.logging import scrub
from llmagg_router.adapters.retry_after import parse_duration, retry_after_seconds
from llmagg_router.domain.upstream import Failure, UpstreamError, quota_headers

# How each provider says "the prompt is longer than the model's context window".
_CONTEXT_MARKERS = (
    "context_length_exceeded",
    "maximum context length",
    "context window",
    "too many tokens",
    "prompt is too long",  # Anthropic
    "exceeds the maximum number of tokens",  # Gemini
)
_ERROR_FIELDS = ("message", "type", "param", "code")  # all of an upstream error object a client may see
_MESSAGE_LIMIT = 2000
_RPC = "type.googleapis.com/google.rpc."
REJECTED_KEY_REASONS = frozenset({"API_KEY_INVALID", "API_KEY_EXPIRED"})  # Google's ErrorInfo reasons
QUOTA_DAY_ZONE = "America/Los_Angeles"  # Google's per-day quotas start again at midnight Pacific time


def clean(value: Any, limit: int = _MESSAGE_LIMIT) -> str | None:
    """An upstream value as text a client may see: scrubbed of keys, bounded, None when absent."""
    if value is None or value == "":
        return None
    text = value if isinstance(value, str) else orjson.dumps(value).decode()
    return scrub(text)[:limit]


@dataclass(frozen=True)
class ErrorBody:
    """An upstream's error answer, in whatever shape it came."""

    message: str  # scrubbed
    fields: dict[str, str | None]  # OpenAI's `error` fields, scrubbed: what a client may see
    error: Mapping[str, Any]  # the upstream's error object as parsed (details, reasons): not for clients

    def details(self, kind: str) -> list[dict[str, Any]]:
        """Google's `details` of one google.rpc type ("RetryInfo", "QuotaFailure", ...)."""
        details = self.error.get("details")
        found = details if isinstance(details, list) else ()
        return [d for d in found if isinstance(d, dict) and d.get("@type") == _RPC + kind]


def read_error(raw: bytes) -> ErrorBody:
    """The error text and fields of an OpenAI, Anthropic, Google or Cohere error body (or of plain text)."""
    try:
        parsed = orjson.loads(raw)
    except orjson.JSONDecodeError:
        parsed = None
    if isinstance(parsed, list) and parsed:  # Google sometimes wraps the error in a list
        parsed = parsed[0]
    error = parsed.get("error") if isinstance(parsed, dict) else None
    if isinstance(error, str):
        error = {"message": error}
    if not isinstance(error, dict):
        message = parsed.get("message") if isinstance(parsed, dict) else None  # Cohere: {"id", "message"}
        error = {"message": message if message is not None else raw[:_MESSAGE_LIMIT].decode("utf-8", "replace").strip()}
    return error_body(error)


def error_body(error: Mapping[str, Any]) -> ErrorBody:
    """An error object already parsed (from a stream event, say)."""
    fields = {name: clean(error.get(name)) for name in _ERROR_FIELDS}
    return ErrorBody(fields["message"] or "", fields, error)


def seconds_to_quota_day_end(now: datetime.datetime | None = None) -> float:
    """Seconds until the next midnight Pacific time, when Google's per-day quotas start again."""
    zone = zoneinfo.ZoneInfo(QUOTA_DAY_ZONE)
    now = (now or datetime.datetime.now(datetime.UTC)).astimezone(zone)
    midnight = datetime.datetime.combine(now.date() + datetime.timedelta(days=1), datetime.time(), zone)
    return (midnight - now).total_seconds()


def retry_hint(headers: Mapping[str, str], body: ErrorBody) -> float | None:
    """How long a 429 asks to wait: the headers or the message ("Please retry in 23.4s", exact), else
    Google's RetryInfo.retryDelay (whole seconds); a Google per-day quota is out until its day ends."""
    hint = retry_after_seconds(headers, body.message)
    if hint is None:
        for info in body.details("RetryInfo"):
            delay = info.get("retryDelay")
            if isinstance(delay, str) and (hint := parse_duration(delay)) is not None:
                break
    daily = any(
        "PerDay" in str(violation.get("quotaId", ""))
        for failure in body.details("QuotaFailure")
        for violation in failure.get("violations") or ()
        if isinstance(violation, dict)
    )
    if daily:
        hint = max(hint or 0.0, seconds_to_quota_day_end())
    return hint


def quota_id(body: ErrorBody) -> str:
    """Google's QuotaFailure quotaId ("GenerateRequestsPerDayPerProjectPerModel-FreeTier"), "" when none:
    the quota ledger learns which of its windows ran out."""
    for failure in body.details("QuotaFailure"):
        for violation in failure.get("violations") or ():
            found = violation.get("quotaId") if isinstance(violation, dict) else None
            if isinstance(found, str):
                return found[:200]
    return ""


def classify_error(
    status: int, headers: Mapping[str, str], body: ErrorBody, retry_after_s: float | None = None
) -> UpstreamError:
    """The Failure an HTTP error answer stands for; `retry_after_s`, a wait the dialect read itself."""
    message = body.message
    described = f"HTTP {status}: {message[:300]}" if message else f"HTTP {status}"
    rejected = sorted({info.get("reason") for info in body.details("ErrorInfo")} & REJECTED_KEY_REASONS)
    if status in (401, 403) or rejected:
        why = f" ({rejected[0]})" if rejected else ""
        return UpstreamError(
            Failure.AUTH, f"HTTP {status}: the provider rejected the account's key{why}", status=status
        )
    if status == 429:
        if retry_after_s is None:
            retry_after_s = retry_hint(headers, body)
        return UpstreamError(
            Failure.RATE_LIMITED,
            described,
            status=status,
            retry_after_s=retry_after_s,
            headers=quota_headers(headers),
            quota_id=quota_id(body),
        )
    if status == 529:
        # Anthropic's overloaded_error: the provider lacks capacity for the model, whichever account
        # asks. Fall over, and let the model's circuit learn it; cooling one account would only send
        # the next request to the same overloaded model through another.
        return UpstreamError(Failure.SERVER, f"overloaded: {described}", status=status)
    if status in (404, 410):  # not served here (any more): another provider may serve it
        return UpstreamError(Failure.NOT_FOUND, described, status=status, error=body.fields)
    if status == 408:
        return UpstreamError(Failure.TIMEOUT, described, status=status)
    if 400 <= status < 500 and status != 409:
        lowered = f"{body.fields['code'] or ''} {message}".lower()
        if any(marker in lowered for marker in _CONTEXT_MARKERS):
            return UpstreamError(Failure.CONTEXT_LENGTH, described, status=status, error=body.fields)
        return UpstreamError(Failure.CLIENT, described, status=status, error=body.fields)
    return UpstreamError(Failure.SERVER, described, status=status)


def classify(status: int, headers: Mapping[str, str], raw: bytes) -> UpstreamError:
    """An error answer in any shape, by its status and its hints."""
    return classify_error(status, headers, read_error(raw))
