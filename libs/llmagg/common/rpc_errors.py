"""The other side of the error interceptor: a failed call to a service of the suite as a ServiceError.

A service that calls another (the agent calls the router) passes the callee's error on as it was meant
for clients: the same kind, message, OpenAI code and type, Retry-After and HTTP status, all read from
the status and the trailing metadata the callee's interceptor wrote.
"""

from __future__ import annotations

import json

import grpc

from llmagg.common.errors import ErrorKind, ServiceError
from llmagg.common.grpc_interceptors import HTTP_STATUS_METADATA, OPENAI_ERROR_METADATA, STATUS_BY_KIND

KIND_BY_STATUS = {status: kind for kind, status in STATUS_BY_KIND.items()}


def _metadata(error: grpc.aio.AioRpcError) -> dict[str, str]:
    return {key: value for key, value in error.trailing_metadata() or () if isinstance(value, str)}


def service_error(error: grpc.aio.AioRpcError, callee: str) -> ServiceError:
    """`error` from `callee` as the ServiceError to raise; one without the suite's details says the callee failed."""
    trailers = _metadata(error)
    kind = KIND_BY_STATUS.get(error.code())
    try:
        detail = json.loads(trailers[OPENAI_ERROR_METADATA])["error"]
    except (KeyError, ValueError, TypeError):
        detail = None
    if kind is None or not isinstance(detail, dict):
        if error.code() == grpc.StatusCode.DEADLINE_EXCEEDED:
            return ServiceError(
                ErrorKind.DEADLINE_EXCEEDED, f"The {callee} did not answer in time.", code="request_timeout"
            )
        return ServiceError(
            ErrorKind.UNAVAILABLE,
            f"The {callee} could not be reached ({error.code().name.lower()}).",
            code=f"{callee}_unavailable",
            retry_after_s=1,
        )
    retry_after = trailers.get("retry-after")
    should_retry = trailers.get("x-should-retry")
    http_status = trailers.get(HTTP_STATUS_METADATA)
    return ServiceError(
        kind,
        str(detail.get("message") or error.details() or ""),
        code=str(detail.get("code") or kind.value),
        error_type=detail.get("type") or None,
        param=detail.get("param"),
        retry_after_s=float(retry_after) if retry_after and retry_after.isdigit() else None,
        retryable=None if should_retry is None else should_retry == "true",
        http_status=int(http_status) if http_status and http_status.isdigit() else None,
    )
