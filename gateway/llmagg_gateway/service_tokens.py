"""How the gateway proves itself to the services: a token per service, injected on every request Envoy
sends to it (routed requests, ext_authz checks and rate-limit calls alike), overwriting any a client sent.

Each service cluster runs Envoy's credential injector as an upstream filter; the token comes from an SDS
file per service (`<tokens_dir>/<service>.yaml`, written owner-only by whoever deploys the gateway: the
dev stack makes one per run), so it is never in this config nor in Envoy's config dump, and replacing
the file rotates it. The service checks it (llmagg.common.caller_auth, `<NAME>_GATEWAY_TOKEN`).
"""

from __future__ import annotations

SERVICE_TOKEN_HEADER = "x-llmagg-service-token"
# Envoy's SDS subscriptions need a node identity; the gateway has no management server, so any will do.
NODE = {"id": "llmagg-gateway", "cluster": "llmagg-gateway"}
_SECRET_TYPE = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret"


def secret_name(service: str) -> str:
    return f"gateway-token-{service}"


def sds_path(tokens_dir: str, service: str) -> str:
    return f"{tokens_dir.rstrip('/')}/{service}.yaml"


def sds_document(service: str, token: str) -> dict:
    """The content of a service's SDS file: its gateway token as a generic secret."""
    return {
        "resources": [
            {
                "@type": _SECRET_TYPE,
                "name": secret_name(service),
                "generic_secret": {"secret": {"inline_string": token}},
            }
        ]
    }


def upstream_filters(service: str, tokens_dir: str) -> list[dict]:
    """The cluster's upstream HTTP filters: inject the service's token, then encode (the codec comes last)."""
    generic = {
        "@type": "type.googleapis.com/envoy.extensions.http.injected_credentials.generic.v3.Generic",
        "credential": {
            "name": secret_name(service),
            "sds_config": {"path_config_source": {"path": sds_path(tokens_dir, service)}},
        },
        "header": SERVICE_TOKEN_HEADER,
    }
    return [
        {
            "name": "envoy.filters.http.credential_injector",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.http.credential_injector.v3.CredentialInjector",
                "overwrite": True,
                "allow_request_without_credential": False,
                "credential": {"name": "envoy.http.injected_credentials.generic", "typed_config": generic},
            },
        },
        {
            "name": "envoy.filters.http.upstream_codec",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.http.upstream_codec.v3.UpstreamCodec"
            },
        },
    ]
