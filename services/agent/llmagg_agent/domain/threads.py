"""Threads: a conversation of the agent with its state, the store that keeps them, and who may run one.

A thread is saved after every model answer and every tool result (a checkpoint): a restarted service
continues it from there. Only one run at a time may hold a thread: inside a process an asyncio lock per
thread makes the next caller wait; across replicas a lease row in the store does (taken with one
atomic statement, given back at the end of the run, and taken over only after it expires when its
holder died); and every save is checked against the version it was loaded at, so a run that lost its
thread can never write over another's.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from llmagg.common.errors import ErrorKind, ServiceError

THREAD_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$")


class AgentStatus(enum.StrEnum):
    COMPLETED = "completed"
    REQUIRES_HUMAN_INPUT = "requires_human_input"
    ERROR = "error"
    RUNNING = "running"  # a run holds the thread (or held it when its replica died)


@dataclass(frozen=True)
class HumanInput:
    """The question a paused run waits on: the id of the ask_human_for_input call and its question."""

    tool_call_id: str
    question: str


@dataclass
class Thread:
    thread_id: str
    client_id: str | None = None
    status: AgentStatus = AgentStatus.RUNNING
    messages: list[dict[str, Any]] = field(default_factory=list)
    # The parameters of the invoke the thread runs with (a resume continues with them).
    request_params: dict[str, Any] = field(default_factory=dict)
    human_input: HumanInput | None = None
    model_used: str | None = None
    generated_code: str | None = None
    explanation: str | None = None
    error_details: str | None = None
    created_at: float = 0.0
    updated_at: float = 0.0
    # Where the store has it: the version saved last (0: never saved) and how many messages it holds.
    version: int = 0
    stored_messages: int = 0

    def state(self) -> dict[str, Any]:
        """What the store keeps beside the messages and the indexed columns."""
        return {
            "request_params": self.request_params,
            "human_input": None
            if self.human_input is None
            else {"tool_call_id": self.human_input.tool_call_id, "question": self.human_input.question},
            "model_used": self.model_used,
            "generated_code": self.generated_code,
            "explanation": self.explanation,
            "error_details": self.error_details,
        }

    def restore(self, state: dict[str, Any]) -> None:
        human = state.get("human_input")
        self.request_params = state.get("request_params") or {}
        self.human_input = HumanInput(human["tool_call_id"], human["question"]) if human else None
        self.model_used = state.get("model_used")
        self.generated_code = state.get("generated_code")
        self.explanation = state.get("explanation")
        self.error_details = state.get("error_details")

    def visible_to(self, client_id: str | None) -> bool:
        """A thread made by an identified client is that client's; anonymous threads (and callers) see all."""
        return not (self.client_id and client_id and self.client_id != client_id)


@dataclass(frozen=True)
class ThreadSummary:
    thread_id: str
    status: AgentStatus
    message_count: int
    created_at: float
    updated_at: float


class StaleThread(Exception):
    """A save found the thread changed since it was loaded (another run took it over)."""


class ThreadStore(Protocol):
    """Where threads live (SQLite by default, PostgreSQL at scale); backends.py picks one."""

    async def setup(self) -> None:
        """Create the tables when they are missing."""

    async def load(self, thread_id: str) -> Thread | None: ...

    async def save(self, thread: Thread) -> None:
        """Insert (version 0) or update the thread if it is still at `thread.version`, appending the messages
        not stored yet, all in one transaction; then advance `version` and `stored_messages`. StaleThread when
        it changed meanwhile (or, for an insert, exists)."""

    async def list(self, limit: int, before: tuple[float, str] | None, client_id: str | None) -> list[ThreadSummary]:
        """Threads newest first (by creation, then id), those before `before` only; a client's own and anonymous
        ones when `client_id` is given."""

    async def delete(self, thread_id: str, holder: str) -> bool:
        """Remove the thread if `holder` holds its lease; False when there was no such thread."""

    async def claim(self, thread_id: str, holder: str, until: float, now: float) -> bool:
        """Take the thread's lease until `until` when nobody holds it (or its holder's lease ran out by `now`)."""

    async def release(self, thread_id: str, holder: str) -> None: ...

    async def ping(self) -> None:
        """Raise when the database cannot be used (readiness)."""

    async def close(self) -> None: ...


class ThreadLocks:
    """One asyncio lock per thread id in use, forgotten when nobody holds or waits for it."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    @contextlib.asynccontextmanager
    async def hold(self, thread_id: str, timeout_s: float) -> AsyncIterator[None]:
        """The thread's lock, waited for at most `timeout_s` (then 409 thread_busy); 0 takes it only when free."""
        lock, users = self._locks.get(thread_id, (None, 0))
        lock = lock or asyncio.Lock()
        self._locks[thread_id] = (lock, users + 1)
        try:
            if lock.locked():
                try:
                    await asyncio.wait_for(lock.acquire(), timeout_s)
                except TimeoutError:
                    raise thread_busy(thread_id) from None
            else:
                await lock.acquire()
            try:
                yield
            finally:
                lock.release()
        finally:
            lock, users = self._locks[thread_id]
            if users == 1:
                del self._locks[thread_id]
            else:
                self._locks[thread_id] = (lock, users - 1)

    def __len__(self) -> int:
        return len(self._locks)


def check_thread_id(thread_id: str) -> str:
    if not THREAD_ID.match(thread_id):
        raise ServiceError(
            ErrorKind.INVALID_ARGUMENT,
            "thread_id must be 1-128 letters, digits, '_', '.', ':' or '-', starting with a letter or digit",
            code="invalid_thread_id",
            param="thread_id",
        )
    return thread_id


def thread_not_found(thread_id: str) -> ServiceError:
    return ServiceError(
        ErrorKind.NOT_FOUND, f"No thread with thread_id {thread_id!r}.", code="thread_not_found", param="thread_id"
    )


def thread_busy(thread_id: str) -> ServiceError:
    return ServiceError(
        ErrorKind.FAILED_PRECONDITION,
        f"Thread {thread_id!r} is held by another run that did not end in time; try again when it has ended.",
        code="thread_busy",
        param="thread_id",
        http_status=409,
    )
