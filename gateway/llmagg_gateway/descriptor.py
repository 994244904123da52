"""The llmagg gRPC services a descriptor set declares."""

from __future__ import annotations

import pathlib

from google.protobuf import descriptor_pb2


def llmagg_services(descriptor_path: pathlib.Path) -> list[str]:
    """Full names of every `llmagg.*` service, sorted."""
    files = descriptor_pb2.FileDescriptorSet.FromString(descriptor_path.read_bytes())
    return sorted(f"{f.package}.{s.name}" for f in files.file if f.package.startswith("llmagg.") for s in f.service)


def service_name(grpc_service: str) -> str:
    """The service table's name of a gRPC service: llmagg.<name>.v1.XService -> <name>."""
    return grpc_service.split(".")[1]
