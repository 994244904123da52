"""Who may call a service at all: the gateway and the suite's own services, each with its token.

Every service's port refuses a call (UNAUTHENTICATED) unless its `x-llmagg-service-token` is one this
service shares with a caller: the gateway (Envoy injects its token on every request it sends upstream,
overwriting whatever a client sent) or a peer of the service table that calls it (a token per pair,
`<NAME>_<PEER>_TOKEN`). gRPC health checking and reflection are probes: they need none. So the identity
headers the gateway sets (`x-llmagg-client-id`/`-scope`) can only come from the gateway, or from a
peer relaying what the gateway told it (the agent to the router).
"""

from __future__ import annotations

import contextvars
import hmac
import logging
import os
import time
from collections.abc import Callable, Mapping

import grpc

from llmagg.common.errors import ErrorKind, ServiceError
from llmagg.common.grpc_interceptors import SERVICE_TOKEN_METADATA, abort_with, metadata_value, wrap_handler
from llmagg.common.metrics import RpcMetrics
from llmagg.common.peers import peer_token
from llmagg.common.secrets import Secret
from llmagg.rpcs import peers_allowed, token_of
from llmagg.suite import SERVICES, Service

log = logging.getLogger(__name__)

GATEWAY = "gateway"
PROBE_PREFIXES = ("/grpc.health.v1.", "/grpc.reflection.")

# The authenticated caller of the RPC being served: "gateway" or a peer's name (set for its handler).
calling_peer: contextvars.ContextVar[str | None] = contextvars.ContextVar("calling_peer", default=None)

REFUSED = ServiceError(
    ErrorKind.UNAUTHENTICATED,
    "This port answers the gateway and the suite's own services only: call through the gateway with a client key.",
    code="missing_service_token",
)


def callers_of(service: str, table: tuple[Service, ...] = SERVICES) -> tuple[str, ...]:
    """Who may call `service`: the gateway, then every service of the table that calls it."""
    return (GATEWAY, *(s.name for s in table if service in s.calls))


def caller_tokens(
    service: str, settings: object, environ: Mapping[str, str] = os.environ, table: tuple[Service, ...] = SERVICES
) -> dict[str, Secret]:
    """The token shared with each caller of `service`: its settings' `<caller>_token` field where it has
    one, else the variable the table names (`<NAME>_<CALLER>_TOKEN`), so a new caller needs no field
    here; callers without one cannot call it. A service not in the table (a test server) has the gateway
    only."""
    row = next((s for s in table if s.name == service), None)
    names = callers_of(service, table) if row is not None else (GATEWAY,)
    tokens = {}
    for name in names:
        if hasattr(settings, f"{name}_token"):
            token = peer_token(settings, name)
        else:
            value = environ.get(row.token_variable(name)) if row is not None else None
            token = Secret(value) if value else None
        if token is not None:
            tokens[name] = token
    return tokens


def require_peer(service: str, method: str) -> None:
    """PERMISSION_DENIED unless the call came from a peer the service table lets call `method` of
    `service` (for services whose RPCs answer their peers only: the gateway routes every gRPC path, so a
    client could otherwise call them)."""
    allowed = peers_allowed(service, method)
    if calling_peer.get() not in allowed:
        who = " or ".join(token_of(peer) for peer in allowed) or "no caller"
        raise ServiceError(ErrorKind.PERMISSION_DENIED, f"This RPC answers {who} only.", code="not_allowed")


REFUSAL_LOG_EVERY_S = 60.0  # a scan must not flood the log: one line per method and minute


def _refusals(method: str, noted: Callable[[], None]):
    """Handlers that refuse a call to `method`, noting each refusal first."""

    async def refuse(request, context):
        noted()
        await abort_with(context, REFUSED)

    async def refuse_streaming(request, context):
        noted()
        await abort_with(context, REFUSED)
        yield  # pragma: no cover (makes this an async generator)

    return refuse, refuse_streaming


class CallerTokens:
    """The token of each caller of a service (a gRPC port's interceptor and a data port check the same)."""

    def __init__(self, tokens: Mapping[str, Secret]) -> None:
        self._tokens = tuple((token.reveal().encode(), name) for name, token in tokens.items())
        owners: dict[bytes, str] = {}
        for token, name in self._tokens:
            if token in owners:
                raise ValueError(
                    f"the {owners[token]} and the {name} share one service token: each caller needs its own"
                )
            owners[token] = name

    def caller(self, token: str | None) -> str | None:
        """The caller a token belongs to; every known token is compared (constant time each)."""
        found, presented = None, (token or "").encode()
        for known, name in self._tokens:
            if hmac.compare_digest(presented, known):
                found = name
        return found if presented else None


class CallerAuthInterceptor(grpc.aio.ServerInterceptor):
    """The outermost interceptor: a call without a known token never reaches a servicer (nor a span or log
    line that would carry its claimed identity)."""

    def __init__(self, tokens: Mapping[str, Secret], metrics: RpcMetrics | None = None) -> None:
        self.callers = CallerTokens(tokens)
        self._metrics = metrics
        self._logged_at: dict[str, float] = {}  # method -> when a refusal of it was last logged

    def caller(self, token: str | None) -> str | None:
        return self.callers.caller(token)

    async def intercept_service(self, continuation, handler_call_details):
        handler = await continuation(handler_call_details)
        if handler is None or handler_call_details.method.startswith(PROBE_PREFIXES):
            return handler
        caller = self.caller(metadata_value(handler_call_details.invocation_metadata, SERVICE_TOKEN_METADATA))
        if caller is None:
            method = handler_call_details.method
            refuse, refuse_streaming = _refusals(method, lambda: self._refused(method))
            return wrap_handler(handler, lambda _: refuse, lambda _: refuse_streaming)
        return _as_caller(handler, caller)

    def _refused(self, method: str) -> None:
        """Counted as UNAUTHENTICATED for `method` (a registered one: bounded labels) and logged, never
        with the token presented."""
        if self._metrics is not None:
            self._metrics.observe(method, grpc.StatusCode.UNAUTHENTICATED, 0.0)
        now = time.monotonic()
        if now - self._logged_at.get(method, -REFUSAL_LOG_EVERY_S) >= REFUSAL_LOG_EVERY_S:
            self._logged_at[method] = now
            log.warning("refused a call to %s without a known service token (said once a minute per method)", method)


def _as_caller(handler: grpc.RpcMethodHandler, caller: str) -> grpc.RpcMethodHandler:
    """`handler`, run with `calling_peer` set to `caller`."""

    def unary(behaviour):
        async def run(request, context):
            calling_peer.set(caller)
            return await behaviour(request, context)

        return run

    def streaming(behaviour):
        async def run(request, context):
            calling_peer.set(caller)
            async for response in behaviour(request, context):
                yield response

        return run

    return wrap_handler(handler, unary, streaming)
