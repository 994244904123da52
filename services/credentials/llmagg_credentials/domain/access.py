"""Who may call what: the gateway's ext_authz decision per request, and the service's own RPC rules.

Client keys (admin or client scope) come through the gateway; the services that call credentials call
as themselves (their service tokens, checked for every service by llmagg.common.caller_auth). Both
the callers and the rules are derived (llmagg.rpcs): management needs an admin key (the protos'
admin_only RPCs), and each service of the table may call the RPCs its row names (`rpcs`): today the
account listing answers the router, ratelimit and discovery; leases the router and discovery;
outcome reports the router only.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from llmagg.common.errors import ErrorKind, ServiceError
from llmagg.gateway_keys import ENVOY_PATHS
from llmagg.rpcs import admin_only_methods, admin_paths, descriptor, peers_allowed, token_of
from llmagg.suite import SERVICES, Service, service
from llmagg_credentials.domain.client_keys import ADMIN, UNAVAILABLE, ClientKeys, Verdict

# Request paths that manage accounts and keys, the routing state and the catalogue (REST through the
# transcoder, or gRPC): admin keys only. Derived from the protos' (llmagg.admin_only) RPCs; the router
# reaches discovery directly, never through the gateway.
ADMIN_PATHS = (*admin_paths(), *ENVOY_PATHS)  # and Envoy's own APIs (xDS, ext_authz): never a client's
CLIENT_ID_HEADER = "x-llmagg-client-id"
CLIENT_SCOPE_HEADER = "x-llmagg-client-scope"
_CREDENTIALS = service("credentials")


def caller_enum(table: tuple[Service, ...] = SERVICES) -> type[enum.Enum]:
    """An admin key, or a service of the table that calls credentials (by its service token)."""
    peers = [s.name for s in table if _CREDENTIALS.name in s.calls]
    return enum.Enum("Caller", {"ADMIN": "admin", **{name.upper(): name for name in peers}})


def caller_rules(caller: type[enum.Enum], table: tuple[Service, ...] = SERVICES) -> dict[str, frozenset]:
    """Which callers each RPC of CredentialsService answers: an admin key where the proto says
    admin_only, each peer the RPCs its row of the table names."""
    admin_only = set(admin_only_methods(_CREDENTIALS))
    return {
        method.name: frozenset({caller.ADMIN} if method.name in admin_only else set())
        | {caller(peer) for peer in peers_allowed(_CREDENTIALS.name, method.name, table)}
        for method in descriptor(_CREDENTIALS).methods
    }


Caller = caller_enum()
RULES: dict[str, frozenset] = caller_rules(Caller)
_SERVICES = {caller.value: caller for caller in Caller if caller is not Caller.ADMIN}


def _who(caller: enum.Enum) -> str:
    return "an admin key" if caller is Caller.ADMIN else token_of(caller.value)


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
            who = " or ".join(_who(c) for c in sorted(allowed, key=lambda c: c.value))
            raise ServiceError(ErrorKind.PERMISSION_DENIED, f"{method} answers {who} only.", code="not_allowed")
        return caller
