"""The routing state an operator reads: per provider, its accounts, endpoints and models, and what the
health store has learned of each."""

from llmagg_router.adapters.config_keys import ConfigKeySource
from llmagg_router.adapters.memory_health import MemoryHealthStore
from llmagg_router.domain.ports import KeyOutcome
from llmagg_router.domain.state import routing_state

from .helpers import FakeClock, make_config


async def test_cooldowns_circuits_disabled_keys_and_latency_appear_where_they_belong():
    clock = FakeClock()
    config = make_config()
    keys = ConfigKeySource(config.accounts, rejected_for_s=60, clock=clock)
    health = MemoryHealthStore(failure_threshold=1, open_for_s=30, clock=clock)
    health.cool_down("fast", "fast-1", "llama-70b", 12.5)
    health.cool_down("fast", "fast-2", "", 3)
    health.record_failure("smart/big-model")
    health.record_failure("https://fast.example:443")
    health.record_latency("fast", "llama-8b", 210)
    await keys.report(next(a for a in keys.accounts("smart")), KeyOutcome.REJECTED)
    providers = {p: config.providers[p] for p in ("fast", "smart")}

    state = routing_state(providers, keys, health.snapshot())

    assert state["object"] == "routing_state"
    fast, smart = state["providers"]
    assert fast["provider"] == "fast" and smart["provider"] == "smart"
    assert fast["accounts"] == [
        {"alias": "fast-1", "usable": True, "cooling": [{"model": "llama-70b", "remaining_s": 12.5}]},
        {"alias": "fast-2", "usable": True, "cooling": [{"model": "*", "remaining_s": 3}]},
    ]
    assert fast["endpoints"] == [
        {"endpoint": "https://fast.example:443", "circuit": {"state": "open", "failures": 1, "reopens_in_s": 30}}
    ]
    assert fast["models"] == [
        {"model": "llama-8b", "circuit": {"state": "closed", "failures": 0}, "latency_ms": 210},
        {"model": "llama-70b", "circuit": {"state": "closed", "failures": 0}, "latency_ms": None},
    ]
    assert smart["accounts"] == [{"alias": "smart-1", "usable": False, "cooling": []}]
    big = next(m for m in smart["models"] if m["model"] == "big-model")
    assert big["circuit"] == {"state": "open", "failures": 1, "reopens_in_s": 30}


async def test_an_open_circuit_becomes_half_open_when_its_window_passes():
    clock = FakeClock()
    config = make_config()
    keys = ConfigKeySource(config.accounts, clock=clock)
    health = MemoryHealthStore(failure_threshold=1, open_for_s=30, clock=clock)
    health.record_failure("smart/big-model")
    clock.now += 31
    state = routing_state({"smart": config.providers["smart"]}, keys, health.snapshot())
    big = next(m for m in state["providers"][0]["models"] if m["model"] == "big-model")
    assert big["circuit"]["state"] == "half_open"
