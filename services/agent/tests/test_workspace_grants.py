"""Whose project directories: roots granted per client key (or to admin keys), and the stack's own directories,
which no key reaches, not even an admin key, not through a symbolic link."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llmagg.common.errors import ErrorKind, ServiceError
from llmagg_agent.domain.tools import ToolError
from llmagg_agent.domain.workspace import Caller, WorkspacePolicy
from llmagg_agent.settings import AgentSettings

CLIENT = Caller("k3f9a2")
OTHER_CLIENT = Caller("k0other")
ADMIN = Caller("admin-env", admin=True)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """A stand-in for the operator's home: a project, and the stack's run directory with its secrets."""
    home = tmp_path / "home"
    (home / "repo" / ".run" / "openbao").mkdir(parents=True)
    (home / "repo" / ".run" / "admin-key").write_text("sk-llmagg-admin-secret")
    (home / "repo" / ".run" / "openbao" / "init.json").write_text('{"root_token": "s.root"}')
    (home / "repo" / "src").mkdir()
    (home / "repo" / "src" / "app.py").write_text("print('hi')\n")
    (home / "granted").mkdir()
    return home


@pytest.fixture
def grants_policy(home: Path, limits) -> WorkspacePolicy:
    return WorkspacePolicy(
        {"admin": [home / "repo"], "k3f9a2": [home / "granted"]}, limits, protected=[home / "repo" / ".run"]
    )


def refusal(policy: WorkspacePolicy, path: Path, caller: Caller) -> ServiceError:
    with pytest.raises(ServiceError) as refused:
        policy.open(str(path), caller)
    return refused.value


def test_a_client_key_gets_only_the_roots_granted_to_it(grants_policy, home):
    assert grants_policy.open(str(home / "granted"), CLIENT).root == str(home / "granted")
    for path in (home, home / "repo", home / "repo" / "src"):
        error = refusal(grants_policy, path, CLIENT)
        assert (error.kind, error.code, error.param) == (
            ErrorKind.PERMISSION_DENIED,
            "project_directory_not_allowed",
            "project_directory",
        )
        assert error.message == (
            f"project_directory {str(path)!r} is not granted to client key k3f9a2, which may use: {home / 'granted'}. "
            f'An admin grants directories per key in AGENT_WORKSPACE_ROOTS (e.g. {{"k3f9a2": ["{path}"]}}) '
            "and restarts the agent."
        )


def test_a_key_without_grants_gets_nothing_and_is_told_how_to_get_some(grants_policy, home):
    error = refusal(grants_policy, home / "granted", OTHER_CLIENT)
    assert error.kind == ErrorKind.PERMISSION_DENIED
    assert error.message == (
        f"project_directory {str(home / 'granted')!r} is not granted to client key k0other, which has no workspace "
        f'roots. An admin grants directories per key in AGENT_WORKSPACE_ROOTS (e.g. {{"k0other": '
        f'["{home / "granted"}"]}}) and restarts the agent.'
    )
    anonymous = refusal(grants_policy, home / "granted", Caller())
    assert anonymous.kind == ErrorKind.PERMISSION_DENIED


def test_admin_keys_get_the_admin_roots(grants_policy, home):
    assert grants_policy.open(str(home / "repo" / "src"), ADMIN).root == str(home / "repo" / "src")
    assert refusal(grants_policy, home / "granted", ADMIN).kind == ErrorKind.PERMISSION_DENIED


@pytest.mark.parametrize("where", [".run", ".run/openbao"])
def test_the_stacks_run_directory_is_refused_even_to_an_admin_key_under_its_root(grants_policy, home, where):
    error = refusal(grants_policy, home / "repo" / where, ADMIN)
    assert (error.kind, error.code) == (ErrorKind.PERMISSION_DENIED, "project_directory_protected")
    assert error.message == (
        f"project_directory {str(home / 'repo' / where)!r} is inside {home / 'repo' / '.run'}, a directory of the "
        "stack itself (its keys, secrets and data): the agent never works there, whatever the key."
    )


def test_a_symlink_to_the_run_directory_is_refused_as_a_project(grants_policy, home):
    (home / "repo" / "innocent").symlink_to(home / "repo" / ".run")
    error = refusal(grants_policy, home / "repo" / "innocent", ADMIN)
    assert error.code == "project_directory_protected"


@pytest.mark.parametrize(
    "path", [".run/admin-key", ".run/openbao/init.json", "./.run/admin-key", "secrets/admin-key", "secrets"]
)
def test_file_tools_never_reach_the_run_directory_inside_a_project(grants_policy, home, path):
    (home / "repo" / "secrets").symlink_to(home / "repo" / ".run")
    workspace = grants_policy.open(str(home / "repo"), ADMIN)
    with pytest.raises(ToolError) as refused:
        workspace.read_text(path) if path != "secrets" else workspace.list_entries(path)
    assert str(refused.value) == (
        f"{path!r} is in a directory of the stack itself (its keys, secrets and data); the agent never reads, "
        "writes or lists there"
    )
    with pytest.raises(ToolError):
        workspace.write_text(path if path != "secrets" else "secrets/new.txt", "planted")
    assert (home / "repo" / ".run" / "admin-key").read_text() == "sk-llmagg-admin-secret"
    assert sorted(p.name for p in (home / "repo" / ".run").iterdir()) == ["admin-key", "openbao"]
    assert workspace.read_text("src/app.py") == "print('hi')\n"


def test_a_plain_list_of_roots_is_granted_to_every_key(home, limits):
    policy = WorkspacePolicy([home / "granted"], limits)
    for caller in (CLIENT, OTHER_CLIENT, ADMIN, Caller()):
        assert policy.open(str(home / "granted"), caller).root == str(home / "granted")


# --- settings ---------------------------------------------------------------------------------------------
def test_unset_roots_grant_nothing_to_anyone(monkeypatch, tmp_path):
    monkeypatch.delenv("AGENT_WORKSPACE_ROOTS", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert AgentSettings().workspace_grants() == {}


def test_roots_per_key_admin_or_everyone_from_the_environment(monkeypatch, tmp_path):
    grants = {"admin": ["/srv/repo"], "k3f9a2": ["/srv/a", "/srv/b"], "*": ["/srv/shared"]}
    monkeypatch.setenv("AGENT_WORKSPACE_ROOTS", json.dumps(grants))
    assert AgentSettings().workspace_grants() == {k: [Path(p) for p in v] for k, v in grants.items()}
    monkeypatch.setenv("AGENT_WORKSPACE_ROOTS", "/srv/a:/srv/b")
    assert AgentSettings().workspace_grants() == {"*": [Path("/srv/a"), Path("/srv/b")]}


def test_the_agents_own_state_directory_is_always_protected(monkeypatch, tmp_path):
    monkeypatch.setenv("AGENT_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("AGENT_PROTECTED_PATHS", json.dumps([str(tmp_path / "run")]))
    assert AgentSettings().protected_directories() == [tmp_path / "run", tmp_path / "state"]
