"""One JSON line per request on Envoy's stdout."""

from __future__ import annotations


def access_log() -> dict:
    return {
        "name": "envoy.access_loggers.stdout",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StdoutAccessLog",
            "log_format": {
                "json_format": {
                    "ts": "%START_TIME%",
                    "service": "gateway",
                    # The transcoder turns every REST call into a POST: log what the client sent.
                    "method": "%REQ(X-ENVOY-ORIGINAL-METHOD?:METHOD)%",
                    "path": "%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%",
                    # The gRPC method that served it; on the router's HTTP data path the REST path itself.
                    "rpc": "%REQ(:PATH)%",
                    "status": "%RESPONSE_CODE%",
                    "details": "%RESPONSE_CODE_DETAILS%",
                    "duration_ms": "%DURATION%",
                    "upstream": "%UPSTREAM_CLUSTER%",  # router-http: the data path; router: transcoded to gRPC
                    "provider": "%RESP(X-LLMAGG-PROVIDER)%",
                    "model": "%RESP(X-LLMAGG-MODEL)%",
                    "account": "%RESP(X-LLMAGG-ACCOUNT)%",
                    "attempts": "%RESP(X-LLMAGG-ATTEMPTS)%",
                    "request_id": "%REQ(X-REQUEST-ID)%",
                    "trace_id": "%TRACE_ID%",
                }
            },
        },
    }
