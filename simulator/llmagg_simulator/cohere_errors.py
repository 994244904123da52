"""Cohere error bodies ({"id", "message"}), and the error responses that scripted faults stand for."""

from __future__ import annotations

import math
import uuid

from aiohttp import web

from llmagg_simulator.delivery import Dialect
from llmagg_simulator.faults import Fault
from llmagg_simulator.responses import json_response
from llmagg_simulator.validation import BadRequest

INTERNAL = "internal server error, this has been reported to our developers"


def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return json_response({"id": str(uuid.uuid4()), "message": message}, status=status, headers=headers)


def bad_request(error: BadRequest) -> web.Response:
    return error_response(400, error.message)


def missing_api_key() -> web.Response:
    return error_response(401, "no api key supplied")


def rate_limited(seconds: float) -> web.Response:
    """429 with the documented message; retry-after in whole seconds (Cohere documents no rate-limit headers)."""
    return error_response(
        429,
        "You are past the per minute request limit, please wait and try again later.",
        {"retry-after": str(math.ceil(seconds))},
    )


def fault_error_response(fault: Fault, model: str | None) -> web.Response | None:
    """The error a fault answers with in place of the real answer; None for faults that shape the answer."""
    match fault.type:
        case "429":
            return rate_limited(fault.retry_after)
        case "500":
            return error_response(500, INTERNAL)
        case "503":
            return error_response(503, "service unavailable, please try again later")
        case "401":
            return error_response(401, "invalid api token")
        case "400":
            return error_response(400, "invalid request: cannot specify both frequency_penalty and presence_penalty.")
        case "context_length":
            return error_response(
                400,
                "too many tokens: total number of tokens in the prompt cannot exceed 4081 - received 4292. Try using "
                "a shorter prompt, or enabling prompt truncating. See https://docs.cohere.com/reference/generate for "
                "more details.",
            )
        case "410":
            return error_response(410, f"model '{model}' has been removed")
        case "model_not_found":
            return error_response(404, f"model '{model}' not found, make sure the correct model ID was used")
    return None


MALFORMED_BODY = b'{"id": "sim-broken", "message": {"role": "assistant", "content": [{"ty'
MALFORMED_EVENT = b'event: content-delta\ndata: {"type": "content-delta", "index": 0, "delta": {"mess\n\n'
# A Cohere stream reports a failure after it started in its message-end event: finish_reason ERROR and an error.
STREAM_ERROR_EVENT = (
    b'event: message-end\ndata: {"type": "message-end", "delta": {"finish_reason": "ERROR", "error": "'
    + INTERNAL.encode()
    + b'"}}\n\n'
)

COHERE = Dialect(
    bad_request=bad_request,
    fault_error=fault_error_response,
    malformed_body=MALFORMED_BODY,
    malformed_event=MALFORMED_EVENT,
    stream_error_event=STREAM_ERROR_EVENT,
)
