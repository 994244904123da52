"""Envoy's `envoy.service.ratelimit.v3.RateLimitService`: the gateway asks it about every request of a
client key with limits (xds_servicer.py tells it which).

The gateway sends one descriptor: `limits` (the marking, ignored here), `client_id` (the key id the key
check set) and `client_scope`; with client auth off `client_id` alone, `anonymous`. Over its
requests per minute, or with a token budget spent, the answer is OVER_LIMIT: Envoy replies 429 with
this body (shaped as OpenAI's error by the gateway's local reply config), `Retry-After`, and the
`x-ratelimit-limit/remaining/reset` headers it derives from the descriptor status.
"""

from __future__ import annotations

import math

import grpc
from envoy.config.core.v3 import base_pb2
from envoy.service.ratelimit.v3 import rls_pb2, rls_pb2_grpc
from google.protobuf import duration_pb2

from llmagg_ratelimit.domain.ledger import ClientDecision, Ledger

SERVICE_NAME = rls_pb2.DESCRIPTOR.services_by_name["RateLimitService"].full_name
CLIENT_DESCRIPTOR = "client_id"
SCOPE_DESCRIPTOR = "client_scope"
_UNITS = {
    "rpm": rls_pb2.RateLimitResponse.RateLimit.MINUTE,
    "tpd": rls_pb2.RateLimitResponse.RateLimit.DAY,
    "tpmonth": rls_pb2.RateLimitResponse.RateLimit.MONTH,
}
_OK = rls_pb2.RateLimitResponse(overall_code=rls_pb2.RateLimitResponse.OK)


def _client(request: rls_pb2.RateLimitRequest) -> tuple[str | None, str]:
    """The client id and scope the gateway sent (None: no client, nothing to limit)."""
    for descriptor in request.descriptors:
        found = {entry.key: entry.value for entry in descriptor.entries}
        if found.get(CLIENT_DESCRIPTOR):
            return found[CLIENT_DESCRIPTOR], found.get(SCOPE_DESCRIPTOR) or "client"
    return None, "client"


def _message(decision: ClientDecision) -> str:
    wait = math.ceil(decision.retry_after_s)
    if decision.limit_name == "rpm":
        what = f"more than its {decision.denied_limit} requests per minute"
    else:
        period = "day" if decision.limit_name == "tpd" else "month"
        what = f"its budget of {decision.denied_limit} tokens per {period}"
    return f"This client key has used {what}; retry after {wait} s (the Retry-After header)."


def _status(decision: ClientDecision) -> rls_pb2.RateLimitResponse.DescriptorStatus:
    if decision.allowed:
        code, name, limit = rls_pb2.RateLimitResponse.OK, "rpm", decision.limit
        remaining, reset = decision.remaining or 0, decision.reset_s
    else:
        code, name, limit = rls_pb2.RateLimitResponse.OVER_LIMIT, decision.limit_name, decision.denied_limit
        remaining, reset = 0, decision.retry_after_s
    status = rls_pb2.RateLimitResponse.DescriptorStatus(code=code, limit_remaining=remaining)
    if limit is not None:
        status.current_limit.CopyFrom(rls_pb2.RateLimitResponse.RateLimit(requests_per_unit=limit, unit=_UNITS[name]))
        status.duration_until_reset.CopyFrom(duration_pb2.Duration(seconds=max(math.ceil(reset), 0)))
    return status


class RateLimitServicer(rls_pb2_grpc.RateLimitServiceServicer):
    def __init__(self, ledger: Ledger) -> None:
        self._ledger = ledger

    async def ShouldRateLimit(self, request: rls_pb2.RateLimitRequest, context) -> rls_pb2.RateLimitResponse:
        client, scope = _client(request)
        if client is None:
            return _OK
        decision = await self._ledger.check_client(client, max(request.hits_addend, 1), scope)
        if decision.allowed and decision.limit is None:
            return _OK
        response = rls_pb2.RateLimitResponse(statuses=[_status(decision)])
        if decision.allowed:
            response.overall_code = rls_pb2.RateLimitResponse.OK
            return response
        response.overall_code = rls_pb2.RateLimitResponse.OVER_LIMIT
        response.raw_body = _message(decision).encode()
        response.response_headers_to_add.append(
            base_pb2.HeaderValue(key="retry-after", value=str(max(math.ceil(decision.retry_after_s), 1)))
        )
        return response


def add_to_server(servicer: RateLimitServicer, server: grpc.aio.Server) -> None:
    rls_pb2_grpc.add_RateLimitServiceServicer_to_server(servicer, server)
