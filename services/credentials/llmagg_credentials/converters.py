"""Domain records to protobuf messages (never key material, except the lease's one key)."""

from __future__ import annotations

from llmagg.credentials.v1 import credentials_pb2 as pb
from llmagg_credentials.domain.records import AccountRecord, ClientKeyRecord


def account(record: AccountRecord) -> pb.Account:
    return pb.Account(
        provider=record.provider,
        alias=record.alias,
        enabled=record.enabled,
        disabled_reason=record.disabled_reason,
        disabled_at=record.disabled_at,
        disabled_by=record.disabled_by,
        labels=record.labels,
        priority=record.priority,
        limits=record.limits,
        params=record.params,
        key_version=record.key_version,
        source=record.source,
        created_at=record.created_at,
        updated_at=record.updated_at,
    )


def client_key(record: ClientKeyRecord) -> pb.ClientKey:
    return pb.ClientKey(
        id=record.id,
        name=record.name,
        scope=record.scope,
        created_at=record.created_at,
        revoked=record.revoked,
        revoked_at=record.revoked_at,
    )


def lease(record: AccountRecord, ttl_s: float) -> pb.LeaseResponse:
    return pb.LeaseResponse(
        api_key=record.key.reveal() if record.key else "",
        ttl_seconds=ttl_s,
        key_version=record.key_version,
        account=account(record),
    )
