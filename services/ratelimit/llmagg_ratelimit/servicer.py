"""gRPC servicer of RatelimitService: checks who calls, translates, delegates to the ledger."""

from __future__ import annotations

import logging

import grpc

from llmagg.common.caller_auth import require_peer
from llmagg.common.errors import ErrorKind, ServiceError
from llmagg.common.grpc_interceptors import CLIENT_ID_METADATA, CLIENT_SCOPE_METADATA, metadata_value
from llmagg.ratelimit.v1 import ratelimit_pb2 as pb
from llmagg.ratelimit.v1 import ratelimit_pb2_grpc
from llmagg_ratelimit import converters
from llmagg_ratelimit.domain.ledger import Ledger

log = logging.getLogger(__name__)
SERVICE_NAME = pb.DESCRIPTOR.services_by_name["RatelimitService"].full_name
ADMIN_SCOPE = "admin"
DEFAULT_RECENT = 100
MAX_RECENT = 500
MAX_QUOTA_KEYS = 500


class RatelimitServicer(ratelimit_pb2_grpc.RatelimitServiceServicer):
    def __init__(self, ledger: Ledger) -> None:
        self._ledger = ledger

    async def Reserve(self, request: pb.ReserveRequest, context) -> pb.ReserveResponse:
        require_peer("ratelimit", "Reserve")  # it changes or reveals every account's quota
        key = converters.to_key(request.key)
        tokens = converters.tokens(request.estimated_tokens, "estimated_tokens")
        requests = min(request.lease_requests, converters.MAX_LEASE_REQUESTS)
        named = converters.reservation_id(request.reservation_id, "reservation_id")
        return converters.reserve_response(await self._ledger.reserve(key, tokens, requests, named))

    async def Settle(self, request: pb.SettleRequest, context) -> pb.SettleResponse:
        require_peer("ratelimit", "Settle")  # it changes or reveals every account's quota
        if len(request.settlements) + len(request.returns) > converters.MAX_SETTLEMENTS:
            raise ServiceError(
                ErrorKind.INVALID_ARGUMENT,
                f"At most {converters.MAX_SETTLEMENTS} settlements per call.",
                code="invalid_request",
                param="settlements",
            )
        batch_id = converters.reservation_id(request.batch_id, "batch_id")
        # Each settlement is checked on its own: a bad one is refused (and reported) without costing the
        # others of the batch, which come from other requests and other clients, their accounting.
        settlements, refused = converters.checked_each(request.settlements, converters.to_settlement, "settlements")
        returns, refused_returns = converters.checked_each(request.returns, converters.to_lease_return, "returns")
        refused += refused_returns
        for item in refused:
            log.warning("settlement refused: %s[%d]: %s", item.list, item.index, item.reason)
        settled = await self._ledger.settle([item for _, item in settlements], [item for _, item in returns], batch_id)
        refused += [
            pb.RefusedItem(list="settlements", index=settlements[i][0], reason="It could not be applied.")
            for i in settled.failed
        ]
        return pb.SettleResponse(settled=settled.applied, refused=refused)

    async def Headroom(self, request: pb.HeadroomRequest, context) -> pb.HeadroomResponse:
        require_peer("ratelimit", "Headroom")  # it changes or reveals every account's quota
        if len(request.keys) > converters.MAX_KEYS:
            raise ServiceError(
                ErrorKind.INVALID_ARGUMENT, f"At most {converters.MAX_KEYS} keys per call.", code="invalid_request"
            )
        keys = [converters.to_key(key, "keys") for key in request.keys]
        return converters.headroom_response(keys, await self._ledger.headroom(keys))

    async def QueryUsage(self, request: pb.QueryUsageRequest, context) -> pb.QueryUsageResponse:
        metadata = context.invocation_metadata()
        client = metadata_value(metadata, CLIENT_ID_METADATA)
        scope = metadata_value(metadata, CLIENT_SCOPE_METADATA)
        if not client or not scope:
            raise ServiceError(
                ErrorKind.UNAUTHENTICATED,
                "Usage is served through the gateway, which says who is asking.",
                code="missing_client_identity",
            )
        if scope != ADMIN_SCOPE and request.client_id and request.client_id != client:
            raise ServiceError(
                ErrorKind.PERMISSION_DENIED,
                "A client key sees its own usage only; an admin key may ask for another client's.",
                code="insufficient_scope",
                param="client_id",
            )
        query = converters.to_usage_query(request, None if scope == ADMIN_SCOPE else client)
        return converters.usage_response(query, await self._ledger.query_usage(query))

    async def ListRecentAttempts(self, request: pb.ListRecentAttemptsRequest, context) -> pb.ListRecentAttemptsResponse:
        _require_admin(context, "Recent attempts")
        if not 0 <= request.limit <= MAX_RECENT:
            raise ServiceError(
                ErrorKind.INVALID_ARGUMENT,
                f"limit must be between 1 and {MAX_RECENT} (0: {DEFAULT_RECENT}).",
                code="invalid_request",
                param="limit",
            )
        records = await self._ledger.recent_attempts(request.limit or DEFAULT_RECENT)
        return converters.recent_response(records)

    async def GetQuotaWindows(self, request: pb.GetQuotaWindowsRequest, context) -> pb.GetQuotaWindowsResponse:
        _require_admin(context, "Quota windows")
        if len(request.keys) > MAX_QUOTA_KEYS:
            raise ServiceError(
                ErrorKind.INVALID_ARGUMENT, f"At most {MAX_QUOTA_KEYS} keys.", code="invalid_request", param="keys"
            )
        keys = [converters.to_key(key, "keys") for key in request.keys]
        return converters.windows_response(await self._ledger.quota_windows(keys))


def _require_admin(context, what: str) -> None:
    """The gateway lets admin keys only through (admin_only); checked again here for any other way in."""
    if metadata_value(context.invocation_metadata(), CLIENT_SCOPE_METADATA) != ADMIN_SCOPE:
        raise ServiceError(ErrorKind.PERMISSION_DENIED, f"{what} are for admin keys only.", code="insufficient_scope")


def add_to_server(servicer: RatelimitServicer, server: grpc.aio.Server) -> None:
    ratelimit_pb2_grpc.add_RatelimitServiceServicer_to_server(servicer, server)
