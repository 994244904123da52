"""`python -m llmagg_agent`: the agent gRPC service."""

from __future__ import annotations

import logging

from llmagg.common.logging import log_fields
from llmagg.common.server import serve_until_signalled, service_cli
from llmagg_agent.backends import STARTUP_ERRORS, create_metrics, create_router_client, create_store
from llmagg_agent.server import build_agent, build_server
from llmagg_agent.settings import AgentSettings

log = logging.getLogger("agent")


async def main(settings: AgentSettings) -> None:
    store = create_store(settings)
    await store.setup()
    router = create_router_client(settings)
    roots = [str(root) for root in settings.allowed_roots()]
    log.info(
        "threads kept in %s; project directories allowed under %s",
        settings.database().partition(":")[0],
        roots or "nothing (set AGENT_WORKSPACE_ROOTS)",
        extra=log_fields(router=settings.router_address, workspace_roots=roots, model=settings.model),
    )

    async def close() -> None:
        await router.close()
        await store.close()

    agent = build_agent(settings, store, router, create_metrics(settings))
    await serve_until_signalled(build_server(settings, agent, router), on_stop=close)


def cli() -> None:
    # A bad setting or a database that cannot be opened stops the service with a message saying which.
    service_cli("agent", AgentSettings(), main, STARTUP_ERRORS)


if __name__ == "__main__":
    cli()
