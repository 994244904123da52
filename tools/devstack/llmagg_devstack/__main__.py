"""`python -m llmagg_devstack run|demo`: the whole stack on loopback until Ctrl-C."""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import time
from pathlib import Path

from llmagg.suite import SERVICES
from llmagg_devstack.follow import LogFollower
from llmagg_devstack.processes import ProcessError
from llmagg_devstack.simulator import SimulatorProcess
from llmagg_devstack.stack import ROOT, Ports, Stack, write_config
from llmagg_devstack.supervisor import Supervisor
from llmagg_gateway.config import GatewayConfigError

DEMO_KEY_ENV = "LLMAGG_DEMO_KEY"
# The agent command each banner suggests. The demo's simulated model calls the first tool it is offered
# (read_file, with a project) and answers once the result is back: run from the repository, the admin
# key's workspace root under `make run`/`make demo`.
AGENT_EXAMPLE = 'llmagg agent "Write a python function that returns the factorial of n"'
AGENT_HINTS = {
    "run": f"{AGENT_EXAMPLE}   # --project DIR: files too",
    "demo": f"{AGENT_EXAMPLE} --project .   # from the repository: reads a file, then answers",
}


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


def client_keys_note(stack: Stack) -> tuple[str, str]:
    """What the banner says about client keys, and the header the curl examples send."""
    if not stack.client_auth:
        return (
            "  client keys             OFF (GATEWAY_CLIENT_AUTH=off): every local caller is anonymous\n",
            "",
        )
    if os.environ.get("LLMAGG_ADMIN_KEY"):
        source = "LLMAGG_ADMIN_KEY (from your environment)"
        setup = ""
    else:
        source = f"in {stack.admin_key_file} (made at first start, owner-only)"
        setup = f"  export LLMAGG_ADMIN_KEY=$(cat {stack.admin_key_file})\n"
    return (
        f"  admin key               {source}\n"
        "  client keys             every request needs one: `llmagg keys create --name my-app`\n"
        f"\nUse the admin key from this shell:\n{setup}",
        ' -H "Authorization: Bearer $LLMAGG_ADMIN_KEY"',
    )


def banner(stack: Stack, model: str, note: str, agent: str = AGENT_HINTS["run"]) -> str:
    url = stack.base_url
    body = f'{{"model": "{model}", "messages": [{{"role": "user", "content": "Hello!"}}]}}'
    keys, auth = client_keys_note(stack)
    return f"""
llm-aggregator is up.
  OpenAI-compatible API   {url}          (gRPC on the same port)
  Envoy admin             http://127.0.0.1:{stack.ports.admin}
  logs                    {stack.run_dir}/*.log
{keys}{note}
Try:
  curl -s {url}/chat/completions{auth} -H 'Content-Type: application/json' \\
    -d '{body}'
  curl -s {url}/models{auth}
  llmagg accounts list       # llmagg configure walks through the providers and stores keys
  {agent}

Ctrl-C stops everything.
"""


def run_dir(mode: str) -> Path:
    """LLMAGG_RUN_DIR (else .run); the demo keeps to a folder of its own in it (its OpenBao, accounts, admin
    key, usage), so that its simulated accounts never show under a later `make run`."""
    base = Path(os.environ.get("LLMAGG_RUN_DIR") or ROOT / ".run")
    return base / "demo" if mode == "demo" else base


class Stopped(BaseException):
    """Ctrl-C, kill or a closed terminal: stop everything, whatever the launcher is doing."""


def _stop(signum: int, frame: object) -> None:
    raise Stopped


def _say_waiting(port: int, what: str) -> None:
    print(f"port {port} for {what} is taken; waiting for it (the last stack may still be stopping)", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m llmagg_devstack")
    parser.add_argument("mode", choices=["run", "demo"])
    args = parser.parse_args(argv)
    stack = Stack(
        run_dir(args.mode),
        Ports.from_env(),
        die_with_launcher=True,
        otlp_endpoint=os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"),
        client_auth=os.environ.get("GATEWAY_CLIENT_AUTH", "on").lower() not in ("off", "0", "false", "no"),
        listen_host=os.environ.get("GATEWAY_HOST", "127.0.0.1"),
        client_limits_fail_closed=os.environ.get("GATEWAY_CLIENT_LIMITS_FAILURE", "open").lower() == "closed",
    )
    # Lines a person reads on the terminal (unless the environment chose otherwise).
    env = {f"{s.env_prefix}LOG_FORMAT": "text" for s in SERVICES if f"{s.env_prefix}LOG_FORMAT" not in os.environ}
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _stop)
    simulator = None
    try:
        stack.ensure_ports_free(env, on_wait=_say_waiting)
        if args.mode == "demo":
            simulator = SimulatorProcess(
                providers={"sim-ratelimited": "429", "sim-broken": "500"},
                log_path=stack.run_dir / "simulator.log",
                die_with_launcher=True,
            )
            config = write_config(stack.run_dir / "demo-config.yaml", demo_config(simulator.url))
            env |= {"LLMAGG_CONFIG": str(config), DEMO_KEY_ENV: "sim-demo-key"}
            model = "demo-model"
            note = (
                f"\nDemo mode: three simulated providers (see {config}). A request for 'demo-model'\n"
                "tries sim-ratelimited (429), then sim-broken (500), and is answered by sim-fast: the\n"
                "x-llmagg-provider / x-llmagg-attempts headers and the `provider` field show it (curl -i).\n"
            )
        else:
            model = "auto"
            config_path = os.environ.get("LLMAGG_CONFIG")
            note = (
                f"  config                  {config_path}\n"
                if config_path
                else "\nNo LLMAGG_CONFIG is set: add provider accounts with `llmagg configure` or `llmagg accounts add\n"
                "groq` (README: 'Add provider accounts'); they are kept in OpenBao under .run/openbao and\n"
                "survive restarts. `make demo` runs with simulated providers.\n"
            )
        stack.start_services(env)
        stack.start_gateway()
        print(banner(stack, model, note, AGENT_HINTS[args.mode]), flush=True)
        follower = LogFollower(stack.run_dir / f"{s.name}.log" for s in SERVICES)
        supervisor = Supervisor(lambda line: print(line, file=sys.stderr, flush=True))
        supervisor.watch_all(stack.supervised())
        while True:  # until Ctrl-C (Stopped): a child that exits is restarted (llmagg_devstack.supervisor)
            time.sleep(0.5)
            for line in follower.new_lines():
                print(line, flush=True)
            supervisor.tick()
    except Stopped:
        return 0
    except (ProcessError, GatewayConfigError) as exc:
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
