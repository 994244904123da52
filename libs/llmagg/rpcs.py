"""Who may call which RPC, derived from the service table (llmagg.suite) and the protos.

- Peers: a service of the table may call another when its row lists it in `calls`; a callee that answers
  its peers per RPC (credentials, ratelimit) answers each the RPCs its row names in `rpcs`.
- Admin keys: an RPC with `option (llmagg.admin_only) = true;` answers an admin key through the gateway,
  and the gateway lets only admin keys reach its gRPC path and its REST route (under /v1/admin/).
"""

from __future__ import annotations

import importlib

from google.api import annotations_pb2
from google.protobuf.descriptor import MethodDescriptor, ServiceDescriptor

from llmagg import options_pb2
from llmagg.suite import SERVICES, Service

ADMIN_REST_PREFIX = "/v1/admin/"  # every admin-only REST route lives below it
# The OpenAI REST paths the router serves itself on its HTTP data port (POST), proxied there by the
# gateway untranscoded: chat completions, then embeddings.
CHAT_REST_PATH, EMBEDDINGS_REST_PATH = "/v1/chat/completions", "/v1/embeddings"
DATA_REST_PATHS = (CHAT_REST_PATH, EMBEDDINGS_REST_PATH)


def descriptor(service: Service) -> ServiceDescriptor:
    """The gRPC service of a row, as its generated module declares it."""
    module = importlib.import_module(f"llmagg.{service.name}.v1.{service.name}_pb2")
    return module.DESCRIPTOR.services_by_name[f"{service.title}Service"]


def is_admin_only(method: MethodDescriptor) -> bool:
    return method.GetOptions().Extensions[options_pb2.admin_only]


def rest_route(method: MethodDescriptor) -> str:
    """The REST path template of a method ("" without a google.api.http rule)."""
    options = method.GetOptions()
    if not options.HasExtension(annotations_pb2.http):
        return ""
    rule = options.Extensions[annotations_pb2.http]
    return getattr(rule, rule.WhichOneof("pattern")) if rule.WhichOneof("pattern") else ""


def admin_only_methods(service: Service) -> tuple[str, ...]:
    return tuple(m.name for m in descriptor(service).methods if is_admin_only(m))


def admin_paths(table: tuple[Service, ...] = SERVICES) -> tuple[str, ...]:
    """Request paths the gateway lets admin keys only through: the admin REST prefix, then per service
    either its whole gRPC prefix (it has admin-only RPCs and no other REST route: nothing of it is a
    client's) or the gRPC path of each admin-only RPC."""
    paths = [ADMIN_REST_PREFIX]
    for service in table:
        methods = descriptor(service).methods
        admin = [m for m in methods if is_admin_only(m)]
        if not admin:
            continue
        public = [m for m in methods if rest_route(m) and not is_admin_only(m)]
        if public:
            paths += [f"/{service.grpc_service}/{m.name}" for m in admin]
        else:
            paths.append(f"/{service.grpc_service}/")
    return tuple(paths)


def peers_allowed(callee: str, method: str, table: tuple[Service, ...] = SERVICES) -> tuple[str, ...]:
    """The services of the table that may call `method` of `callee`, in table order."""
    return tuple(s.name for s in table if callee in s.calls and (callee not in s.rpcs or method in s.rpcs[callee]))


def token_of(peer: str) -> str:
    """How an error names what a peer calls with."""
    return f"the {peer}'s service token"
