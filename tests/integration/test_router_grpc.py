"""The router process over typed gRPC (no gateway), against the provider simulator."""

from __future__ import annotations

import signal
import time

import grpc
import pytest
from google.protobuf import struct_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc

from llmagg.router.v1 import router_pb2 as pb
from llmagg.router.v1 import router_pb2_grpc
from llmagg_devstack import ProcessError

from ..helpers import ROUTER_TEST_ENV, arrivals, scenario

HELLO = [pb.ChatMessage(role="user", content="echo: typed hello")]


@pytest.fixture(scope="module")
def router_only(router_config, tmp_path_factory, make_stack):
    stack = make_stack(tmp_path_factory.mktemp("router-only"))
    with stack.running({**ROUTER_TEST_ENV, "LLMAGG_CONFIG": str(router_config)}, gateway=False):
        yield stack


@pytest.fixture(scope="module")
def stub(router_only):
    with router_only.channel("router") as channel:
        yield router_pb2_grpc.RouterServiceStub(channel)


def test_typed_chat_answers_with_the_route_it_took(stub, simulator):
    providers = scenario(simulator, "fallback-429")
    response, call = stub.Chat.with_call(pb.ChatRequest(model="fallback-429", messages=HELLO), timeout=30)
    assert response.choices[0].message.content == "typed hello"
    assert (response.route.provider, response.route.attempts) == ("rl-backup", 2)
    route = {key: value for key, value in call.trailing_metadata() if key.startswith("x-llmagg-")}
    assert route == {
        "x-llmagg-provider": "rl-backup",
        "x-llmagg-model": "sim-small",
        "x-llmagg-account": "rl-backup-acct",
        "x-llmagg-attempts": "2",
        "x-llmagg-route-reason": "model asked",
    }
    assert arrivals(simulator, providers) == ["rl-first", "rl-backup"]
    assert response.usage.total_tokens > 0


def test_typed_extra_parameters_reach_the_upstream(stub, simulator):
    simulator.reset("sim-fast")
    extra = struct_pb2.Struct()
    extra.update({"logit_bias": {"50256": -100}, "user": "u-1"})
    stub.Chat(pb.ChatRequest(model="sim-fast/sim-small", messages=HELLO, extra=extra, max_tokens=9), timeout=30)
    body = simulator.requests("sim-fast")[-1]["body"]
    assert body["logit_bias"] == {"50256": -100} and body["user"] == "u-1" and body["max_tokens"] == 9


def test_typed_stream_chat_streams_deltas_and_usage(stub):
    responses = list(
        stub.StreamChat(
            pb.StreamChatRequest(chat=pb.ChatRequest(model="chat-model", messages=HELLO), include_usage=True)
        )
    )
    text = "".join(r.choices[0].delta.content for r in responses if r.choices)
    assert text == "typed hello"
    assert responses[-1].usage.total_tokens > 0
    assert {r.route.provider for r in responses} == {"sim-fast"}


def test_typed_list_models_and_embed(stub):
    listed = stub.ListModels(pb.ListModelsRequest())
    assert "sim-fast/sim-embed" in {m.id for m in listed.models}
    assert listed.fallback_chains == ["e2e-chain"]
    embedded = stub.Embed(pb.EmbedRequest(model="embed-model", input=["a", "b", "c"]))
    assert len(embedded.embeddings) == 3 and len(embedded.embeddings[0].values) == 8


def test_unknown_model_is_not_found_in_grpc_words(stub):
    with pytest.raises(grpc.RpcError) as caught:
        stub.Chat(pb.ChatRequest(model="nope", messages=HELLO))
    assert caught.value.code() is grpc.StatusCode.NOT_FOUND
    assert "ListModels lists the models" in caught.value.details() and "/v1/" not in caught.value.details()


def test_rate_limited_everywhere_is_resource_exhausted_with_retry_info(stub, simulator):
    providers = scenario(simulator, "all-429")
    with pytest.raises(grpc.RpcError) as caught:
        stub.Chat(pb.ChatRequest(model="all-429", messages=HELLO))
    assert caught.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "RetryInfo" in caught.value.details() and "Retry-After header" not in caught.value.details()
    trailers = dict(caught.value.trailing_metadata())
    status = status_pb2.Status.FromString(trailers["grpc-status-details-bin"])
    retry = error_details_pb2.RetryInfo()
    assert any(d.Unpack(retry) for d in status.details)
    assert retry.retry_delay.seconds == 7  # what the provider asked for
    assert arrivals(simulator, providers) == ["rl-only"]


def test_a_stream_cut_mid_way_ends_the_grpc_stream_with_unavailable(stub):
    call = stub.StreamChat(pb.StreamChatRequest(chat=pb.ChatRequest(model="cut-late", messages=HELLO)))
    received = []
    with pytest.raises(grpc.RpcError) as caught:
        for response in call:
            received.append(response)
    assert received
    assert caught.value.code() is grpc.StatusCode.UNAVAILABLE


def test_sigterm_reports_not_serving_then_stops_cleanly(router_config, tmp_path_factory, make_stack):
    stack = make_stack(tmp_path_factory.mktemp("drain"))
    processes = stack.start_services({**ROUTER_TEST_ENV, "LLMAGG_CONFIG": str(router_config), "ROUTER_DRAIN_S": "2"})
    [router] = [p for p in processes if p.name == "router"]
    try:
        with grpc.insecure_channel(stack.address("router")) as channel:
            health = health_pb2_grpc.HealthStub(channel)
            router.process.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + 10
            status = health_pb2.HealthCheckResponse.SERVING
            while status == health_pb2.HealthCheckResponse.SERVING and time.monotonic() < deadline:
                status = health.Check(health_pb2.HealthCheckRequest(), timeout=1).status
                time.sleep(0.01)
            assert status == health_pb2.HealthCheckResponse.NOT_SERVING  # still answering: draining
        assert router.process.wait(15) == 0
        assert "router stopped" in router.output()
    finally:
        stack.stop()


def test_an_invalid_config_fails_at_start_with_a_clear_message(tmp_path, make_stack):
    bad = tmp_path / "bad.yaml"
    bad.write_text("accounts:\n  - provider: groq\n    api_key: sk-inline-FAKE-key\n")
    stack = make_stack(tmp_path)
    try:
        with pytest.raises(ProcessError, match=r"(?s)exited with status 2.*api_key_env"):
            stack.start_services({"LLMAGG_CONFIG": str(bad)})
    finally:
        stack.stop()
    logs = sorted(tmp_path.glob("*.log"))
    assert logs and all("sk-inline-FAKE-key" not in log.read_text() for log in logs)
