"""Envoy's overload manager: a heap bound and a connection bound that hold under hostile load."""

from __future__ import annotations

from llmagg_gateway.limits import MAX_DOWNSTREAM_CONNECTIONS

_FIXED_HEAP = "type.googleapis.com/envoy.extensions.resource_monitors.fixed_heap.v3.FixedHeapConfig"
_CONNECTIONS = (
    "type.googleapis.com/envoy.extensions.resource_monitors.downstream_connections.v3.DownstreamConnectionsConfig"
)


def _threshold(value: float) -> dict:
    return {"name": "envoy.resource_monitors.fixed_heap", "threshold": {"value": value}}


def overload_manager(max_heap_bytes: int) -> dict:
    return {
        "refresh_interval": "0.25s",
        "resource_monitors": [
            {
                "name": "envoy.resource_monitors.fixed_heap",
                "typed_config": {"@type": _FIXED_HEAP, "max_heap_size_bytes": max_heap_bytes},
            },
            {
                "name": "envoy.resource_monitors.global_downstream_max_connections",
                "typed_config": {
                    "@type": _CONNECTIONS,
                    "max_active_downstream_connections": MAX_DOWNSTREAM_CONNECTIONS,
                },
            },
        ],
        "actions": [
            {"name": "envoy.overload_actions.shrink_heap", "triggers": [_threshold(0.90)]},
            {
                "name": "envoy.overload_actions.reset_high_memory_stream",
                "triggers": [
                    {
                        "name": "envoy.resource_monitors.fixed_heap",
                        "scaled": {"scaling_threshold": 0.85, "saturation_threshold": 0.95},
                    }
                ],
            },
            {"name": "envoy.overload_actions.stop_accepting_requests", "triggers": [_threshold(0.95)]},
        ],
        # Streams buffering 1 MiB or more are tracked, so the largest can be reset first.
        "buffer_factory_config": {"minimum_account_to_track_power_of_two": 20},
    }
