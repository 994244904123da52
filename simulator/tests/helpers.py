"""What the simulator tests share: the API key, request bodies, raw HTTP results, SDK clients."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from typing import Any

import openai

from llmagg_devstack.simulator import SimulatorProcess

API_KEY = "sk-sim-FAKE-test-key"
SIMULATOR_COMMAND = [sys.executable, "-m", "llmagg_simulator"]


def sdk_for(sim: SimulatorProcess, provider: str, **options: Any) -> openai.OpenAI:
    settings = {"base_url": sim.base_url(provider), "api_key": API_KEY, "max_retries": 0, "timeout": 10}
    return openai.OpenAI(**{**settings, **options})


@dataclass
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


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
