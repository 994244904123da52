"""Replies Envoy makes itself (unknown path, body too large, no upstream) in OpenAI's error shape.

401 and 403 from ext_authz denials carry the body the credentials service wrote in OpenAI's shape: those
pass through as they are. A 401 from the key check inside Envoy (basic_auth) gets the same bodies the
service writes, by what the key-routing filter found (`x-llmagg-auth`: no key, or a key it checked). The gateway's own `/health` answers `{"status": "ok"}`, or an
error while a service has no healthy replica. A 400's code is Envoy's response code details: the
error filter (openai_errors.lua) turns the transcoder's (`grpc_json_transcode_failure{...}`) into
precise errors naming the field.
"""

from __future__ import annotations

from llmagg import gateway_keys
from llmagg_gateway.console_routes import console_reply_mappers

HEALTH_PATH = "/health"

# OpenAI error `type` and `code` per status; a code of None reports Envoy's own response code details.
LOCAL_REPLY_ERRORS = {
    400: ("invalid_request_error", None),
    404: ("invalid_request_error", "unknown_url"),
    405: ("invalid_request_error", "method_not_allowed"),
    408: ("timeout_error", "request_timeout"),
    413: ("invalid_request_error", "request_too_large"),
    415: ("invalid_request_error", "unsupported_media_type"),
    426: ("invalid_request_error", "http_version_not_supported"),
    429: ("rate_limit_error", "rate_limit_exceeded"),
    431: ("invalid_request_error", "request_headers_too_large"),
    502: ("service_unavailable_error", "gateway_upstream_error"),
    503: ("service_unavailable_error", "gateway_upstream_unavailable"),
    504: ("timeout_error", "gateway_timeout"),
}
# Statuses a client should retry after a pause: they say so the way OpenAI's API does.
RETRY_AFTER_S = {429: 1, 503: 1}
# A message of the gateway's own where Envoy's reply has none or only its internals: the key check that
# could not be made (ext_authz's error reply is empty), a replica gone mid-request ("upstream connect
# error or disconnect/reset before headers...", which stays in the access log's details).
OWN_MESSAGES = {
    503: "The gateway could not get an answer from a service this request needs (a replica may be restarting); "
    "retry shortly.",
}


def _body(error_type: str, code: str | None, message: str = "%LOCAL_REPLY_BODY%") -> dict:
    return {
        "json_format": {
            "error": {
                "message": message,
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


def _health_filter(status: int) -> dict:
    path = {"header": {"name": ":path", "string_match": {"exact": HEALTH_PATH}}}
    return {"and_filter": {"filters": [_status_filter(status), {"header_filter": path}]}}


HEALTH_MAPPERS = [
    {
        "filter": _health_filter(200),
        "body_format_override": {"json_format": {"status": "ok"}, "content_type": "application/json"},
    },
    {
        "filter": _health_filter(503),
        "body_format_override": _body(
            "service_unavailable_error", "gateway_unhealthy", "A service of the suite has no healthy replica."
        ),
    },
]


def _key_filter(check: str) -> dict:
    header = {"header": {"name": gateway_keys.AUTH_HEADER, "string_match": {"exact": check}}}
    return {"and_filter": {"filters": [_status_filter(401), {"header_filter": header}]}}


def _key_error(code: str, message: str) -> dict:
    error = {"message": message, "type": "authentication_error", "param": None, "code": code}
    return {"json_format": {"error": error}, "content_type": "application/json"}


KEY_MAPPERS = [
    {
        "filter": _key_filter("missing"),
        "body_format_override": _key_error("missing_api_key", gateway_keys.MISSING_MESSAGE),
    },
    {
        "filter": _key_filter("envoy"),
        "body_format_override": _key_error("invalid_api_key", gateway_keys.INVALID_MESSAGE),
    },
]


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
            "body_format_override": _body(error_type, code, OWN_MESSAGES.get(status, "%LOCAL_REPLY_BODY%")),
            **(
                {
                    # A rate-limit denial brings its own Retry-After (the wait its window needs).
                    "headers_to_add": [
                        {
                            "header": {"key": "retry-after", "value": str(RETRY_AFTER_S[status])},
                            "append_action": "ADD_IF_ABSENT",
                        }
                    ]
                }
                if status in RETRY_AFTER_S
                else {}
            ),
        }
        for status, (error_type, code) in LOCAL_REPLY_ERRORS.items()
    ]
    return {
        "mappers": HEALTH_MAPPERS + console_reply_mappers() + KEY_MAPPERS + passed + mappers,
        "body_format": _body("server_error", None),
    }
