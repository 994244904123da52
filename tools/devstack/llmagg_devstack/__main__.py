"""`python -m llmagg_devstack run|demo`: the whole stack on loopback until Ctrl-C."""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import time
from pathlib import Path

from llmagg_devstack.processes import ProcessError
from llmagg_devstack.simulator import SimulatorProcess
from llmagg_devstack.stack import ROOT, Ports, Stack, write_config

DEMO_KEY_ENV = "LLMAGG_DEMO_KEY"


def demo_config(simulator_url: str) -> dict:
    """Three simulated providers, labelled as such, that make routing and fallback visible."""

    def provider(name: str, label: str, speed: int, quality: int) -> dict:
        return {
            "id": name,
            "name": f"Simulated: {label}",
            "protocol": "openai",
            "base_url": f"{simulator_url}/{name}/v1",
            "speed": speed,
            "notes": "the local provider simulator, not a real provider",
            "models": [
                {"id": "sim-large", "quality": quality, "context_window": 32768, "aliases": ["demo-model"]},
                {"id": "sim-embed", "type": "embedding", "context_window": 8192},
            ],
        }

    providers = [
        provider("sim-ratelimited", "always answers 429", speed=5, quality=4),
        provider("sim-broken", "always fails with 500", speed=4, quality=4),
        provider("sim-fast", "fast and healthy", speed=5, quality=2),
    ]
    return {
        "providers": providers,
        "accounts": [{"provider": p["id"], "alias": f"{p['id']}-demo", "api_key_env": DEMO_KEY_ENV} for p in providers],
        "fallback_chains": {
            "demo-chain": [{"provider": p["id"], "model": "sim-large"} for p in providers],
        },
    }


def banner(stack: Stack, model: str, note: str) -> str:
    url = stack.base_url
    body = f'{{"model": "{model}", "messages": [{{"role": "user", "content": "Hello!"}}]}}'
    return f"""
llm-aggregator is up.
  OpenAI-compatible API   {url}          (gRPC on the same port)
  Envoy admin             http://127.0.0.1:{stack.ports.admin}
  logs                    {stack.run_dir}/*.log
{note}
Try:
  curl -s {url}/chat/completions -H 'Content-Type: application/json' \\
    -d '{body}'
  curl -s {url}/models

Ctrl-C stops everything.
"""


class Stopped(BaseException):
    """Ctrl-C, kill or a closed terminal: stop everything, whatever the launcher is doing."""


def _stop(signum: int, frame: object) -> None:
    raise Stopped


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m llmagg_devstack")
    parser.add_argument("mode", choices=["run", "demo"])
    args = parser.parse_args(argv)
    stack = Stack(
        Path(os.environ.get("LLMAGG_RUN_DIR") or ROOT / ".run"),
        Ports.from_env(),
        die_with_launcher=True,
        otlp_endpoint=os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"),
    )
    env: dict[str, str] = {}
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _stop)
    simulator = None
    try:
        if args.mode == "demo":
            simulator = SimulatorProcess(
                providers={"sim-ratelimited": "429", "sim-broken": "500"},
                log_path=stack.run_dir / "simulator.log",
                die_with_launcher=True,
            )
            config = write_config(stack.run_dir / "demo-config.yaml", demo_config(simulator.url))
            env = {"LLMAGG_CONFIG": str(config), DEMO_KEY_ENV: "sim-demo-key"}
            model = "demo-model"
            note = (
                "\nDemo mode: three simulated providers (see .run/demo-config.yaml). A request for 'demo-model'\n"
                "tries sim-ratelimited (429), then sim-broken (500), and is answered by sim-fast: the\n"
                "x-llmagg-provider / x-llmagg-attempts headers and the `provider` field show it (curl -i).\n"
            )
        else:
            model = "auto"
            config_path = os.environ.get("LLMAGG_CONFIG")
            note = (
                f"  config                  {config_path}\n"
                if config_path
                else "\nNo LLMAGG_CONFIG is set, so no provider account is configured: chat requests will say how\n"
                "to add one (README: 'Add provider accounts'). `make demo` runs with simulated providers.\n"
            )
        stack.start_services(env)
        stack.start_gateway()
        print(banner(stack, model, note), flush=True)
        while True:
            time.sleep(0.5)
            for process in stack.processes:
                if process.returncode is not None:
                    print(f"{process.name} exited; see {process.log_path}", file=sys.stderr)
                    return 1
    except Stopped:
        return 0
    except ProcessError as exc:
        print(exc, file=sys.stderr)
        return 1
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)  # a second Ctrl-C must not cut the orderly stop short
        with contextlib.suppress(OSError):  # stderr may be a closed terminal or a broken pipe by now
            print("stopping...", file=sys.stderr)
        stack.stop()
        if simulator is not None:
            simulator.stop()


if __name__ == "__main__":
    sys.exit(main())
