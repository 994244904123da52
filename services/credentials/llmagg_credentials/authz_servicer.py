"""Envoy's `envoy.service.auth.v3.Authorization` (ext_authz): the gateway asks it about every request.

It translates Envoy's CheckRequest to the domain's decision and the decision back to a CheckResponse:
an OK that sets `x-llmagg-client-id` / `x-llmagg-client-scope` (overwriting anything the client
sent) and removes `authorization`, or an OpenAI-shaped 401/403/503. Responses are built once per
distinct outcome, so a cached verdict costs a lookup and no allocation.
"""

from __future__ import annotations

import functools

import grpc
import orjson
from envoy.config.core.v3 import base_pb2
from envoy.service.auth.v3 import external_auth_pb2 as pb
from envoy.service.auth.v3 import external_auth_pb2_grpc
from envoy.type.v3 import http_status_pb2
from google.rpc import code_pb2, status_pb2

from llmagg_credentials.domain.access import CLIENT_ID_HEADER, CLIENT_SCOPE_HEADER, Access, Decision

SERVICE_NAME = "envoy.service.auth.v3.Authorization"
_OVERWRITE = base_pb2.HeaderValueOption.OVERWRITE_IF_EXISTS_OR_ADD
_GRPC_CODES = {401: code_pb2.UNAUTHENTICATED, 403: code_pb2.PERMISSION_DENIED}


def _header(key: str, value: str) -> base_pb2.HeaderValueOption:
    return base_pb2.HeaderValueOption(header=base_pb2.HeaderValue(key=key, value=value), append_action=_OVERWRITE)


@functools.lru_cache(maxsize=4096)
def _allowed(client_id: str, scope: str, keep_authorization: bool) -> pb.CheckResponse:
    return pb.CheckResponse(
        status=status_pb2.Status(code=code_pb2.OK),
        ok_response=pb.OkHttpResponse(
            headers=[_header(CLIENT_ID_HEADER, client_id), _header(CLIENT_SCOPE_HEADER, scope)],
            headers_to_remove=[] if keep_authorization else ["authorization"],
        ),
    )


@functools.lru_cache(maxsize=64)
def _denied(status: int, body: bytes) -> pb.CheckResponse:
    return pb.CheckResponse(
        status=status_pb2.Status(code=_GRPC_CODES.get(status, code_pb2.UNAVAILABLE)),
        denied_response=pb.DeniedHttpResponse(
            status=http_status_pb2.HttpStatus(code=status),
            headers=[_header("content-type", "application/json")],
            body=body.decode(),
        ),
    )


def check_response(decision: Decision) -> pb.CheckResponse:
    if decision.allowed:
        verdict = decision.verdict
        return _allowed(verdict.client_id, verdict.scope, decision.keep_authorization)
    return _denied(decision.status, orjson.dumps(decision.openai_error()))


class AuthorizationServicer(external_auth_pb2_grpc.AuthorizationServicer):
    def __init__(self, access: Access) -> None:
        self._access = access

    async def Check(self, request: pb.CheckRequest, context) -> pb.CheckResponse:
        http = request.attributes.request.http
        headers = http.headers
        decision = await self._access.decide(http.path or headers.get(":path", ""), headers.get("authorization", ""))
        return check_response(decision)


def add_to_server(servicer: AuthorizationServicer, server: grpc.aio.Server) -> None:
    external_auth_pb2_grpc.add_AuthorizationServicer_to_server(servicer, server)
