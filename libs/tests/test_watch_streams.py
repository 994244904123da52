"""Long-lived server streams end as the service stops: the stop does not hold them for its grace period."""

import asyncio

import grpc
import pytest

from llmagg.common.server import GrpcServer, ServiceBinding
from llmagg.common.settings import ServiceSettings
from llmagg.common.watch_streams import WatchStreams
from llmagg.router.v1 import router_pb2, router_pb2_grpc

GATEWAY_TOKEN = "gateway-token-for-tests"
AS_GATEWAY = (("x-llmagg-service-token", GATEWAY_TOKEN),)


class Watching(router_pb2_grpc.RouterServiceServicer):
    """StreamChat as a watch: one message, then one per item of a source that never ends by itself."""

    def __init__(self, streams: WatchStreams) -> None:
        self._streams = streams
        self.source_closed = asyncio.Event()

    async def _source(self):
        try:
            while True:
                await asyncio.Event().wait()  # nothing ever changes
                yield "never"
        finally:
            self.source_closed.set()

    async def StreamChat(self, request, context):
        yield router_pb2.StreamChatResponse(id="first")
        async for item in self._streams.until_stopped(self._source()):
            yield router_pb2.StreamChatResponse(id=item)


async def test_a_watch_ends_cleanly_when_the_service_stops_long_before_its_grace_period():
    streams = WatchStreams()
    servicer = Watching(streams)
    # A grace period the test would never see the end of: the stream must end without it.
    settings = ServiceSettings(host="127.0.0.1", port=0, gateway_token=GATEWAY_TOKEN, drain_s=0, grace_s=600)
    binding = ServiceBinding(
        "llmagg.router.v1.RouterService", servicer, router_pb2_grpc.add_RouterServiceServicer_to_server
    )
    server = GrpcServer("test", settings, [binding], companions=[streams])
    await server.start()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        call = router_pb2_grpc.RouterServiceStub(channel).StreamChat(
            router_pb2.StreamChatRequest(), metadata=AS_GATEWAY
        )
        assert (await call.read()).id == "first"
        stopping = asyncio.create_task(server.stop())
        assert await asyncio.wait_for(call.read(), 30) is grpc.aio.EOF  # ended, not cancelled at the grace's end
        assert await call.code() is grpc.StatusCode.OK
        await asyncio.wait_for(stopping, 30)
    assert servicer.source_closed.is_set()


async def test_items_pass_through_until_their_end_and_after_a_stop_none_is_waited_for():
    streams = WatchStreams()

    async def three():
        for n in range(3):
            yield n

    assert [n async for n in streams.until_stopped(three())] == [0, 1, 2]
    await streams.stop(0)
    assert streams.stopping
    assert [n async for n in streams.until_stopped(three())] == []


async def test_an_error_of_the_source_reaches_the_stream():
    async def failing():
        yield 1
        raise RuntimeError("the store broke")

    received = []
    with pytest.raises(RuntimeError, match="the store broke"):
        async for n in WatchStreams().until_stopped(failing()):
            received.append(n)
    assert received == [1]


async def test_a_watcher_gone_closes_the_source_and_leaves_no_read_behind():
    started, closed = asyncio.Event(), asyncio.Event()

    async def never_changes():
        try:
            started.set()
            await asyncio.Event().wait()
            yield "never"
        finally:
            closed.set()

    async def watch():
        async for _ in WatchStreams().until_stopped(never_changes()):
            pass

    watcher = asyncio.create_task(watch())
    await asyncio.wait_for(started.wait(), 5)  # the watch waits for its source's next item
    watcher.cancel()  # the watcher went away (gRPC cancels the handler)
    with pytest.raises(asyncio.CancelledError):
        await watcher
    assert closed.is_set()
    assert [t for t in asyncio.all_tasks() if t is not asyncio.current_task()] == []
