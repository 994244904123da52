"""Envoy's extension config discovery (ECDS, `envoy.service.extension.v3`, state of the world): every
gateway's `llmagg.client-limits` filter (llmagg.gateway_limits), which marks the requests whose client
has limits; Envoy asks this service about those only. Only the gateway's service token opens a stream.

The client limits are settings, fixed for the process's life: the first request of a stream is answered
with the filter (whatever version it names: it may come from another replica or an older rendering),
then each request that does not acknowledge the version sent; a rejected config (NACK) is logged and
not resent.
"""

from __future__ import annotations

import logging

# The config's types, registered for json_format by importing them.
import envoy.extensions.common.matching.v3.extension_matcher_pb2
import envoy.extensions.filters.http.composite.v3.composite_pb2
import envoy.extensions.filters.http.header_mutation.v3.header_mutation_pb2
import envoy.type.matcher.v3.http_inputs_pb2  # noqa: F401
import grpc
from envoy.config.core.v3 import extension_pb2
from envoy.service.discovery.v3 import discovery_pb2
from envoy.service.extension.v3 import config_discovery_pb2_grpc
from google.protobuf import any_pb2, json_format

from llmagg import gateway_limits
from llmagg.common.caller_auth import GATEWAY, calling_peer
from llmagg.common.errors import ErrorKind, ServiceError
from llmagg.common.grpc_interceptors import abort_with

log = logging.getLogger(__name__)

SERVICE_NAME = "envoy.service.extension.v3.ExtensionConfigDiscoveryService"
TYPE_URL = "type.googleapis.com/envoy.config.core.v3.TypedExtensionConfig"
_GATEWAY_ONLY = ServiceError(
    ErrorKind.PERMISSION_DENIED, "This RPC answers the gateway's service token only.", code="not_allowed"
)


def response(config: dict, nonce: int) -> discovery_pb2.DiscoveryResponse:
    resource = any_pb2.Any()
    resource.Pack(json_format.ParseDict(config, extension_pb2.TypedExtensionConfig()))
    return discovery_pb2.DiscoveryResponse(
        version_info=gateway_limits.version(config), resources=[resource], type_url=TYPE_URL, nonce=str(nonce)
    )


class ExtensionConfigServicer(config_discovery_pb2_grpc.ExtensionConfigDiscoveryServiceServicer):
    def __init__(self, clients: gateway_limits.LimitedClients) -> None:
        self._config = gateway_limits.limits_filter(clients)

    async def StreamExtensionConfigs(self, request_iterator, context):
        if calling_peer.get() != GATEWAY:  # what the gateway is told, and the gateway alone
            await abort_with(context, _GATEWAY_ONLY)
        version, nonce = gateway_limits.version(self._config), 0
        async for request in request_iterator:
            if request.HasField("error_detail"):
                log.warning("a gateway rejected client limits config %s: %s", version, request.error_detail.message)
                continue
            if nonce and request.version_info == version:
                continue  # an acknowledgement
            if request.resource_names and gateway_limits.FILTER_NAME not in request.resource_names:
                continue
            nonce += 1
            yield response(self._config, nonce)


def add_to_server(servicer: ExtensionConfigServicer, server: grpc.aio.Server) -> None:
    config_discovery_pb2_grpc.add_ExtensionConfigDiscoveryServiceServicer_to_server(servicer, server)
