"""What the simulator tests share: the API key, request bodies, raw HTTP results, SDK clients of each dialect.

Every client points at the simulator only, with retries off and a short timeout.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import anthropic
import cohere
import openai
from google import genai
from google.genai import types as genai_types

from llmagg_devstack import SimulatorProcess

API_KEY = "sk-sim-FAKE-test-key"
SIMULATOR_COMMAND = [sys.executable, "-m", "llmagg_simulator"]
TIMEOUT_S = 10


def provider_root(sim: SimulatorProcess, provider: str) -> str:
    """Where every dialect of `provider` lives: /v1 (OpenAI, Anthropic), /v1beta (Gemini), /v2 (Cohere)."""
    return f"{sim.url}/{provider}"


def sdk_for(sim: SimulatorProcess, provider: str, **options: Any) -> openai.OpenAI:
    settings = {"base_url": sim.base_url(provider), "api_key": API_KEY, "max_retries": 0, "timeout": TIMEOUT_S}
    return openai.OpenAI(**{**settings, **options})


def _settings(sim: SimulatorProcess, provider: str, options: dict[str, Any]) -> dict[str, Any]:
    """The anthropic and cohere clients' settings: the provider's root, the key, no retries, a short timeout."""
    settings = {"base_url": provider_root(sim, provider), "api_key": API_KEY, "max_retries": 0, "timeout": TIMEOUT_S}
    return settings | options


def anthropic_for(sim: SimulatorProcess, provider: str, **options: Any) -> anthropic.Anthropic:
    return anthropic.Anthropic(**_settings(sim, provider, options))


def async_anthropic_for(sim: SimulatorProcess, provider: str, **options: Any) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(**_settings(sim, provider, options))


def gemini_for(sim: SimulatorProcess, provider: str, timeout_s: float = TIMEOUT_S, **options: Any) -> genai.Client:
    """A google-genai client for the Gemini API (not Vertex) at the simulator; no retries unless `retry_options`."""
    http_options = genai_types.HttpOptions(
        base_url=provider_root(sim, provider), api_version="v1beta", timeout=int(timeout_s * 1000), **options
    )
    return genai.Client(vertexai=False, api_key=API_KEY, http_options=http_options)


def cohere_for(sim: SimulatorProcess, provider: str, **options: Any) -> cohere.ClientV2:
    return cohere.ClientV2(**_settings(sim, provider, options))


def async_cohere_for(sim: SimulatorProcess, provider: str, **options: Any) -> cohere.AsyncClientV2:
    return cohere.AsyncClientV2(**_settings(sim, provider, options))


def collect(stream: Iterable[Any]) -> tuple[list[Any], BaseException | None]:
    """What an SDK stream yielded before it ended, and what it raised (None when it ended cleanly)."""
    received = []
    try:
        for item in stream:
            received.append(item)
    except Exception as error:
        return received, error
    return received, None


def wait_until_idle(sim: SimulatorProcess, provider: str, within_s: float = 3) -> int:
    """Poll until `provider` holds no request (a hang ends once its client leaves); what it still holds."""
    deadline = time.monotonic() + within_s
    while (in_flight := sim.state(provider)["in_flight"]) and time.monotonic() < deadline:
        time.sleep(0.02)
    return in_flight


@dataclass
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def json_body(payload: Any) -> bytes:
    return json.dumps(payload).encode()


def json_headers(api_key: str | None = API_KEY) -> dict[str, str]:
    headers = {"Content-Type": "application/json"}
    if api_key is not None:
        headers["Authorization"] = f"Bearer {api_key}"
    return headers


HELLO = [{"role": "user", "content": "Hello there"}]
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather in a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "unit": {"type": "string"}, "days": {"type": "integer"}},
            "required": ["city", "unit"],
        },
    },
}
TIME_TOOL = {
    "type": "function",
    "function": {
        "name": "get_time",
        "parameters": {"type": "object", "properties": {"zone": {"type": "string"}}, "required": ["zone"]},
    },
}


def sse_events(body: bytes, separator: bytes = b"\n\n") -> list[tuple[str | None, Any]]:
    """(event name or None, parsed data) of each server-sent event in a raw stream body."""
    events = []
    for block in body.split(separator):
        if not block:
            continue
        lines = block.decode().split("\n")
        name = next((line.removeprefix("event: ") for line in lines if line.startswith("event: ")), None)
        data = "".join(line.removeprefix("data: ") for line in lines if line.startswith("data: "))
        events.append((name, json.loads(data)))
    return events


# The same requests in the other dialects' shapes.
ANTHROPIC_WEATHER_TOOL = {
    "name": "get_weather",
    "description": "Weather in a city",
    "input_schema": WEATHER_TOOL["function"]["parameters"],
}
ANTHROPIC_TIME_TOOL = {"name": "get_time", "input_schema": TIME_TOOL["function"]["parameters"]}
