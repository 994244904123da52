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

from envoy.service.discovery.v3 import discovery_pb2
from envoy.service.extension.v3 import config_discovery_pb2_grpc

from llmagg import gateway_limits
from llmagg.common import ecds
from llmagg.common.ecds import SERVICE_NAME, TYPE_URL, add_to_server
from llmagg.common.watch_streams import WatchStreams

__all__ = ["SERVICE_NAME", "TYPE_URL", "ExtensionConfigServicer", "add_to_server"]

log = logging.getLogger(__name__)


def response(config: dict, nonce: int) -> discovery_pb2.DiscoveryResponse:
    return discovery_pb2.DiscoveryResponse(
        version_info=gateway_limits.version(config),
        resources=[ecds.packed(config)],
        type_url=TYPE_URL,
        nonce=str(nonce),
    )


class ExtensionConfigServicer(config_discovery_pb2_grpc.ExtensionConfigDiscoveryServiceServicer):
    def __init__(self, clients: gateway_limits.LimitedClients, streams: WatchStreams) -> None:
        self._config = gateway_limits.limits_filter(clients)
        self._streams = streams  # ended when the service stops

    async def StreamExtensionConfigs(self, request_iterator, context):
        await ecds.refuse_unless_gateway(context)
        version, nonce = gateway_limits.version(self._config), 0
        async for request in self._streams.until_stopped(request_iterator):
            if request.HasField("error_detail"):
                log.warning("a gateway rejected client limits config %s: %s", version, request.error_detail.message)
                continue
            if nonce and request.version_info == version:
                continue  # an acknowledgement
            if request.resource_names and gateway_limits.FILTER_NAME not in request.resource_names:
                continue
            nonce += 1
            yield response(self._config, nonce)
