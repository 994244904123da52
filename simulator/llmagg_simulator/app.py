"""The simulator's aiohttp app: `/<provider>/...` speaks each dialect (see provider_routes), `/_sim/...` scripts the faults."""

from __future__ import annotations

from aiohttp import web

from llmagg_simulator.control_routes import add_control_routes
from llmagg_simulator.faults import Fault
from llmagg_simulator.provider_routes import add_provider_routes
from llmagg_simulator.state import CHUNK_DELAY_S, PROVIDERS, Providers

MAX_BODY_BYTES = 64 * 1024 * 1024


def build_app(startup_defaults: dict[str, Fault] | None = None, chunk_delay_s: float = 0.0) -> web.Application:
    app = web.Application(client_max_size=MAX_BODY_BYTES)
    app[PROVIDERS] = Providers(startup_defaults)
    app[CHUNK_DELAY_S] = chunk_delay_s
    add_control_routes(app)  # first, so `/_sim/v1/faults` scripts provider `v1` rather than hitting the catch-all
    add_provider_routes(app)
    return app
