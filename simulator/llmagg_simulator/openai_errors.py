"""OpenAI error bodies, and the error responses that scripted faults stand for (429 with its headers, ...)."""

from __future__ import annotations

import math
from typing import Any

from aiohttp import web

from llmagg_simulator.delivery import Dialect
from llmagg_simulator.faults import Fault
from llmagg_simulator.responses import json_response
from llmagg_simulator.validation import BadRequest


class InvalidRequest(BadRequest):
    """A request body OpenAI would refuse with a 400 invalid_request_error, naming the parameter and a code."""

    def __init__(self, message: str, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.param, self.code = param, code


def bad_request(error: BadRequest) -> web.Response:
    param, code = (error.param, error.code) if isinstance(error, InvalidRequest) else (None, None)
    return error_response(400, error.message, "invalid_request_error", code, param)


def error_body(message: str, error_type: str, code: str | None, param: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": error_type, "param": param, "code": code}}


def error_response(
    status: int,
    message: str,
    error_type: str,
    code: str | None,
    param: str | None = None,
    headers: dict[str, str] | None = None,
) -> web.Response:
    return json_response(error_body(message, error_type, code, param), status=status, headers=headers)


def missing_api_key() -> web.Response:
    return error_response(
        401,
        "You didn't provide an API key. You need to provide your API key in an Authorization header using "
        "Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
        "invalid_request_error",
        "invalid_api_key",
    )


def go_duration(seconds: float) -> str:
    """Seconds as a Go duration, the format of x-ratelimit-reset-*: "0s", "250ms", "1s", "18.6s", "6m0s"."""
    if seconds <= 0:
        return "0s"
    if seconds < 1:
        return f"{round(seconds * 1000, 3):g}ms"
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    text = f"{round(secs, 3):g}s"
    if hours:
        return f"{int(hours)}h{int(minutes)}m{text}"
    if minutes:
        return f"{int(minutes)}m{text}"
    return text


def rate_limited(seconds: float, model: str | None) -> web.Response:
    return error_response(
        429,
        f"Rate limit reached{f' for {model}' if model else ''} in organization org-sim on requests per min (RPM): "
        f"Limit 30, Used 30, Requested 1. Please try again in {round(seconds, 3):g}s.",
        "requests",
        "rate_limit_exceeded",
        headers={
            "retry-after": str(math.ceil(seconds)),  # whole seconds, as HTTP wants; never shorter than the hint
            "x-ratelimit-limit-requests": "30",
            "x-ratelimit-remaining-requests": "0",
            "x-ratelimit-reset-requests": go_duration(seconds),
            "x-ratelimit-limit-tokens": "6000",
            "x-ratelimit-remaining-tokens": "5990",
            "x-ratelimit-reset-tokens": "100ms",
        },
    )


def fault_error_response(fault: Fault, model: str | None) -> web.Response | None:
    """The error a fault answers with in place of the real answer; None for faults that shape the answer."""
    match fault.type:
        case "429":
            return rate_limited(fault.retry_after, model)
        case "500":
            return error_response(500, "The server had an error while processing your request.", "server_error", None)
        case "503":
            return error_response(
                503, "The engine is currently overloaded, please try again later.", "service_unavailable", None
            )
        case "401":
            return error_response(
                401, "Incorrect API key provided: sk-sim***.", "invalid_request_error", "invalid_api_key"
            )
        case "400":
            return error_response(
                400,
                "Invalid value for 'temperature': must be between 0 and 2.",
                "invalid_request_error",
                "invalid_value",
                "temperature",
            )
        case "410":
            return error_response(
                410,
                f"The model '{model}' has been retired and is no longer available.",
                "invalid_request_error",
                "model_not_found",
                "model",
            )
        case "model_not_found":
            return error_response(
                404, f"The model '{model}' does not exist", "invalid_request_error", "model_not_found", "model"
            )
        case "context_length":
            return error_response(
                400,
                "This model's maximum context length is 8192 tokens. However, your messages resulted in "
                "9000 tokens. Please reduce the length of the messages.",
                "invalid_request_error",
                "context_length_exceeded",
                "messages",
            )
    return None


MALFORMED_BODY = b'{"id": "chatcmpl-sim-broken", "object": "chat.completion", "choices": [{"mess'
MALFORMED_CHUNK = b'data: {"id": "chatcmpl-sim-broken", "choices": [{"delta": {"cont\n\n'
# After a stream has started, OpenAI-format providers report a failure as a chunk with an `error` key.
STREAM_ERROR_CHUNK = (
    b'data: {"error": {"message": "The server had an error while processing your request.", '
    b'"type": "server_error", "param": null, "code": null}}\n\n'
)

OPENAI = Dialect(
    bad_request=bad_request,
    fault_error=fault_error_response,
    malformed_body=MALFORMED_BODY,
    malformed_event=MALFORMED_CHUNK,
    stream_error_event=STREAM_ERROR_CHUNK,
)
