"""Service ports answer only the gateway and the suite's own services: a direct gRPC caller needs a token
the gateway or a peer holds, and a client going through the gateway cannot claim another client's identity."""

from __future__ import annotations

import urllib.request

import grpc
import pytest
from envoy.service.discovery.v3 import discovery_pb2
from envoy.service.extension.v3 import config_discovery_pb2_grpc

from llmagg.agent.v1 import agent_pb2, agent_pb2_grpc
from llmagg.common.grpc_interceptors import CLIENT_ID_METADATA, CLIENT_SCOPE_METADATA, SERVICE_TOKEN_METADATA
from llmagg.router.v1 import router_pb2, router_pb2_grpc
from llmagg.suite import SERVICES
from llmagg_credentials.domain.client_keys import PREFIX
from llmagg_devstack import grpc_serving

from ..agent_helpers import RestClient, says, script_model
from ..helpers import create_client_key

HI = [router_pb2.ChatMessage(role="user", content="hi")]


def key_id(key: str) -> str:
    return key[len(PREFIX) :].partition("-")[0]


def refused(call) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as caught:
        call()
    return caught.value


@pytest.fixture(scope="module")
def owner(stack, simulator) -> tuple[str, str]:
    """A client key and the id of a thread it owns (one agent run through the gateway)."""
    key = create_client_key(stack, "thread owner")
    script_model(simulator, says("done"))
    status, _, body = RestClient(f"http://127.0.0.1:{stack.ports.gateway}", key).post(
        "/v1/agents/code/invoke", {"instruction": "say done"}
    )
    assert status == 200, body
    return key, body["thread_id"]


@pytest.mark.parametrize(
    "metadata",
    [
        (),
        ((CLIENT_ID_METADATA, "admin-env"), (CLIENT_SCOPE_METADATA, "admin")),  # a forged identity
        ((SERVICE_TOKEN_METADATA, "not-a-token-of-this-suite"), (CLIENT_ID_METADATA, "admin-env")),
    ],
    ids=["no-token", "forged-client-id", "wrong-token"],
)
def test_the_agent_and_the_router_refuse_a_direct_call_without_a_valid_token(stack, owner, metadata):
    with grpc.insecure_channel(stack.address("agent")) as channel:
        error = refused(
            lambda: agent_pb2_grpc.AgentServiceStub(channel).ListThreads(
                agent_pb2.ListThreadsRequest(), metadata=metadata
            )
        )
    assert error.code() is grpc.StatusCode.UNAUTHENTICATED, error
    with grpc.insecure_channel(stack.address("router")) as channel:
        stub = router_pb2_grpc.RouterServiceStub(channel)
        error = refused(lambda: stub.Chat(router_pb2.ChatRequest(model="chat-model", messages=HI), metadata=metadata))
        assert error.code() is grpc.StatusCode.UNAUTHENTICATED, error
        error = refused(lambda: stub.GetRoutingState(router_pb2.GetRoutingStateRequest(), metadata=metadata))
        assert error.code() is grpc.StatusCode.UNAUTHENTICATED, error


def test_a_token_another_pair_of_services_shares_opens_nothing_else(stack, owner):
    """The router's token for credentials is not the gateway's token for the agent."""
    metadata = ((SERVICE_TOKEN_METADATA, stack.service_token("router", "credentials")),)
    with grpc.insecure_channel(stack.address("agent")) as channel:
        error = refused(
            lambda: agent_pb2_grpc.AgentServiceStub(channel).ListThreads(
                agent_pb2.ListThreadsRequest(), metadata=metadata
            )
        )
    assert error.code() is grpc.StatusCode.UNAUTHENTICATED


def test_probes_need_no_token(stack):
    assert grpc_serving(stack.address("agent")) and grpc_serving(stack.address("router"))


def test_grpc_through_the_gateway_with_a_client_key_works(stack, owner):
    key, thread_id = owner
    with grpc.insecure_channel(f"127.0.0.1:{stack.ports.gateway}") as channel:
        threads = agent_pb2_grpc.AgentServiceStub(channel).ListThreads(
            agent_pb2.ListThreadsRequest(), metadata=(("authorization", f"Bearer {key}"),)
        )
        assert [t.thread_id for t in threads.threads] == [thread_id]
        chat = router_pb2_grpc.RouterServiceStub(channel).Chat(
            router_pb2.ChatRequest(model="chat-model", messages=HI), metadata=(("authorization", f"Bearer {key}"),)
        )
    assert chat.route.provider == "sim-fast"


def test_a_client_cannot_claim_another_clients_identity_through_the_gateway(stack, owner):
    key, thread_id = owner
    intruder = create_client_key(stack, "intruder")
    forged = (
        ("authorization", f"Bearer {intruder}"),
        (CLIENT_ID_METADATA, key_id(key)),
        (CLIENT_SCOPE_METADATA, "admin"),
        (SERVICE_TOKEN_METADATA, "forged"),
    )
    with grpc.insecure_channel(f"127.0.0.1:{stack.ports.gateway}") as channel:
        stub = agent_pb2_grpc.AgentServiceStub(channel)
        assert list(stub.ListThreads(agent_pb2.ListThreadsRequest(), metadata=forged).threads) == []
        error = refused(lambda: stub.GetThread(agent_pb2.GetThreadRequest(thread_id=thread_id), metadata=forged))
    assert error.code() is grpc.StatusCode.NOT_FOUND


def test_the_gateways_tokens_are_neither_in_its_config_nor_in_its_config_dump(stack):
    with urllib.request.urlopen(f"http://127.0.0.1:{stack.ports.admin}/config_dump", timeout=10) as response:
        dump = response.read().decode()
    config = (stack.run_dir / "envoy.yaml").read_text()
    for service in SERVICES:
        token = stack.service_token(service.name, "gateway")
        assert token not in dump and token not in config, service.name
    assert (stack.run_dir / "gateway-tokens" / "router.yaml").stat().st_mode & 0o077 == 0  # owner only


def test_only_the_gateway_reads_the_client_key_table_by_ecds(stack):
    """The key hashes are the gateway's: a peer's valid token (the router's) does not open the stream."""
    metadata = ((SERVICE_TOKEN_METADATA, stack.service_token("router", "credentials")),)
    request = discovery_pb2.DiscoveryRequest(type_url="type.googleapis.com/envoy.config.core.v3.TypedExtensionConfig")
    with grpc.insecure_channel(stack.address("credentials")) as channel:
        stub = config_discovery_pb2_grpc.ExtensionConfigDiscoveryServiceStub(channel)
        error = refused(lambda: next(iter(stub.StreamExtensionConfigs(iter([request]), metadata=metadata, timeout=10))))
    assert error.code() is grpc.StatusCode.PERMISSION_DENIED
