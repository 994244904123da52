"""Promise 3: key material leaves the router only towards its own provider, whatever an upstream echoes."""

from __future__ import annotations

import contextlib
import json
import urllib.error
import urllib.request

import pytest

from llmagg_devstack import span_receiver

from ..helpers import wait_for
from .helpers import provider, start_stack

# One key per auth style, in shapes no pattern recognises (a 32-character Mistral-like key, say).
KEYS = {
    "bearer": "Zq81FAKEmistralShaped0123456789ab",
    "token": "cfFAKEcloudflareTok3n0123456789abcdEF",
    "x-api-key": "antFAKEkey_0123456789-abcdefghijklmnop",
    "x-goog-api-key": "gooFAKEkey0123456789abcdefghijklmnopq",
}
BEHAVIOURS = ("echo-key", "echo-key-plain", "echo-key-stream", "echo-key-ok")
STREAMED = ("echo-key-stream", "echo-key-ok")


@pytest.fixture(scope="module")
def receiver():
    with span_receiver() as receiver:
        yield receiver


@pytest.fixture(scope="module")
def stack(tmp_path_factory, hostile, receiver, make_stack):
    providers, keys = [], {}
    for style, key in KEYS.items():
        for behaviour in BEHAVIOURS:
            provider_id = f"{behaviour}-{style.replace('-', '')}"
            providers.append(provider(provider_id, hostile.base_url(behaviour), provider_id, auth=style))
            keys[provider_id] = key
    stack = start_stack(make_stack, tmp_path_factory.mktemp("leaks"), providers, env=receiver.environment(), keys=keys)
    yield stack
    stack.stop()


def post(url: str, body: dict) -> bytes:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.read()
    except urllib.error.HTTPError as error:
        return error.read()


def test_no_key_reaches_a_client_a_log_or_a_span_whatever_the_upstream_echoes(stack, hostile, receiver):
    answers = []
    for style in KEYS:
        for behaviour in BEHAVIOURS:
            model = f"{behaviour}-{style.replace('-', '')}"
            answers.append(
                post(
                    f"{stack.base_url}/chat/completions",
                    {
                        "model": model,
                        "messages": [{"role": "user", "content": "hi"}],
                        "stream": behaviour in STREAMED,
                    },
                )
            )
    # The upstreams did get each key in its own header, and echoed it: the redaction is what hid it.
    sent = json.dumps(hostile.requests)
    assert all(key in sent for key in KEYS.values())
    every_answer = b"\n".join(answers).decode()
    assert every_answer.count("[redacted]") >= 3 * len(KEYS)
    wait_for(lambda: len(receiver.spans) >= 2 * len(answers), "the spans of every request")
    with contextlib.suppress(Exception):
        stack.stop()  # flushes every log
    places = {
        "answers": every_answer,
        "spans": b"".join(s.SerializeToString() for s in receiver.spans).decode("utf-8", "replace"),
    }
    places |= {process.name: process.output() for process in stack.processes}
    places |= {
        "router.log": (stack.run_dir / "router.log").read_text(),
        "envoy.log": (stack.run_dir / "envoy.log").read_text(),
    }
    for where, text in places.items():
        for style, key in KEYS.items():
            assert key not in text, f"the {style} key leaked into {where}"
