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
    grants = {grantee: [str(root) for root in roots] for grantee, roots in settings.workspace_grants().items()}
    protected = [str(path) for path in settings.protected_directories()]
    log.info(
        "threads kept in %s; project directories granted: %s; never reachable: %s",
        settings.database().partition(":")[0],
        grants or "none (AGENT_WORKSPACE_ROOTS grants them per key)",
        protected,
        extra=log_fields(
            router=settings.router_address, workspace_roots=grants, protected_paths=protected, model=settings.model
        ),
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
