"""Native gRPC clients use the same port as REST; the REST error filter leaves them alone."""

from __future__ import annotations

import grpc
import pytest

from llmagg.router.v1 import router_pb2 as pb
from llmagg.router.v1 import router_pb2_grpc


@pytest.fixture(scope="module")
def stub(stack):
    with grpc.insecure_channel(f"127.0.0.1:{stack.ports.gateway}") as channel:
        yield router_pb2_grpc.RouterServiceStub(channel)


def test_typed_chat_through_envoy(stub):
    response = stub.Chat(pb.ChatRequest(model="chat-model", messages=[pb.ChatMessage(role="user", content="hi")]))
    assert response.route.provider == "sim-fast"


def test_grpc_errors_through_envoy_keep_their_status_and_details(stub):
    with pytest.raises(grpc.RpcError) as caught:
        stub.Chat(pb.ChatRequest(model="no-such-model", messages=[pb.ChatMessage(role="user", content="hi")]))
    assert caught.value.code() is grpc.StatusCode.NOT_FOUND
    assert "no-such-model" in caught.value.details()
