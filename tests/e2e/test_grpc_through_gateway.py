"""Native gRPC clients use the same port as REST, with the same client keys; the REST error filter leaves them alone."""

from __future__ import annotations

import grpc
import pytest

from llmagg.credentials.v1.credentials_pb2 import ListAccountsRequest
from llmagg.credentials.v1.credentials_pb2_grpc import CredentialsServiceStub
from llmagg.router.v1 import router_pb2 as pb
from llmagg.router.v1 import router_pb2_grpc

HI = [pb.ChatMessage(role="user", content="hi")]


@pytest.fixture(scope="module")
def stub(stack):
    with grpc.insecure_channel(f"127.0.0.1:{stack.ports.gateway}") as channel:
        yield router_pb2_grpc.RouterServiceStub(channel)


@pytest.fixture(scope="module")
def authorized(client_key):
    return (("authorization", f"Bearer {client_key}"),)


def test_typed_chat_through_envoy(stub, authorized):
    response = stub.Chat(pb.ChatRequest(model="chat-model", messages=HI), metadata=authorized)
    assert response.route.provider == "sim-fast"


def test_grpc_errors_through_envoy_keep_their_status_and_details(stub, authorized):
    with pytest.raises(grpc.RpcError) as caught:
        stub.Chat(pb.ChatRequest(model="no-such-model", messages=HI), metadata=authorized)
    assert caught.value.code() is grpc.StatusCode.NOT_FOUND
    assert "no-such-model" in caught.value.details()


def test_a_grpc_call_without_a_key_is_unauthenticated(stub):
    with pytest.raises(grpc.RpcError) as caught:
        stub.Chat(pb.ChatRequest(model="chat-model", messages=HI))
    assert caught.value.code() is grpc.StatusCode.UNAUTHENTICATED
    assert caught.value.details() == (
        "You didn't provide an API key. Send it as `Authorization: Bearer <key>` (`llmagg keys create` makes one; "
        "see README, 'Client API keys')."
    )  # the message, not the REST error's JSON


def test_a_client_key_on_an_admin_rpc_is_permission_denied_with_a_plain_message(stack, authorized):
    with grpc.insecure_channel(f"127.0.0.1:{stack.ports.gateway}") as channel:
        with pytest.raises(grpc.RpcError) as caught:
            CredentialsServiceStub(channel).ListAccounts(ListAccountsRequest(), metadata=authorized)
    assert caught.value.code() is grpc.StatusCode.PERMISSION_DENIED
    assert caught.value.details() == (
        "This route manages accounts and keys and needs an admin key; this key may call the model routes only."
    )
