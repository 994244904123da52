"""Envoy address blocks."""

from __future__ import annotations


def socket_address(host_port: str) -> dict:
    host, _, port = host_port.rpartition(":")
    return {"socket_address": {"address": host, "port_value": int(port)}}
