"""`/_sim/...`: script faults, set default behaviours, read request logs, reset (plain JSON, no auth)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from aiohttp import web

from llmagg_simulator.catalog import SimModel, sim_model
from llmagg_simulator.faults import FaultError, parse_fault
from llmagg_simulator.responses import json_response
from llmagg_simulator.state import PROVIDERS, ProviderState, ScriptedFault

Handler = Callable[[web.Request], Awaitable[web.Response]]


class _BadControlRequest(Exception):
    pass


async def _json_body(request: web.Request) -> Any:
    try:
        return orjson.loads(await request.read())
    except orjson.JSONDecodeError:
        raise _BadControlRequest("the body must be JSON") from None


def _provider(request: web.Request) -> ProviderState:
    return request.app[PROVIDERS].get(request.match_info["provider"])


async def script_faults(request: web.Request) -> web.Response:
    """Append `{"faults": [fault, ...]}` to the provider's queue; each fault covers `count` requests (default 1)."""
    body = await _json_body(request)
    if not isinstance(body, dict) or not isinstance(body.get("faults"), list):
        raise _BadControlRequest('expected {"faults": [{"type": ..., "count": ...}, ...]}')
    scripted = [ScriptedFault(*parse_fault(raw)) for raw in body["faults"]]
    state = _provider(request)
    state.queue.extend(scripted)
    return json_response(state.describe())


async def set_behaviour(request: web.Request) -> web.Response:
    """Make `{"type": ..., ...}` the provider's default behaviour (what it does when the queue is empty)."""
    fault, _ = parse_fault(await _json_body(request))
    _provider(request).default = fault
    return json_response({"behaviour": fault.describe()})


def _models(raw: Any) -> list[SimModel]:
    try:
        return [sim_model(item) for item in raw]
    except (ValueError, TypeError) as problem:
        raise _BadControlRequest(str(problem)) from None


async def set_models(request: web.Request) -> web.Response:
    """Replace what the provider's model lists show: `{"models": ["id" or {id, name, context_length, free,
    expiration_date, embeds}, ...]}`. Models no longer listed answer requests with the dialect's 404."""
    body = await _json_body(request)
    if not isinstance(body, dict) or not isinstance(body.get("models"), list):
        raise _BadControlRequest('expected {"models": ["model-id" or {"id": ...}, ...]}')
    state = _provider(request)
    models = _models(body["models"])
    state.removed |= set(state.model_ids) - {model.id for model in models}
    state.removed -= {model.id for model in models}
    state.models = models
    return json_response(state.describe())


async def add_model(request: web.Request) -> web.Response:
    """Add one model (`"id"` or `{id, ...}`) to the provider's lists (replacing one of the same id)."""
    [model] = _models([await _json_body(request)])
    state = _provider(request)
    state.models = [m for m in state.models if m.id != model.id] + [model]
    state.removed.discard(model.id)
    return json_response(state.describe())


async def remove_model(request: web.Request) -> web.Response:
    """Take a model off the provider's lists: requests for it get the dialect's 404 from now on."""
    state = _provider(request)
    model_id = request.match_info["model"]
    state.models = [m for m in state.models if m.id != model_id]
    state.removed.add(model_id)
    return json_response(state.describe())


async def set_model_behaviour(request: web.Request) -> web.Response:
    """What every request for one model gets (`{"type": "410"}`: it is gone), ahead of the queue and default."""
    fault, _ = parse_fault(await _json_body(request))
    state = _provider(request)
    state.model_faults[request.match_info["model"]] = fault
    return json_response(state.describe())


async def clear_model_behaviour(request: web.Request) -> web.Response:
    state = _provider(request)
    state.model_faults.pop(request.match_info["model"], None)
    return json_response(state.describe())


async def provider_state(request: web.Request) -> web.Response:
    """{default, queue, in_flight, logged_requests}: what the provider will do next and what it is doing."""
    return json_response(_provider(request).describe())


async def logged_requests(request: web.Request) -> web.Response:
    return json_response({"requests": list(_provider(request).requests)})


async def reset_provider(request: web.Request) -> web.Response:
    _provider(request).reset()
    return json_response({"reset": request.match_info["provider"]})


async def reset_all(request: web.Request) -> web.Response:
    request.app[PROVIDERS].reset_all()
    return json_response({"reset": "all"})


async def health(request: web.Request) -> web.Response:
    return json_response({"status": "ok"})


def _refusing_bad_requests(handler: Handler) -> Handler:
    """A control call the simulator cannot follow is a 400 saying why, as {"error": ...}."""

    async def handle(request: web.Request) -> web.Response:
        try:
            return await handler(request)
        except (FaultError, _BadControlRequest) as problem:
            return json_response({"error": str(problem)}, status=400)

    return handle


def add_control_routes(app: web.Application) -> None:
    app.router.add_get("/_sim/health", health)
    app.router.add_post("/_sim/{provider}/faults", _refusing_bad_requests(script_faults))
    app.router.add_put("/_sim/{provider}/behaviour", _refusing_bad_requests(set_behaviour))
    app.router.add_get("/_sim/{provider}/requests", logged_requests)
    app.router.add_put("/_sim/{provider}/models", _refusing_bad_requests(set_models))
    app.router.add_post("/_sim/{provider}/models", _refusing_bad_requests(add_model))
    app.router.add_put("/_sim/{provider}/models/{model:.+}/behaviour", _refusing_bad_requests(set_model_behaviour))
    app.router.add_delete("/_sim/{provider}/models/{model:.+}/behaviour", clear_model_behaviour)
    app.router.add_delete("/_sim/{provider}/models/{model:.+}", remove_model)
    app.router.add_get("/_sim/{provider}", provider_state)
    app.router.add_delete("/_sim/{provider}", reset_provider)
    app.router.add_delete("/_sim", reset_all)
