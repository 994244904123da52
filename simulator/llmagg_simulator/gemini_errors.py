"""Google API error bodies ({"error": {code, message, status, details}}), and the errors scripted faults stand for."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from llmagg_simulator.delivery import Dialect
from llmagg_simulator.faults import Fault
from llmagg_simulator.responses import json_response
from llmagg_simulator.validation import BadRequest

STATUS = {
    400: "INVALID_ARGUMENT",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    410: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}
TYPE_PREFIX = "type.googleapis.com/google.rpc."
QUOTA_METRIC = "generativelanguage.googleapis.com/generate_content_free_tier_requests"
QUOTA_LIMIT = 10
OVERLOADED = "The model is overloaded. Please try again later."


def error_body(code: int, message: str, details: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message, "status": STATUS[code]}
    if details:
        error["details"] = details
    return {"error": error}


def error_response(code: int, message: str, details: list[dict[str, Any]] | None = None) -> web.Response:
    return json_response(error_body(code, message, details), status=code)


def bad_request(error: BadRequest) -> web.Response:
    return error_response(400, error.message)  # INVALID_ARGUMENT


def missing_api_key() -> web.Response:
    return error_response(
        403,
        "Method doesn't allow unregistered callers (callers without established identity). "
        "Please use API Key or other form of API consumer identity to call this API.",
    )


def _seconds(value: float) -> str:
    return f"{round(value, 3):g}s"


def rate_limited(seconds: float, model: str | None) -> web.Response:
    """429 RESOURCE_EXHAUSTED: a QuotaFailure, a Help link and a RetryInfo, "Please retry in Ns." in the message.

    As Google does, RetryInfo.retryDelay is whole seconds, rounded down; the message has the exact wait.
    """
    dimensions = {"location": "global", **({"model": model} if model else {})}
    violation = {
        "quotaMetric": QUOTA_METRIC,
        "quotaId": "GenerateRequestsPerMinutePerProjectPerModel-FreeTier",
        "quotaDimensions": dimensions,
        "quotaValue": str(QUOTA_LIMIT),
    }
    return error_response(
        429,
        "You exceeded your current quota, please check your plan and billing details. For more information on "
        "this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits. To monitor your current usage, "
        f"head to: https://ai.dev/rate-limit. \n* Quota exceeded for metric: {QUOTA_METRIC}, limit: {QUOTA_LIMIT}"
        f"{f', model: {model}' if model else ''}\nPlease retry in {_seconds(seconds)}.",
        [
            {"@type": TYPE_PREFIX + "QuotaFailure", "violations": [violation]},
            {
                "@type": TYPE_PREFIX + "Help",
                "links": [
                    {
                        "description": "Learn more about Gemini API quotas",
                        "url": "https://ai.google.dev/gemini-api/docs/rate-limits",
                    }
                ],
            },
            {"@type": TYPE_PREFIX + "RetryInfo", "retryDelay": f"{int(seconds)}s"},
        ],
    )


def fault_error_response(fault: Fault, model: str | None) -> web.Response | None:
    """The error a fault answers with in place of the real answer; None for faults that shape the answer."""
    match fault.type:
        case "429":
            return rate_limited(fault.retry_after, model)
        case "500":
            return error_response(
                500,
                "An internal error has occurred. Please retry or report in "
                "https://developers.generativeai.google/guide/troubleshooting",
            )
        case "503":
            return error_response(503, OVERLOADED)
        case "401":  # the Gemini API answers a key it does not know with a 400, not a 401
            message = "API key not valid. Please pass a valid API key."
            return error_response(
                400,
                message,
                [
                    {
                        "@type": TYPE_PREFIX + "ErrorInfo",
                        "reason": "API_KEY_INVALID",
                        "domain": "googleapis.com",
                        "metadata": {"service": "generativelanguage.googleapis.com"},
                    },
                    {"@type": TYPE_PREFIX + "LocalizedMessage", "locale": "en-US", "message": message},
                ],
            )
        case "400":
            message = "Invalid value at 'generation_config.temperature': must be between 0.0 and 2.0."
            return error_response(
                400,
                message,
                [
                    {
                        "@type": TYPE_PREFIX + "BadRequest",
                        "fieldViolations": [{"field": "generation_config.temperature", "description": message}],
                    }
                ],
            )
        case "context_length":
            return error_response(
                400, "The input token count (1200000) exceeds the maximum number of tokens allowed (1048576)."
            )
        case "410":
            return error_response(410, f"models/{model} is no longer available.")
        case "model_not_found":
            return error_response(404, f"models/{model} is not found for API version v1beta.")
    return None


SSE_END = b"\r\n\r\n"  # the Gemini API ends each event with CRLF CRLF
MALFORMED_BODY = b'{"candidates": [{"content": {"parts": [{"te'
MALFORMED_EVENT = b'data: {"candidates": [{"content": {"parts": [{"te' + SSE_END
STREAM_ERROR_EVENT = (
    b'data: {"error": {"code": 503, "message": "' + OVERLOADED.encode() + b'", "status": "UNAVAILABLE"}}' + SSE_END
)

GEMINI = Dialect(
    bad_request=bad_request,
    fault_error=fault_error_response,
    malformed_body=MALFORMED_BODY,
    malformed_event=MALFORMED_EVENT,
    stream_error_event=STREAM_ERROR_EVENT,
)
