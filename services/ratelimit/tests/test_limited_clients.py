"""Who the gateway asks about (llmagg.gateway_limits): the ratelimit service's ClientPolicy says whose
requests have something to check, and serves it to gateways by ECDS."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from envoy.config.core.v3 import extension_pb2
from envoy.service.discovery.v3 import discovery_pb2
from google.protobuf import json_format

from llmagg import gateway_limits
from llmagg.common.caller_auth import GATEWAY, calling_peer
from llmagg.common.watch_streams import WatchStreams
from llmagg_ratelimit.domain.clients import ClientLimits, ClientPolicy
from llmagg_ratelimit.xds_servicer import TYPE_URL, ExtensionConfigServicer


@pytest.mark.parametrize(
    ("default", "overrides", "every_client", "ids"),
    [
        (ClientLimits(), {}, False, set()),  # no limits anywhere: nobody is asked about
        (ClientLimits(rpm=5), {}, True, set()),  # every client key; admin keys have none of their own
        (ClientLimits(), {"ops": ClientLimits(tpd=100), "free": ClientLimits()}, False, {"ops"}),
        (ClientLimits(tpmonth=9), {"admin-env": ClientLimits()}, True, {"admin-env"}),  # gets the defaults
    ],
)
def test_the_policy_names_the_clients_with_something_to_check(default, overrides, every_client, ids):
    policy = ClientPolicy(default, overrides)
    assert policy.limited_clients() == gateway_limits.LimitedClients(every_client, frozenset(ids))
    for client in ("ops", "free", "admin-env", "someone"):
        for scope in ("client", "admin"):
            asked = client in ids or (every_client and scope == "client")
            assert asked == any(vars(policy.limits(client, scope)).values()), (client, scope)


def _ask(version: str = "", names: tuple[str, ...] = (), rejected: bool = False) -> discovery_pb2.DiscoveryRequest:
    request = discovery_pb2.DiscoveryRequest(resource_names=list(names), version_info=version, type_url=TYPE_URL)
    if rejected:
        request.error_detail.message = "rejected"
    return request


async def _answers(clients: gateway_limits.LimitedClients, *requests) -> list[discovery_pb2.DiscoveryResponse]:
    async def stream():
        for request in requests:
            yield request

    return [
        answer
        async for answer in ExtensionConfigServicer(clients, WatchStreams()).StreamExtensionConfigs(stream(), None)
    ]


async def test_ecds_answers_the_filter_once_and_not_its_acknowledgement_nor_a_rejection():
    calling_peer.set(GATEWAY)
    clients = gateway_limits.LimitedClients(every_client=False, ids=frozenset({"ops"}))
    version = gateway_limits.version(gateway_limits.limits_filter(clients))
    answers = await _answers(
        clients,
        _ask(names=(gateway_limits.FILTER_NAME,)),
        _ask(version, (gateway_limits.FILTER_NAME,)),  # acknowledged
        _ask("", (gateway_limits.FILTER_NAME,), rejected=True),
        _ask(names=("llmagg.client-key-routing",)),  # not ours
    )
    assert [(a.version_info, a.nonce, a.type_url) for a in answers] == [(version, "1", TYPE_URL)]
    config = extension_pb2.TypedExtensionConfig()
    answers[0].resources[0].Unpack(config)
    assert json_format.MessageToDict(config, preserving_proto_field_name=True) == gateway_limits.limits_filter(clients)


async def test_a_stream_opened_with_the_current_version_is_answered_all_the_same():
    """A gateway reconnecting (to a restarted or another replica) names the version it holds: it still
    gets the filter, as a stream's first answer always is."""
    calling_peer.set(GATEWAY)
    clients = gateway_limits.LimitedClients(every_client=True)
    version = gateway_limits.version(gateway_limits.limits_filter(clients))
    answers = await _answers(clients, _ask(version), _ask(version))
    assert [(a.version_info, a.nonce) for a in answers] == [(version, "1")]


def test_every_named_client_is_an_exact_match_and_the_rest_follow_the_scope():
    ids = frozenset(f"{n:012x}" for n in range(300))  # as many as a deployment names: no regex to outgrow
    tree = gateway_limits.marking(gateway_limits.LimitedClients(every_client=True, ids=ids))["matcher_tree"]
    assert tree["input"]["typed_config"]["header_name"] == "x-llmagg-client-id"
    assert sorted(tree["exact_match_map"]["map"]) == sorted(ids)
    scoped = gateway_limits.marking(gateway_limits.LimitedClients(every_client=True))
    assert scoped["on_no_match"]["matcher"]["matcher_tree"]["exact_match_map"]["map"].keys() == {"client"}
    assert "on_no_match" not in gateway_limits.marking(gateway_limits.LimitedClients(every_client=False))


class _Aborted(Exception):
    pass


class _Context:
    async def abort(self, code, details, trailing_metadata=()):
        raise _Aborted(code, details)


async def test_ecds_answers_the_gateway_alone():
    calling_peer.set("router")
    stream = ExtensionConfigServicer(gateway_limits.LimitedClients(True), WatchStreams()).StreamExtensionConfigs(
        _one(_ask()), _Context()
    )
    with pytest.raises(_Aborted) as caught:
        await asyncio.wait_for(anext(stream), 5)
    assert caught.value.args == (
        grpc.StatusCode.PERMISSION_DENIED,
        "This RPC answers the gateway's service token only.",
    )


async def _one(request):
    yield request


async def test_an_ecds_stream_ends_when_the_service_stops():
    """Else the service's stop would hold it for the whole grace period; Envoy opens it again elsewhere."""
    calling_peer.set(GATEWAY)
    streams = WatchStreams()
    requests: asyncio.Queue = asyncio.Queue()

    async def envoy():
        while True:
            yield await requests.get()

    answers = ExtensionConfigServicer(gateway_limits.LimitedClients(True), streams).StreamExtensionConfigs(
        envoy(), None
    )
    requests.put_nowait(_ask())
    assert (await asyncio.wait_for(anext(answers), 5)).nonce == "1"
    await streams.stop(grace_s=30)
    with pytest.raises(StopAsyncIteration):
        await asyncio.wait_for(anext(answers), 5)
