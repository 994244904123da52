"""`make bench-routing`: does `auto` learn which free model answers best per kind of task?

Simulated providers (in process, seeded; no network) have task-dependent correctness, time to first
content and failure rates. Tasks have known answers: arithmetic (the number), JSON (an object with
the keys asked for) and code (a function that must pass a check when run). The bench client checks
every answer and sends its score back as feedback, as a client of POST /v1/feedback would. Three
routers serve the same seeded workload: static `auto` (tier + speed), the meta-controller (Thompson
sampling) and an oracle that always picks the model best at the task.

Reports accuracy per profile and overall, the requests the meta-controller needed on each profile
to settle on its best model, and writes a PNG of the running accuracy (blue static, red
meta-controller, green oracle).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import random
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry

from bench.png_plot import line_chart
from llmagg.common.errors import ServiceError
from llmagg_router.adapters.config_keys import ConfigKeySource
from llmagg_router.adapters.memory_health import MemoryHealthStore
from llmagg_router.adapters.memory_routing_stats import MemoryRoutingStats
from llmagg_router.adapters.prometheus_metrics import PrometheusRouterMetrics
from llmagg_router.adapters.unmetered_quota import UnmeteredQuota
from llmagg_router.domain.config import build_config
from llmagg_router.domain.limits import RouterLimits
from llmagg_router.domain.meta_controller import MetaController
from llmagg_router.domain.ports import RouterPorts
from llmagg_router.domain.resolver import Resolver
from llmagg_router.domain.router import Router
from llmagg_router.domain.upstream import Failure, UpstreamError


@dataclass(frozen=True)
class SimModel:
    id: str
    quality: int  # the static tier the catalogue gives it
    speed: int  # the provider's static speed
    correct: dict[str, float]  # task profile -> chance of a correct answer
    ttft_s: float
    failure_rate: float


MODELS = (
    SimModel("generalist", 5, 3, {"math": 0.70, "json": 0.70, "code": 0.65}, 1.2, 0.05),
    SimModel("mathlete", 2, 3, {"math": 0.97, "json": 0.40, "code": 0.30}, 0.6, 0.02),
    SimModel("jsonsmith", 3, 2, {"math": 0.40, "json": 0.97, "code": 0.50}, 0.5, 0.10),
    SimModel("coder", 3, 2, {"math": 0.50, "json": 0.55, "code": 0.95}, 0.8, 0.03),
)
PROFILES = ("math", "json", "code")
SETTLED_WINDOW, SETTLED_SHARE = (
    10,
    0.8,
)  # settled: 8 of every 10 requests of a profile (fallbacks aside) on its best model


def config():
    providers = [
        {"id": f"sim-{m.id}", "name": m.id, "protocol": "openai", "base_url": f"https://{m.id}.sim/v1",
         "speed": m.speed, "models": [{"id": m.id, "quality": m.quality, "context_window": 32000}]}
        for m in MODELS
    ]  # fmt: skip
    accounts = [{"provider": f"sim-{m.id}", "alias": f"{m.id}-1", "api_key_env": "SIM_KEY"} for m in MODELS]
    return build_config(providers, {"accounts": accounts}, {"SIM_KEY": "sk-sim-FAKE-0000000000"})


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds


# --- tasks with known answers ----------------------------------------------------------------------


def make_task(profile: str, rng: random.Random) -> tuple[dict[str, Any], Any]:
    if profile == "math":
        a, b, c = rng.randint(2, 99), rng.randint(2, 99), rng.randint(2, 9)
        return {"messages": [{"role": "user", "content": f"What is {a} + {b} * {c}?"}]}, a + b * c
    if profile == "json":
        name = rng.choice(["Ada", "Linus", "Grace"])
        ask = f"Describe {name} in JSON with the keys name and born."
        return {"messages": [{"role": "user", "content": ask}], "response_format": {"type": "json_object"}}, name
    n = rng.randint(2, 6)
    ask = f"Write a Python function top(xs) that returns the {n} largest numbers, largest first."
    return {"messages": [{"role": "user", "content": ask}]}, n


def answer(profile: str, truth: Any, correct: bool, rng: random.Random) -> str:
    """The right answer, or one of several wrong ones (models are seldom wrong the same way)."""
    if profile == "math":
        return str(truth if correct else truth + rng.randint(1, 9))
    if profile == "json":
        return (
            json.dumps({"name": truth, "born": 1815}) if correct else f"{truth} was born in {rng.randint(1700, 1999)}."
        )
    n = truth if correct else rng.choice([truth - 1, truth + 1, truth + 2])
    return f"def top(xs):\n    return sorted(xs, reverse=True)[:{n}]"


def check(profile: str, truth: Any, text: str) -> bool:
    if profile == "math":
        return text.strip() == str(truth)
    if profile == "json":
        try:
            value = json.loads(text)
        except ValueError:
            return False
        return isinstance(value, dict) and value.get("name") == truth and "born" in value
    namespace: dict[str, Any] = {}
    # The answers are the simulated models' own text (answer() above), never a real model's.
    exec(compile(text, "<answer>", "exec"), {"__builtins__": {"sorted": sorted}}, namespace)
    xs = list(range(20, 0, -3))
    return namespace["top"](xs) == sorted(xs, reverse=True)[:truth]


class SimUpstream:
    """Every simulated provider: fails at its rate, else answers correctly at its rate for the task."""

    def __init__(self, rng: random.Random, clock: Clock) -> None:
        self.rng, self.clock = rng, clock
        self.by_id = {m.id: m for m in MODELS}
        self.task: tuple[str, Any] = ("math", 0)
        self.served = 0

    async def request(self, candidate, key, operation, body):
        model = self.by_id[candidate.model_id]
        profile, truth = self.task
        self.clock.now += model.ttft_s
        if self.rng.random() < model.failure_rate:
            raise UpstreamError(Failure.SERVER, "simulated outage", status=503)
        self.served += 1
        text = answer(profile, truth, self.rng.random() < model.correct[profile], self.rng)
        return {
            "id": f"sim-{self.served}",
            "model": model.id,
            "choices": [{"message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 20, "completion_tokens": 20},
        }

    async def close(self) -> None:
        pass


def oracle_model(profile: str) -> str:
    return max(MODELS, key=lambda m: m.correct[profile] * (1 - m.failure_rate)).id


@dataclass
class Run:
    name: str
    outcomes: list[tuple[str, str, bool]]  # (profile, model that served, correct)

    def accuracy(self, profile: str | None = None) -> float:
        picked = [ok for p, _, ok in self.outcomes if profile is None or p == profile]
        return sum(picked) / len(picked)

    def settled_after(self, profile: str) -> int | None:
        """Requests of `profile` before the best model served SETTLED_SHARE of a window and kept doing so."""
        served = [m for p, m, _ in self.outcomes if p == profile]
        best = oracle_model(profile)
        for start in range(len(served) - SETTLED_WINDOW + 1):
            windows = range(start, len(served) - SETTLED_WINDOW + 1)
            if all(
                sum(m == best for m in served[w : w + SETTLED_WINDOW]) >= SETTLED_SHARE * SETTLED_WINDOW
                for w in windows
            ):
                return start
        return None

    def running_accuracy(self) -> list[float]:
        right, curve = 0, []
        for i, (_, _, ok) in enumerate(self.outcomes, 1):
            right += ok
            curve.append(right / i)
        return curve


async def simulate(mode: str, requests: int, seed: int) -> Run:
    """One router ("static", "meta", "oracle" or "ensemble") on the seeded workload of `requests` requests."""
    clock = Clock()
    routing_config = config()
    health = MemoryHealthStore(failure_threshold=5, open_for_s=30, clock=clock)
    keys = ConfigKeySource(routing_config.accounts, clock=clock)
    ports = RouterPorts(keys, UnmeteredQuota(), health, PrometheusRouterMetrics(CollectorRegistry()))
    upstream = SimUpstream(random.Random(seed + 1), clock)
    meta = MetaController(MemoryRoutingStats(), random.Random(seed + 2)) if mode == "meta" else None
    router = Router(
        Resolver(routing_config, keys, health, {"openai"}),
        ports,
        {"openai": upstream},
        RouterLimits(stream_upstream=False),
        clock=clock,
        sleep=clock.sleep,
        meta=meta,
    )
    tasks = random.Random(seed)
    outcomes = []
    for _ in range(requests):
        profile = tasks.choice(PROFILES)
        body, truth = make_task(profile, tasks)
        upstream.task = (profile, truth)
        request = {"model": "auto", **body}
        if mode == "ensemble":  # every model in parallel, the answer most of them agree on
            request = {**body, "model": "ensemble", "ensemble": {"count": len(MODELS), "strategy": "vote"}}
        if mode == "oracle":  # the best model first, the others as its fallbacks
            best = oracle_model(profile)
            request["models"] = [f"sim-{best}/{best}", *(f"sim-{m.id}/{m.id}" for m in MODELS if m.id != best)]
            request["model"] = request["models"][0]
        try:
            result = await router.complete(request)
        except ServiceError:  # every candidate failed: a wrong answer for the client
            outcomes.append((profile, "", False))
            continue
        text = result.body["choices"][0]["message"]["content"]
        correct = check(profile, truth, text)
        if meta is not None:
            await meta.feedback(result.body["id"], 1.0 if correct else 0.0)
        outcomes.append((profile, result.route.model, correct))
    return Run(mode, outcomes)


def table(runs: dict[str, Run]) -> str:
    meta = runs["meta"]
    rows = ["| profile | best model | static auto | meta-controller | oracle | ensemble (vote of 4) | meta settled after (requests) |",
            "|---|---|---|---|---|---|---|"]  # fmt: skip
    for profile in PROFILES:
        settled = meta.settled_after(profile)
        rows.append(
            f"| {profile} | {oracle_model(profile)} | {runs['static'].accuracy(profile):.3f} | "
            f"{meta.accuracy(profile):.3f} | {runs['oracle'].accuracy(profile):.3f} | "
            f"{runs['ensemble'].accuracy(profile):.3f} | {'never' if settled is None else settled} |"
        )
    rows.append(
        f"| all | | {runs['static'].accuracy():.3f} | {meta.accuracy():.3f} | {runs['oracle'].accuracy():.3f} | "
        f"{runs['ensemble'].accuracy():.3f} | |"
    )
    served = Counter((p, m) for p, m, _ in meta.outcomes)
    rows.append("")
    rows.append("Meta-controller's choices: " + ", ".join(f"{p}->{m}: {n}" for (p, m), n in sorted(served.items())))
    return "\n".join(rows)


async def bench(requests: int, seed: int) -> dict[str, Run]:
    return {mode: await simulate(mode, requests, seed) for mode in ("static", "meta", "oracle", "ensemble")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=600)
    parser.add_argument("--seed", type=int, default=22)
    parser.add_argument("--png", type=Path, default=Path(".run/bench-routing.png"))
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)  # the simulated outages' warnings are expected
    runs = asyncio.run(bench(args.requests, args.seed))
    print(f"{args.requests} requests, seed {args.seed}\n")
    print(table(runs))
    args.png.parent.mkdir(parents=True, exist_ok=True)
    line_chart(args.png, [runs[m].running_accuracy() for m in ("static", "meta", "oracle", "ensemble")])
    print(f"\nrunning accuracy (blue static, red meta-controller, green oracle, orange ensemble): {args.png}")


if __name__ == "__main__":
    main()
