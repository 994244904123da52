"""What the suite's two ECDS servers share (envoy.service.extension.v3, state of the world: the
credentials service serves the gateways' client-key filters, ratelimit their client-limits marking):
the service and resource type, a filter's config packed as ECDS sends it, and the rule that only the
gateway's service token opens a stream."""

from __future__ import annotations

# The filters' config types, registered for json_format by importing them.
import envoy.extensions.common.matching.v3.extension_matcher_pb2
import envoy.extensions.filters.common.matcher.action.v3.skip_action_pb2
import envoy.extensions.filters.http.basic_auth.v3.basic_auth_pb2
import envoy.extensions.filters.http.composite.v3.composite_pb2
import envoy.extensions.filters.http.header_mutation.v3.header_mutation_pb2
import envoy.extensions.filters.http.lua.v3.lua_pb2
import envoy.type.matcher.v3.http_inputs_pb2  # noqa: F401
import grpc
from envoy.config.core.v3 import extension_pb2
from envoy.service.extension.v3 import config_discovery_pb2_grpc
from google.protobuf import any_pb2, json_format

from llmagg.common.caller_auth import GATEWAY, calling_peer
from llmagg.common.errors import ErrorKind, ServiceError
from llmagg.common.grpc_interceptors import abort_with

SERVICE_NAME = "envoy.service.extension.v3.ExtensionConfigDiscoveryService"
TYPE_URL = "type.googleapis.com/envoy.config.core.v3.TypedExtensionConfig"
_GATEWAY_ONLY = ServiceError(
    ErrorKind.PERMISSION_DENIED, "This RPC answers the gateway's service token only.", code="not_allowed"
)


def packed(config: dict) -> any_pb2.Any:
    """A filter's TypedExtensionConfig (as JSON) packed as a DiscoveryResponse carries it."""
    resource = any_pb2.Any()
    resource.Pack(json_format.ParseDict(config, extension_pb2.TypedExtensionConfig()))
    return resource


async def refuse_unless_gateway(context: grpc.aio.ServicerContext) -> None:
    """What a gateway is told is the gateways' alone, not any peer's."""
    if calling_peer.get() != GATEWAY:
        await abort_with(context, _GATEWAY_ONLY)


def add_to_server(
    servicer: config_discovery_pb2_grpc.ExtensionConfigDiscoveryServiceServicer, server: grpc.aio.Server
) -> None:
    config_discovery_pb2_grpc.add_ExtensionConfigDiscoveryServiceServicer_to_server(servicer, server)
