"""Project directories: allowed only under the workspace roots; file tools confined to them, whatever the path."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from llmagg.common.errors import ErrorKind, ServiceError
from llmagg_agent.domain.tools import ToolError
from llmagg_agent.domain.workspace import FileLimits, Workspace, WorkspacePolicy


def files_under(path: Path) -> set[str]:
    return {str(p.relative_to(path)) for p in path.rglob("*")}


@pytest.fixture
def workspace(policy: WorkspacePolicy, project: Path) -> Workspace:
    return policy.open(str(project))


# --- which project directories ------------------------------------------------------------------------
def test_a_project_under_a_root_is_opened_resolved(policy, project, roots):
    (roots / "link-to-project").symlink_to(project)
    assert policy.open(str(roots / "link-to-project")).root == str(project)


@pytest.mark.parametrize("where", ["outside", "/", "workspaces/../outside"])
def test_a_project_outside_the_roots_is_403(policy, tmp_path, where):
    path = where if where.startswith("/") else str(tmp_path / where)
    with pytest.raises(ServiceError) as refused:
        policy.open(path)
    error = refused.value
    assert (error.kind, error.code, error.param) == (
        ErrorKind.PERMISSION_DENIED,
        "project_directory_not_allowed",
        "project_directory",
    )
    assert "AGENT_WORKSPACE_ROOTS" in error.message


def test_a_symlink_under_a_root_that_points_outside_is_403(policy, roots, tmp_path):
    (roots / "escape").symlink_to(tmp_path / "outside")
    with pytest.raises(ServiceError) as refused:
        policy.open(str(roots / "escape"))
    assert refused.value.kind == ErrorKind.PERMISSION_DENIED


def test_without_roots_every_project_is_refused_saying_how_to_allow_one(limits, project):
    with pytest.raises(ServiceError) as refused:
        WorkspacePolicy([], limits).open(str(project))
    assert refused.value.kind == ErrorKind.PERMISSION_DENIED
    assert "which has no workspace roots. An admin grants directories per key in AGENT_WORKSPACE_ROOTS" in (
        refused.value.message
    )


@pytest.mark.parametrize("path", ["relative/dir", "", "/bad\x00path"])
def test_a_relative_or_malformed_project_path_is_400(policy, path):
    with pytest.raises(ServiceError) as refused:
        policy.open(path)
    assert (refused.value.kind, refused.value.code) == (ErrorKind.INVALID_ARGUMENT, "invalid_project_directory")


def test_a_missing_project_or_a_file_under_a_root_is_400(policy, roots):
    (roots / "file.txt").write_text("x")
    for path in (roots / "missing", roots / "file.txt"):
        with pytest.raises(ServiceError) as refused:
            policy.open(str(path))
        assert refused.value.kind == ErrorKind.INVALID_ARGUMENT
        assert "does not exist or is not a directory" in refused.value.message


# --- reading ----------------------------------------------------------------------------------------
def test_read_returns_the_text_of_a_file_inside(workspace, project):
    (project / "src").mkdir()
    (project / "src" / "app.py").write_text("print('hi')\n")
    assert workspace.read_text("src/app.py") == "print('hi')\n"
    assert workspace.read_text("./src//app.py") == "print('hi')\n"


def test_a_symlink_that_stays_inside_is_followed(workspace, project):
    (project / "real.txt").write_text("real")
    (project / "alias.txt").symlink_to("real.txt")
    assert workspace.read_text("alias.txt") == "real"


@pytest.mark.parametrize(
    ("path", "why"),
    [
        ("../outside/secret.txt", "contains '..'"),
        ("src/../../outside/secret.txt", "contains '..'"),
        ("SECRET_ABSOLUTE", "is an absolute path"),
        ("to-outside/secret.txt", "leads outside the project directory"),
        ("secret-link", "leads outside the project directory"),
        ("", "a file path is required"),
        ("nul\x00byte", "NUL"),
    ],
)
def test_reads_that_would_leave_the_project_are_refused(workspace, project, tmp_path, path, why):
    secret = tmp_path / "outside" / "secret.txt"
    secret.write_text("top secret")
    (project / "to-outside").symlink_to(tmp_path / "outside")
    (project / "secret-link").symlink_to(secret)
    path = str(secret) if path == "SECRET_ABSOLUTE" else path
    with pytest.raises(ToolError, match=why):
        workspace.read_text(path)


def test_special_files_are_never_read(workspace, project):
    os.mkfifo(project / "pipe")
    with pytest.raises(ToolError, match="not a regular file"):
        workspace.read_text("pipe")
    if os.geteuid() == 0:  # only root may make a device node
        os.mknod(project / "zero", stat.S_IFCHR | 0o600, os.makedev(1, 5))
        with pytest.raises(ToolError, match="not a regular file"):
            workspace.read_text("zero")


def test_reads_are_size_limited_and_text_only(workspace, project):
    (project / "big.txt").write_text("x" * 1001)
    with pytest.raises(ToolError, match="1001 bytes; files over 1000 bytes are not read"):
        workspace.read_text("big.txt")
    (project / "fits.txt").write_text("x" * 1000)
    assert len(workspace.read_text("fits.txt")) == 1000
    (project / "image.png").write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe")
    with pytest.raises(ToolError, match="not UTF-8 text"):
        workspace.read_text("image.png")


def test_missing_files_and_directories_are_explained(workspace, project):
    (project / "dir").mkdir()
    (project / "file.txt").write_text("x")
    with pytest.raises(ToolError, match=r"'nope\.txt' does not exist"):
        workspace.read_text("nope.txt")
    with pytest.raises(ToolError, match="is a directory"):
        workspace.read_text("dir")
    with pytest.raises(ToolError, match="is not a directory"):
        workspace.read_text("file.txt/inner")


# --- writing ----------------------------------------------------------------------------------------
def test_a_write_creates_parents_and_replaces_atomically_keeping_the_mode(workspace, project):
    assert workspace.write_text("pkg/sub/new.py", "a = 1\n") == "Created pkg/sub/new.py (6 bytes)."
    assert (project / "pkg" / "sub" / "new.py").read_text() == "a = 1\n"
    script = project / "run.sh"
    script.write_text("old")
    script.chmod(0o755)
    inode_before = script.stat().st_ino
    assert workspace.write_text("run.sh", "new") == "Replaced run.sh (3 bytes)."
    assert script.read_text() == "new" and stat.S_IMODE(script.stat().st_mode) == 0o755
    assert script.stat().st_ino != inode_before  # a new file renamed over the old: never half-written
    assert files_under(project) == {"pkg", "pkg/sub", "pkg/sub/new.py", "run.sh"}  # no temporary file left


@pytest.mark.parametrize(
    "path",
    ["../outside/planted.txt", "ABSOLUTE", "to-outside/planted.txt", "to-outside/deeper/planted.txt", "dangling"],
)
def test_writes_that_would_leave_the_project_write_nothing_anywhere(workspace, project, tmp_path, path):
    outside = tmp_path / "outside"
    (project / "to-outside").symlink_to(outside)
    (project / "dangling").symlink_to(outside / "planted.txt")
    before = files_under(project)
    path = str(outside / "planted.txt") if path == "ABSOLUTE" else path
    with pytest.raises(ToolError):
        workspace.write_text(path, "pwned")
    assert files_under(outside) == set()
    assert files_under(project) == before


def test_writes_over_special_files_or_directories_are_refused(workspace, project):
    os.mkfifo(project / "pipe")
    (project / "dir").mkdir()
    with pytest.raises(ToolError, match="not a regular file"):
        workspace.write_text("pipe", "x")
    with pytest.raises(ToolError, match="is a directory"):
        workspace.write_text("dir", "x")
    assert stat.S_ISFIFO((project / "pipe").lstat().st_mode)


def test_writes_are_size_limited_before_anything_is_created(workspace, project):
    with pytest.raises(ToolError, match="1001 bytes; writes over 1000 bytes are refused"):
        workspace.write_text("new/dir/big.txt", "x" * 1001)
    assert files_under(project) == set()


def test_a_link_swapped_in_after_the_check_is_not_followed(workspace, project, tmp_path, monkeypatch):
    """The path is checked, then walked without following links: a directory replaced by a link meanwhile fails."""
    (project / "sub").mkdir()
    real_realpath = os.path.realpath

    def swap_then_resolve(path, *args, **kwargs):
        resolved = real_realpath(path, *args, **kwargs)
        if str(path).endswith("sub/file.txt") and (project / "sub").is_dir() and not (project / "sub").is_symlink():
            (project / "sub").rmdir()
            (project / "sub").symlink_to(tmp_path / "outside")
        return resolved

    monkeypatch.setattr(os.path, "realpath", swap_then_resolve)
    with pytest.raises(ToolError, match="changed into a symbolic link"):
        workspace.write_text("sub/file.txt", "pwned")
    assert files_under(tmp_path / "outside") == set()


# --- listing ----------------------------------------------------------------------------------------
def test_listing_marks_directories_and_links_and_is_bounded(workspace, project, tmp_path):
    assert workspace.list_entries("") == "(empty directory)"
    for name in ("b.txt", "a.txt", "c.txt"):
        (project / name).write_text("x")
    (project / "src").mkdir()
    (project / "out").symlink_to(tmp_path / "outside")
    (project / "z.txt").write_text("x")
    assert workspace.list_entries("") == "a.txt\nb.txt\nc.txt\nout@\nsrc/\n(1 more entries not shown)"
    (project / "src" / "m.py").write_text("x")
    assert workspace.list_entries("src") == workspace.list_entries("./src/") == "m.py"
    with pytest.raises(ToolError, match="leads outside"):
        workspace.list_entries("out")
    with pytest.raises(ToolError, match=r"contains '\.\.'"):
        workspace.list_entries("..")


def test_limits_come_from_the_policy(roots, project):
    workspace = WorkspacePolicy([roots], FileLimits(max_read_bytes=3)).open(str(project))
    (project / "four.txt").write_text("four")
    with pytest.raises(ToolError, match="over 3 bytes"):
        workspace.read_text("four.txt")
