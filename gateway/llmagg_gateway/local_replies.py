"""Replies Envoy makes itself (unknown path, body too large, no upstream) in OpenAI's error shape.

401 and 403 come from ext_authz denials, whose body the credentials service already wrote in OpenAI's
shape: those pass through as they are.
"""

from __future__ import annotations

# OpenAI error `type` and `code` per status; a code of None reports Envoy's own response code details.
LOCAL_REPLY_ERRORS = {
    400: ("invalid_request_error", None),
    404: ("invalid_request_error", "unknown_url"),
    405: ("invalid_request_error", "method_not_allowed"),
    408: ("timeout_error", "request_timeout"),
    413: ("invalid_request_error", "request_too_large"),
    426: ("invalid_request_error", "http_version_not_supported"),
    429: ("rate_limit_error", "rate_limit_exceeded"),
    431: ("invalid_request_error", "request_headers_too_large"),
    502: ("service_unavailable_error", "gateway_upstream_error"),
    503: ("service_unavailable_error", "gateway_upstream_unavailable"),
    504: ("timeout_error", "gateway_timeout"),
}
# Statuses a client should retry after a pause: they say so the way OpenAI's API does.
RETRY_AFTER_S = {429: 1, 503: 1}


def _body(error_type: str, code: str | None) -> dict:
    return {
        "json_format": {
            "error": {
                "message": "%LOCAL_REPLY_BODY%",
                "type": error_type,
                "param": None,
                "code": code or "%RESPONSE_CODE_DETAILS%",
            }
        },
        "content_type": "application/json",
    }


# Statuses whose local reply body is already OpenAI JSON (ext_authz denials): passed through as it is.
PASSED_THROUGH = (401, 403)


def _status_filter(status: int) -> dict:
    return {
        "status_code_filter": {
            "comparison": {"op": "EQ", "value": {"default_value": status, "runtime_key": f"llmagg.lr.{status}"}}
        }
    }


def local_reply_config() -> dict:
    passed = [
        {
            "filter": _status_filter(status),
            "body_format_override": {
                "text_format_source": {"inline_string": "%LOCAL_REPLY_BODY%"},
                "content_type": "application/json",
            },
        }
        for status in PASSED_THROUGH
    ]
    mappers = [
        {
            "filter": _status_filter(status),
            "body_format_override": _body(error_type, code),
            **(
                {"headers_to_add": [{"header": {"key": "retry-after", "value": str(RETRY_AFTER_S[status])}}]}
                if status in RETRY_AFTER_S
                else {}
            ),
        }
        for status, (error_type, code) in LOCAL_REPLY_ERRORS.items()
    ]
    return {"mappers": passed + mappers, "body_format": _body("server_error", None)}
