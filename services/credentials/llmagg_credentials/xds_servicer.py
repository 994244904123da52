"""Envoy's extension config discovery (ECDS, `envoy.service.extension.v3`, state of the world): every
gateway's client-key filters (llmagg.gateway_keys) from this replica's KeyTable. Only the gateway's
service token opens a stream: the suite's other services never read the keys' hashes.

Per stream: a request that names filters (none: all of them) is answered with the current table's
configs unless it acknowledges that very version; each new table is pushed at once. A rejected
config (NACK) is logged and not resent: the next table is.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging

from envoy.service.discovery.v3 import discovery_pb2
from envoy.service.extension.v3 import config_discovery_pb2_grpc
from google.protobuf import any_pb2

from llmagg import gateway_keys
from llmagg.common import ecds
from llmagg.common.ecds import SERVICE_NAME, TYPE_URL, add_to_server
from llmagg.common.watch_streams import WatchStreams
from llmagg_credentials.domain.key_table import KeyTableSource

__all__ = ["SERVICE_NAME", "TYPE_URL", "ExtensionConfigServicer", "add_to_server"]

log = logging.getLogger(__name__)


@functools.lru_cache(maxsize=8)
def resources(table: gateway_keys.KeyTable) -> dict[str, any_pb2.Any]:
    """Each filter's config for `table`, packed as ECDS sends it."""
    return {name: ecds.packed(config) for name, config in gateway_keys.filters(table).items()}


def response(
    table: gateway_keys.KeyTable, names: frozenset[str], nonce: int, version: str | None = None
) -> discovery_pb2.DiscoveryResponse:
    configs = resources(table)
    wanted = sorted(names & configs.keys()) if names else sorted(configs)
    return discovery_pb2.DiscoveryResponse(
        version_info=version or table.version,
        resources=[configs[n] for n in wanted],
        type_url=TYPE_URL,
        nonce=str(nonce),
    )


_HASHES_ONLY = frozenset({gateway_keys.HASHES_FILTER})


def hashes_first(table: gateway_keys.KeyTable) -> str:
    """The version of a new table's first step: its hashes alone."""
    return f"{table.version}-hashes"


def staged(names: frozenset[str]) -> bool:
    """Whether a stream asking for `names` gets a new table in two steps: the hashes, and once Envoy has
    acknowledged them, the key routing. Envoy applies each filter's config on its workers on its own, and
    acknowledges before they all have: sent together, a worker could route a new key to basic_auth that
    still lacks its hash (a 401 for a key its admin call said was in effect). Hashes first, every
    in-between state is one the key routing already handles (an unknown id goes to ext_authz; a revoked
    one finds no hash)."""
    return not names or set(gateway_keys.FILTER_NAMES) <= names


class ExtensionConfigServicer(config_discovery_pb2_grpc.ExtensionConfigDiscoveryServiceServicer):
    def __init__(self, source: KeyTableSource, streams: WatchStreams) -> None:
        self._source = source
        self._streams = streams  # ended when the service stops

    async def StreamExtensionConfigs(self, request_iterator, context):
        await ecds.refuse_unless_gateway(context)  # the key hashes are the gateways' alone
        requests: asyncio.Queue = asyncio.Queue()

        async def receive() -> None:
            async for request in request_iterator:
                await requests.put(request)
            await requests.put(None)

        receiver = asyncio.create_task(receive())
        stream = object()
        names: frozenset[str] | None = None
        sent = None  # the table last sent whole
        pending = None  # a table whose hashes went first, waiting for their acknowledgement
        nonce = 0
        try:
            while True:
                next_request = asyncio.create_task(requests.get())
                stopping = asyncio.create_task(self._streams.wait_stopping())
                waits = {next_request, stopping}
                if names is not None:  # a table before the first request: the request gets it
                    waits.add(asyncio.create_task(self._source.next_table(pending or sent)))
                done, undone = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
                for task in undone:
                    task.cancel()
                if stopping in done:
                    return
                if next_request in done:
                    request = next_request.result()
                    if request is None:
                        return
                    if request.HasField("error_detail"):
                        await self._source.applied(stream, request.version_info)  # what it still applies
                        log.warning(
                            "a gateway rejected client key config %s: %s",
                            request.version_info,
                            request.error_detail.message,
                        )
                        names = frozenset(request.resource_names)
                        continue
                    wanted = frozenset(request.resource_names)
                    if wanted == names and pending is not None and request.version_info == hashes_first(pending):
                        table, pending = pending, None  # its hashes are in: now the key routing
                        nonce += 1
                        yield response(table, names, nonce)
                        sent = table
                        continue
                    if wanted == names and sent is not None and request.version_info == sent.version:
                        await self._source.applied(stream, sent.version)
                        continue  # an acknowledgement
                    names = wanted
                    if not self._source.loaded:
                        continue  # answered when the store was read: next_table waits for it
                table = self._source.table
                nonce += 1
                if sent is not None and staged(names):
                    pending = table
                    yield response(table, _HASHES_ONLY, nonce, hashes_first(table))
                    continue
                pending = None
                yield response(table, names, nonce)
                sent = table
        finally:
            await self._source.applied(stream, None)
            receiver.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await receiver
