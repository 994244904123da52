"""Domain errors shared by every service. No grpc import: servicers map these to statuses."""

from __future__ import annotations

import enum
from typing import Any


class ErrorKind(enum.Enum):
    """What went wrong, independent of transport. Each maps to one gRPC status and HTTP status."""

    INVALID_ARGUMENT = "invalid_argument"
    NOT_FOUND = "not_found"
    ALREADY_EXISTS = "already_exists"
    UNAUTHENTICATED = "unauthenticated"
    PERMISSION_DENIED = "permission_denied"
    RESOURCE_EXHAUSTED = "resource_exhausted"
    FAILED_PRECONDITION = "failed_precondition"
    UNAVAILABLE = "unavailable"
    DEADLINE_EXCEEDED = "deadline_exceeded"
    INTERNAL = "internal"


# The HTTP status of each kind: Envoy's for the gRPC status it maps to (grpc_json_transcoder), so a REST
# client sees the same one whichever port served it.
HTTP_STATUS_BY_KIND = {
    ErrorKind.INVALID_ARGUMENT: 400,
    ErrorKind.NOT_FOUND: 404,
    ErrorKind.ALREADY_EXISTS: 409,
    ErrorKind.UNAUTHENTICATED: 401,
    ErrorKind.PERMISSION_DENIED: 403,
    ErrorKind.RESOURCE_EXHAUSTED: 429,
    ErrorKind.FAILED_PRECONDITION: 400,
    ErrorKind.UNAVAILABLE: 503,
    ErrorKind.DEADLINE_EXCEEDED: 504,
    ErrorKind.INTERNAL: 500,
}


# The `type` OpenAI puts in its error JSON for each kind.
_OPENAI_TYPES = {
    ErrorKind.INVALID_ARGUMENT: "invalid_request_error",
    ErrorKind.NOT_FOUND: "invalid_request_error",
    ErrorKind.ALREADY_EXISTS: "invalid_request_error",
    ErrorKind.UNAUTHENTICATED: "authentication_error",
    ErrorKind.PERMISSION_DENIED: "permission_error",
    ErrorKind.RESOURCE_EXHAUSTED: "rate_limit_error",
    ErrorKind.FAILED_PRECONDITION: "invalid_request_error",
    ErrorKind.UNAVAILABLE: "service_unavailable_error",
    ErrorKind.DEADLINE_EXCEEDED: "timeout_error",
    ErrorKind.INTERNAL: "server_error",
}


class ServiceError(Exception):
    """An error a client should see, with everything needed to render it on REST and gRPC.

    `retryable=False` tells clients (the openai SDK reads `x-should-retry`) not to retry a
    status they would otherwise retry, e.g. a 503 caused by missing configuration.
    `retry_elsewhere=True` tells the gateway the request was not served and may go to another replica.
    `http_status` replaces the HTTP status the gateway derives from the kind (502 has no gRPC code).
    `grpc_message` is the message in gRPC's words, where REST's would mislead a gRPC client (it names
    `GET /v1/models` or a header): the status carries it, the OpenAI error JSON keeps `message`.
    """

    def __init__(
        self,
        kind: ErrorKind,
        message: str,
        *,
        code: str,
        error_type: str | None = None,
        param: str | None = None,
        retry_after_s: float | None = None,
        retryable: bool | None = None,
        retry_elsewhere: bool = False,
        http_status: int | None = None,
        grpc_message: str | None = None,
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.grpc_message = grpc_message or message
        self.code = code
        self.error_type = error_type or _OPENAI_TYPES[kind]
        self.param = param
        self.retry_after_s = retry_after_s
        self.retryable = retryable
        self.retry_elsewhere = retry_elsewhere
        self.http_status = http_status

    def openai_error(self) -> dict[str, Any]:
        return {
            "error": {
                "message": self.message,
                "type": self.error_type,
                "param": self.param,
                "code": self.code,
            }
        }

    def __repr__(self) -> str:
        return f"ServiceError({self.kind.name}, code={self.code!r}, message={self.message!r})"
