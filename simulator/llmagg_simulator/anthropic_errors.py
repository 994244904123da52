"""Anthropic error bodies, and the error responses that scripted faults stand for (429 with its headers, 529, ...)."""

from __future__ import annotations

import math
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web

from llmagg_simulator.delivery import Dialect
from llmagg_simulator.faults import Fault
from llmagg_simulator.responses import json_response
from llmagg_simulator.validation import BadRequest

# The status of each error type (https://docs.anthropic.com/en/api/errors).
STATUS = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "permission_error": 403,
    "not_found_error": 404,
    "rate_limit_error": 429,
    "api_error": 500,
    "overloaded_error": 529,
}
RATE_LIMITS = {"requests": 50, "tokens": 50000, "input-tokens": 40000, "output-tokens": 10000}


def new_request_id() -> str:
    return f"req_sim_{uuid.uuid4().hex[:24]}"


def error_body(error_type: str, message: str, request_id: str | None = None) -> dict[str, Any]:
    return {"type": "error", "error": {"type": error_type, "message": message}, "request_id": request_id}


def error_response(error_type: str, message: str, headers: dict[str, str] | None = None) -> web.Response:
    request_id = new_request_id()
    return json_response(
        error_body(error_type, message, request_id),
        status=STATUS[error_type],
        headers={"request-id": request_id, **(headers or {})},
    )


def bad_request(error: BadRequest) -> web.Response:
    return error_response("invalid_request_error", error.message)


def missing_api_key() -> web.Response:
    return error_response("authentication_error", "x-api-key header is required")


def missing_version() -> web.Response:
    return error_response("invalid_request_error", "anthropic-version: header is required")


def rfc3339(moment: datetime) -> str:
    """A UTC time as Anthropic's reset headers write it: `2025-01-31T12:00:05Z`."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def rate_limited(seconds: float) -> web.Response:
    """429 rate_limit_error: retry-after in whole seconds, anthropic-ratelimit-* with the reset as an RFC 3339 time."""
    wait_s = math.ceil(seconds)  # never shorter than asked, and the reset times have whole seconds
    reset = rfc3339(datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=wait_s))
    headers = {"retry-after": str(wait_s)}
    for kind, limit in RATE_LIMITS.items():
        exhausted = kind == "requests"
        headers[f"anthropic-ratelimit-{kind}-limit"] = str(limit)
        headers[f"anthropic-ratelimit-{kind}-remaining"] = "0" if exhausted else str(limit)
        headers[f"anthropic-ratelimit-{kind}-reset"] = reset
    return error_response(
        "rate_limit_error",
        "This request would exceed the rate limit for your organization (sim-org) of "
        f"{RATE_LIMITS['requests']} requests per minute. For details, refer to: "
        "https://docs.claude.com/en/api/rate-limits. You can see the response headers for current usage. "
        "Please reduce the prompt length or the maximum tokens requested, or try again later.",
        headers,
    )


def fault_error_response(fault: Fault, model: str | None) -> web.Response | None:
    """The error a fault answers with in place of the real answer; None for faults that shape the answer."""
    match fault.type:
        case "429":
            return rate_limited(fault.retry_after)
        case "500":
            return error_response("api_error", "Internal server error")
        case "503":
            return error_response("overloaded_error", "Overloaded")
        case "401":
            return error_response("authentication_error", "invalid x-api-key")
        case "400":
            return error_response("invalid_request_error", "temperature: range: 0..1")
        case "context_length":
            return error_response("invalid_request_error", "prompt is too long: 209541 tokens > 200000 maximum")
        case "410":
            request_id = new_request_id()
            body = error_body("not_found_error", f"model: {model} has been retired", request_id)
            return json_response(body, status=410, headers={"request-id": request_id})
        case "model_not_found":
            return error_response("not_found_error", f"model: {model}")
    return None


MALFORMED_BODY = b'{"id": "msg_sim_broken", "type": "message", "role": "assistant", "content": [{"ty'
MALFORMED_EVENT = b'event: content_block_delta\ndata: {"type": "content_block_delta", "index": 0, "delta": {"ty\n\n'
STREAM_ERROR_EVENT = (
    b'event: error\ndata: {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}\n\n'
)

ANTHROPIC = Dialect(
    bad_request=bad_request,
    fault_error=fault_error_response,
    malformed_body=MALFORMED_BODY,
    malformed_event=MALFORMED_EVENT,
    stream_error_event=STREAM_ERROR_EVENT,
    headers=lambda: {"request-id": new_request_id()},
)
