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
                    "method": "%REQ(:METHOD)%",
                    "path": "%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%",
                    "status": "%RESPONSE_CODE%",
                    "details": "%RESPONSE_CODE_DETAILS%",
                    "duration_ms": "%DURATION%",
                    "upstream": "%UPSTREAM_CLUSTER%",
                    "provider": "%RESP(X-LLMAGG-PROVIDER)%",
                    "request_id": "%REQ(X-REQUEST-ID)%",
                }
            },
        },
    }
