"""The routing state as an operator reads it: every routable provider, its accounts and models, and
what the router has learned of each (cooldowns, circuits, latency)."""

from __future__ import annotations

from typing import Any

from llmagg.registry import Provider
from llmagg_router.domain.ports import HealthSnapshot, KeySource
from llmagg_router.domain.upstream import endpoint_of


def routing_state(providers: dict[str, Provider], keys: KeySource, health: HealthSnapshot) -> dict[str, Any]:
    circuits = {circuit.name: circuit for circuit in health.circuits}
    cooling: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for cooldown in health.cooldowns:
        cooling.setdefault((cooldown.provider, cooldown.account), []).append(
            {"model": cooldown.model or "*", "remaining_s": round(cooldown.remaining_s, 3)}
        )

    def circuit_view(name: str) -> dict[str, Any]:
        circuit = circuits.get(name)
        if circuit is None:
            return {"state": "closed", "failures": 0}
        return {
            "state": circuit.state.value,
            "failures": circuit.failures,
            "reopens_in_s": round(circuit.reopens_in_s, 3),
        }

    state = []
    for provider in sorted(providers.values(), key=lambda p: p.id):
        accounts = keys.accounts(provider.id)
        endpoints = sorted({endpoint_of(account.base_url) for account in accounts})
        state.append(
            {
                "provider": provider.id,
                "accounts": [
                    {
                        "alias": account.alias,
                        "usable": keys.usable(account),
                        "cooling": cooling.get((provider.id, account.alias), []),
                    }
                    for account in accounts
                ],
                "endpoints": [{"endpoint": endpoint, "circuit": circuit_view(endpoint)} for endpoint in endpoints],
                "models": [
                    {
                        "model": model.id,
                        "circuit": circuit_view(f"{provider.id}/{model.id}"),
                        "latency_ms": health.latency_ms.get((provider.id, model.id)),
                    }
                    for model in provider.models
                ],
            }
        )
    return {"object": "routing_state", "providers": state}
