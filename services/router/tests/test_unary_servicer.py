"""The unary REST-facing methods refuse bodies over the router's limit as the client-streamed ones do."""

from __future__ import annotations

import asyncio

import pytest
from google.api import httpbody_pb2

from llmagg.common.errors import ServiceError
from llmagg.router.v1 import router_pb2 as pb
from llmagg_router.servicer import RouterServicer


class _Context:
    def invocation_metadata(self):
        return ()


@pytest.mark.parametrize(
    ("method", "message"), [("ChatJson", pb.CreateChatCompletionRequest), ("EmbedJson", pb.CreateEmbeddingRequest)]
)
def test_a_unary_body_over_the_limit_is_a_413_before_it_is_parsed(method, message):
    servicer = RouterServicer(router=None, max_body_bytes=10)  # type: ignore[arg-type]  # never reached
    request = message(http_body=httpbody_pb2.HttpBody(data=b'{"model": "x"}'))
    with pytest.raises(ServiceError) as refused:
        asyncio.run(getattr(servicer, method)(request, _Context()))
    assert (refused.value.code, refused.value.http_status) == ("request_too_large", 413)
    assert servicer._inflight.used == 0
