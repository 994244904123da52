"""The project directory a run may touch, and nothing outside it.

A request's `project_directory` is a path on this host: it must lie under one of the workspace roots
granted to the calling key (else 403: roots are granted per client key id, to every admin key, or to
everyone, by the operator), never inside one of the stack's own directories (its run directory with the
admin key and OpenBao's data, the agent's state: 403 whatever the key), and be a directory (else 400).
A project may contain a protected directory (the repository holds `.run`): the file tools refuse every
path that resolves into one. Inside it, every path a tool is given is relative:
absolute paths and `..` are refused, the path is resolved (symbolic links followed) and must still be
inside the project, and it is then walked again one directory at a time without following any link, so
a link swapped in between the check and the use is refused too. Only regular files are read or
replaced (never a device, pipe or socket), reads and writes are size-limited, and a write goes to a
temporary file in the same directory that is renamed over the target: readers see the old file or the
new one, never half of it.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import secrets
import stat
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from llmagg.common.errors import ErrorKind, ServiceError
from llmagg_agent.domain.tools import ToolError

_DIRECTORY = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_READ = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


@dataclass(frozen=True)
class FileLimits:
    max_read_bytes: int = 1024 * 1024
    max_write_bytes: int = 1024 * 1024
    max_list_entries: int = 1000


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


# Grantees of AGENT_WORKSPACE_ROOTS beside client key ids.
ADMIN_KEYS = "admin"
EVERY_KEY = "*"
PROTECTED_WHY = "a directory of the stack itself (its keys, secrets and data)"


@dataclass(frozen=True)
class Caller:
    """Who asks for a project directory: the client key's id and whether it is an admin key (the gateway says)."""

    client_id: str | None = None
    admin: bool = False


class WorkspacePolicy:
    """Which project directories a caller may name: those under the roots granted to it, outside protected ones.

    `grants` maps a client key id, ADMIN_KEYS or EVERY_KEY to roots; a plain list is granted to every key.
    """

    def __init__(
        self,
        grants: Mapping[str, Sequence[Path]] | Sequence[Path],
        limits: FileLimits,
        protected: Sequence[Path] = (),
    ) -> None:
        if not isinstance(grants, Mapping):
            grants = {EVERY_KEY: list(grants)}
        self.grants = {grantee: [os.path.realpath(root) for root in roots] for grantee, roots in grants.items()}
        self.protected = [os.path.realpath(path) for path in protected]
        self.limits = limits

    def roots(self, caller: Caller) -> list[str]:
        grantees = [
            EVERY_KEY,
            *([ADMIN_KEYS] if caller.admin else []),
            *([caller.client_id] if caller.client_id else []),
        ]
        return [root for grantee in grantees for root in self.grants.get(grantee, [])]

    def open(self, project_directory: str, caller: Caller = Caller()) -> Workspace:
        """The workspace of `project_directory`, or the ServiceError a client gets (403 when not granted)."""
        if not project_directory.strip() or "\x00" in project_directory:
            raise _invalid_project("project_directory must be a path")
        if not os.path.isabs(project_directory):
            raise _invalid_project(
                f"project_directory must be an absolute path on the agent's host, got {project_directory!r}"
            )
        real = os.path.realpath(project_directory)
        guarding = next((path for path in self.protected if _inside(real, path)), None)
        if guarding is not None:
            raise ServiceError(
                ErrorKind.PERMISSION_DENIED,
                f"project_directory {project_directory!r} is inside {guarding}, {PROTECTED_WHY}: the agent never "
                "works there, whatever the key.",
                code="project_directory_protected",
                param="project_directory",
            )
        roots = self.roots(caller)
        if not any(_inside(real, root) for root in roots):
            raise ServiceError(
                ErrorKind.PERMISSION_DENIED,
                _not_granted(project_directory, caller, roots),
                code="project_directory_not_allowed",
                param="project_directory",
            )
        if not os.path.isdir(real):
            raise _invalid_project(f"project_directory {project_directory!r} does not exist or is not a directory")
        return Workspace(real, self.limits, [path for path in self.protected if _inside(path, real)])


def _not_granted(project_directory: str, caller: Caller, roots: list[str]) -> str:
    who = f"client key {caller.client_id}" if caller.client_id else "this caller (no client key)"
    has = f"which may use: {', '.join(roots)}" if roots else "which has no workspace roots"
    grantee = caller.client_id or EVERY_KEY
    example = json.dumps({grantee: [project_directory]})
    return (
        f"project_directory {project_directory!r} is not granted to {who}, {has}. An admin grants directories per "
        f"key in AGENT_WORKSPACE_ROOTS (e.g. {example}) and restarts the agent."
    )


def _invalid_project(message: str) -> ServiceError:
    return ServiceError(
        ErrorKind.INVALID_ARGUMENT, message, code="invalid_project_directory", param="project_directory"
    )


class Workspace:
    """File operations confined to one directory (already resolved and allowed)."""

    def __init__(self, root: str, limits: FileLimits, protected: Sequence[str] = ()) -> None:
        self.root = root
        self.limits = limits
        self.protected = list(protected)  # resolved directories inside the root that no path may reach

    # --- paths ----------------------------------------------------------------------------------------
    def _parts(self, relative: str, *, allow_root: bool = False) -> tuple[str, ...]:
        """The resolved path's components below the root; ToolError for anything that leads elsewhere."""
        if "\x00" in relative:
            raise ToolError("the path contains a NUL character")
        if relative in ("", "."):
            if allow_root:
                return ()
            raise ToolError("a file path is required (relative to the project directory)")
        if os.path.isabs(relative):
            raise ToolError(f"{relative!r} is an absolute path; give a path relative to the project directory")
        if ".." in PurePosixPath(relative).parts:
            raise ToolError(f"{relative!r} contains '..'; paths must stay inside the project directory")
        real = os.path.realpath(os.path.join(self.root, relative))
        if not _inside(real, self.root):
            raise ToolError(f"{relative!r} leads outside the project directory (through a symbolic link)")
        if any(_inside(real, path) for path in self.protected):
            raise ToolError(f"{relative!r} is in {PROTECTED_WHY}; the agent never reads, writes or lists there")
        parts = PurePosixPath(os.path.relpath(real, self.root)).parts
        if not parts or parts == (".",):
            if allow_root:
                return ()
            raise ToolError(f"{relative!r} is the project directory itself, not a file")
        return parts

    @contextlib.contextmanager
    def _directory(self, parts: tuple[str, ...], relative: str, *, create: bool = False) -> Iterator[int]:
        """A descriptor of the directory `parts`, opened one level at a time without following links."""
        fd = os.open(self.root, _DIRECTORY)
        try:
            for part in parts:
                try:
                    following = os.open(part, _DIRECTORY, dir_fd=fd)
                except FileNotFoundError:
                    if not create:
                        raise ToolError(f"{relative!r} does not exist") from None
                    os.mkdir(part, 0o777, dir_fd=fd)
                    following = os.open(part, _DIRECTORY, dir_fd=fd)
                except OSError as problem:
                    if problem.errno not in (errno.ENOTDIR, errno.ELOOP):
                        raise
                    if stat.S_ISLNK(os.stat(part, dir_fd=fd, follow_symlinks=False).st_mode):
                        raise ToolError(f"{relative!r} changed into a symbolic link; refused") from None
                    raise ToolError(f"{relative!r}: {part!r} is not a directory") from None
                os.close(fd)
                fd = following
            yield fd
        finally:
            os.close(fd)

    @staticmethod
    def _regular(name: str, directory: int, relative: str) -> os.stat_result | None:
        """The file's status when it is a regular file, None when it does not exist; refuses anything else."""
        try:
            status = os.stat(name, dir_fd=directory, follow_symlinks=False)
        except FileNotFoundError:
            return None
        if stat.S_ISDIR(status.st_mode):
            raise ToolError(f"{relative!r} is a directory (list_files lists it)")
        if stat.S_ISLNK(status.st_mode):
            raise ToolError(f"{relative!r} changed into a symbolic link; refused")
        if not stat.S_ISREG(status.st_mode):
            raise ToolError(f"{relative!r} is not a regular file (a device, pipe or socket); refused")
        return status

    # --- operations -------------------------------------------------------------------------------------
    def read_text(self, relative: str) -> str:
        parts = self._parts(relative)
        limit = self.limits.max_read_bytes
        with self._directory(parts[:-1], relative) as directory:
            status = self._regular(parts[-1], directory, relative)
            if status is None:
                raise ToolError(f"{relative!r} does not exist")
            if status.st_size > limit:
                raise ToolError(f"{relative!r} is {status.st_size} bytes; files over {limit} bytes are not read")
            try:
                fd = os.open(parts[-1], _READ, dir_fd=directory)
            except OSError as problem:
                raise ToolError(f"{relative!r} cannot be opened ({os.strerror(problem.errno or 0)})") from None
            with os.fdopen(fd, "rb") as handle:
                opened = os.fstat(handle.fileno())
                if (opened.st_dev, opened.st_ino) != (status.st_dev, status.st_ino):
                    raise ToolError(f"{relative!r} changed while it was opened; refused")
                data = handle.read(limit + 1)
        if len(data) > limit:
            raise ToolError(f"{relative!r} is over {limit} bytes; it is not read")
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            raise ToolError(f"{relative!r} is not UTF-8 text") from None

    def write_text(self, relative: str, content: str) -> str:
        data = content.encode("utf-8")
        limit = self.limits.max_write_bytes
        if len(data) > limit:
            raise ToolError(f"the content is {len(data)} bytes; writes over {limit} bytes are refused")
        parts = self._parts(relative)
        name = parts[-1]
        with self._directory(parts[:-1], relative, create=True) as directory:
            existing = self._regular(name, directory, relative)
            temporary = f".llmagg-{secrets.token_hex(8)}.tmp"
            fd = os.open(temporary, _CREATE, 0o666, dir_fd=directory)
            try:
                with os.fdopen(fd, "wb") as handle:
                    handle.write(data)
                    handle.flush()
                    if existing is not None:
                        os.fchmod(handle.fileno(), stat.S_IMODE(existing.st_mode))
                    os.fsync(handle.fileno())
                os.rename(temporary, name, src_dir_fd=directory, dst_dir_fd=directory)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(temporary, dir_fd=directory)
                raise
            os.fsync(directory)
        action = "Replaced" if existing is not None else "Created"
        return f"{action} {relative} ({len(data)} bytes)."

    def list_entries(self, relative: str) -> str:
        parts = self._parts(relative, allow_root=True)
        with self._directory(parts, relative or ".") as directory:
            names = sorted(os.listdir(directory))
            shown = names[: self.limits.max_list_entries]
            entries = []
            for name in shown:
                try:
                    mode = os.stat(name, dir_fd=directory, follow_symlinks=False).st_mode
                except FileNotFoundError:
                    continue
                entries.append(f"{name}/" if stat.S_ISDIR(mode) else f"{name}@" if stat.S_ISLNK(mode) else name)
        if not entries:
            return "(empty directory)"
        more = len(names) - len(shown)
        return "\n".join(entries) + (f"\n({more} more entries not shown)" if more > 0 else "")
