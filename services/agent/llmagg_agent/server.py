"""Wires the agent from settings: store + router client -> CodeAgent -> servicer -> server."""

from __future__ import annotations

from llmagg.common.server import GrpcServer, ReadinessCheck, ServiceBinding
from llmagg_agent.adapters.router_client import RouterClient
from llmagg_agent.domain.agent import AgentLimits, CodeAgent
from llmagg_agent.domain.metrics import AgentMetrics
from llmagg_agent.domain.threads import ThreadStore
from llmagg_agent.domain.workspace import FileLimits, WorkspacePolicy
from llmagg_agent.servicer import SERVICE_NAME, AgentServicer, add_to_server
from llmagg_agent.settings import AgentSettings


def build_agent(
    settings: AgentSettings, store: ThreadStore, router: RouterClient, metrics: AgentMetrics | None = None
) -> CodeAgent:
    limits = FileLimits(
        max_read_bytes=settings.max_read_bytes,
        max_write_bytes=settings.max_write_bytes,
        max_list_entries=settings.max_list_entries,
    )
    return CodeAgent(
        store,
        router,
        WorkspacePolicy(settings.workspace_grants(), limits, settings.protected_directories()),
        AgentLimits(
            max_steps=settings.max_steps,
            run_deadline_s=settings.run_deadline_s,
            lease_margin_s=settings.lease_margin_s,
            max_instruction_chars=settings.max_instruction_chars,
            max_context_chars=settings.max_context_chars,
        ),
        model_name=settings.model,
        metrics=metrics,
    )


def build_server(settings: AgentSettings, agent: CodeAgent, router: RouterClient) -> GrpcServer:
    servicer = AgentServicer(agent, router, settings.max_file_context_chars)
    binding = ServiceBinding(SERVICE_NAME, servicer, add_to_server)
    # Without its database the agent can do nothing: not serving until it answers again.
    database = ReadinessCheck("agent-threads-database", agent.store.ping)
    return GrpcServer("agent", settings, [binding], readiness=[database])
