"""Who may call what: the gateway's ext_authz decision per request, and the service's own RPC rules.

Client keys (admin or client scope) come through the gateway; the router, ratelimit and discovery call
as themselves (their service tokens, checked for every service by llmagg.common.caller_auth). Management needs an admin key; the account listing also answers the router,
ratelimit (which reads the accounts' limit overrides) and discovery; leases answer the router and
discovery (which calls providers' model lists); outcome reports answer the router only.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from llmagg.common.errors import ErrorKind, ServiceError
from llmagg_credentials.domain.client_keys import ADMIN, UNAVAILABLE, ClientKeys, Verdict

# Request paths that manage accounts and keys (REST through the transcoder, or gRPC): admin keys only.
ADMIN_PATHS = (
    "/v1/admin/",
    "/llmagg.credentials.v1.CredentialsService/",
    "/llmagg.router.v1.RouterService/GetRoutingState",
    # The catalogue with account statuses, its history, refreshes (RefreshNow, ListChanges, ...); the
    # router reaches discovery directly, never through the gateway.
    "/llmagg.discovery.v1.DiscoveryService/",
)
CLIENT_ID_HEADER = "x-llmagg-client-id"
CLIENT_SCOPE_HEADER = "x-llmagg-client-scope"


class Caller(enum.Enum):
    ADMIN = "admin"
    ROUTER = "router"
    RATELIMIT = "ratelimit"
    DISCOVERY = "discovery"


_SERVICES = {caller.value: caller for caller in Caller if caller is not Caller.ADMIN}

_WHO = {
    Caller.ADMIN: "an admin key",
    Caller.ROUTER: "the router's service token",
    Caller.RATELIMIT: "the ratelimit service's token",
    Caller.DISCOVERY: "the discovery service's token",
}

# Which callers each RPC of CredentialsService answers.
RULES: dict[str, frozenset[Caller]] = {
    "AddAccount": frozenset({Caller.ADMIN}),
    "ListAccounts": frozenset({Caller.ADMIN, Caller.ROUTER, Caller.RATELIMIT, Caller.DISCOVERY}),
    "GetAccount": frozenset({Caller.ADMIN}),
    "UpdateAccount": frozenset({Caller.ADMIN}),
    "RotateAccountKey": frozenset({Caller.ADMIN}),
    "DeleteAccount": frozenset({Caller.ADMIN}),
    "Lease": frozenset({Caller.ROUTER, Caller.DISCOVERY}),
    "ReportOutcome": frozenset({Caller.ROUTER}),
    "CreateClientKey": frozenset({Caller.ADMIN}),
    "ListClientKeys": frozenset({Caller.ADMIN}),
    "RevokeClientKey": frozenset({Caller.ADMIN}),
}


def bearer(authorization: str) -> str:
    """The key of an `Authorization: Bearer <key>` header ("" when there is none)."""
    scheme, _, value = authorization.strip().partition(" ")
    return value.strip() if scheme.lower() == "bearer" else ""


def is_admin_path(path: str) -> bool:
    return path.startswith(ADMIN_PATHS)


@dataclass(frozen=True)
class Decision:
    """The gateway's verdict on one request."""

    status: int  # 200, 401, 403 or 503
    verdict: Verdict
    code: str = ""
    message: str = ""
    # The service behind an admin path checks the key again itself, so it keeps the header;
    # every other request loses it before it goes on (it must never reach a provider).
    keep_authorization: bool = False

    @property
    def allowed(self) -> bool:
        return self.status == 200

    def openai_error(self) -> dict:
        error_type = {401: "authentication_error", 403: "permission_error"}.get(
            self.status, "service_unavailable_error"
        )
        return {"error": {"message": self.message, "type": error_type, "param": None, "code": self.code}}


class Access:
    def __init__(self, keys: ClientKeys) -> None:
        self._keys = keys

    async def decide(self, path: str, authorization: str) -> Decision:
        """ext_authz: any valid key on model routes, an admin key on admin routes."""
        verdict = await self._keys.verify(bearer(authorization))
        if verdict is UNAVAILABLE:
            return Decision(503, verdict, verdict.problem, verdict.message)
        if not verdict.ok:
            return Decision(401, verdict, verdict.problem, verdict.message)
        admin_path = is_admin_path(path)
        if admin_path and verdict.scope != ADMIN:
            return Decision(
                403,
                verdict,
                "insufficient_scope",
                "This route manages accounts and keys and needs an admin key; this key may call the model routes only.",
            )
        return Decision(200, verdict, keep_authorization=admin_path)

    async def require(self, method: str, peer: str | None, authorization: str) -> Caller:
        """The caller of `method`, or UNAUTHENTICATED / PERMISSION_DENIED. `peer` is who the call's
        service token proved it came from: a service of the suite calls as itself; through the gateway
        (or with no peer) the client key in `authorization` decides."""
        allowed = RULES[method]
        caller = _SERVICES.get(peer or "")
        if caller is None:
            verdict = await self._keys.verify(bearer(authorization))
            if verdict is UNAVAILABLE:
                raise ServiceError(ErrorKind.UNAVAILABLE, verdict.message, code=verdict.problem)
            if not verdict.ok:
                raise ServiceError(ErrorKind.UNAUTHENTICATED, verdict.message, code=verdict.problem)
            if verdict.scope != ADMIN:
                raise ServiceError(
                    ErrorKind.PERMISSION_DENIED,
                    f"{method} needs an admin key; this key may call the model routes only.",
                    code="insufficient_scope",
                )
            caller = Caller.ADMIN
        if caller not in allowed:
            who = " or ".join(_WHO[c] for c in sorted(allowed, key=lambda c: c.value))
            raise ServiceError(ErrorKind.PERMISSION_DENIED, f"{method} answers {who} only.", code="not_allowed")
        return caller
