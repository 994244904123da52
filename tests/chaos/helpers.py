"""What the chaos tests share: stacks built from a list of providers, and the shapes a client may see."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from llmagg_devstack import Stack, write_config

KEY_ENV = "CHAOS_PROVIDER_KEY"
KEY = "sk-chaos-FAKE-0123456789abcdef"
FAST_STOP = {"ROUTER_LOG_LEVEL": "INFO", "ROUTER_GRACE_S": "2"}


def provider(provider_id: str, base_url: str, alias: str, speed: int = 3, **fields: Any) -> dict[str, Any]:
    """A provider entry serving one model, `m`, under `alias`."""
    return {
        "id": provider_id,
        "base_url": base_url,
        "speed": speed,
        "models": [{"id": "m", "quality": 3, "context_window": 32768, "aliases": [alias]}],
        **fields,
    }


def start_stack(
    make_stack: Callable[..., Stack],
    run_dir: Path,
    providers: list[dict[str, Any]],
    env: Mapping[str, str] | None = None,
    keys: Mapping[str, str] | None = None,
    gateway: bool = True,
    **options: Any,
) -> Stack:
    """The services (and Envoy) with one account per provider; `keys` maps a provider id to its key.

    Client authentication is off (every caller is anonymous, on loopback): these tests are about what
    the router and the gateway do with hostile upstreams and input; client keys have their own tests."""
    keys = keys or {}
    secrets = {f"KEY_{i}": keys.get(p["id"], KEY) for i, p in enumerate(providers)}
    accounts = [
        {"provider": p["id"], "alias": f"{p['id']}-acct", "api_key_env": f"KEY_{i}"} for i, p in enumerate(providers)
    ]
    config = write_config(run_dir / "config.yaml", {"providers": providers, "accounts": accounts})
    stack = make_stack(run_dir, **{"client_auth": False, **options})
    try:
        stack.start_services({**FAST_STOP, **secrets, "LLMAGG_CONFIG": str(config), **(env or {})})
        if gateway:
            stack.start_gateway()
    except BaseException:
        stack.stop()
        raise
    return stack


def openai_error(body: bytes) -> dict[str, Any]:
    """The OpenAI error object of a response body, asserting its shape: {"error": {message, type, param, code}}."""
    parsed = json.loads(body)
    assert set(parsed) == {"error"}, parsed
    assert {"message", "type", "param", "code"} <= set(parsed["error"]), parsed
    assert isinstance(parsed["error"]["message"], str) and parsed["error"]["message"], parsed
    return parsed["error"]


def is_complete_completion(status: int, body: bytes) -> bool:
    if status != 200:
        return False
    parsed = json.loads(body)
    return bool(parsed["choices"][0]["message"]["content"]) and parsed["choices"][0]["finish_reason"] == "stop"
