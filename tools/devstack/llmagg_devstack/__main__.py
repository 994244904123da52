"""`python -m llmagg_devstack run|demo`: the whole stack on loopback until Ctrl-C."""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import time
from pathlib import Path

from llmagg.common.telemetry import trace_ratio
from llmagg.suite import SERVICES
from llmagg_devstack.demo import AGENT_HINTS, DEMO_KEY_ENV, banner, demo_config
from llmagg_devstack.follow import LogFollower
from llmagg_devstack.processes import ProcessError
from llmagg_devstack.simulator import SimulatorProcess
from llmagg_devstack.stack import ROOT, Ports, Stack, write_config
from llmagg_devstack.supervisor import Supervisor
from llmagg_gateway.config import GatewayConfigError
from llmagg_gateway.console_routes import DEFAULT_JAEGER_UI


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
    try:
        traced_share = trace_ratio()
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return 2
    stack = Stack(
        run_dir(args.mode),
        Ports.from_env(),
        die_with_launcher=True,
        otlp_endpoint=os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"),
        trace_ratio=traced_share,  # OTEL_TRACES_SAMPLER_ARG; unset: every request (a dev stack sees all)
        jaeger_ui=os.environ.get("GATEWAY_JAEGER_UI_URL") or DEFAULT_JAEGER_UI,
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
