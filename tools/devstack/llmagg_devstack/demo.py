"""What `make run` and `make demo` say and configure: the demo's simulated providers and the banner."""

from __future__ import annotations

import os

from llmagg_devstack.stack import Stack

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
  web console             http://127.0.0.1:{stack.ports.gateway}/ui   (sign in with the admin key)
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
