"""The coding agent: a loop of model calls and tool calls over a thread, paused when it asks the human.

A run (one invoke or resume) holds its thread alone (threads.py), appends the instruction (or the
human's answer), then asks the model, through the router, with the tools of the run: the file tools
when the request names a project directory, and ask_human_for_input. Each answer's tool calls are
carried out in order and their results appended; a question to the human pauses the run
(`requires_human_input`) until a resume answers it. An answer without tool calls ends the run
(`completed`) with the code and explanation taken from it. The thread is saved after every model
answer and every tool result. A run stops with `error` and a reason after `max_steps` model calls, at
its deadline, when a model call fails, or when it is cancelled.

Every run is one span (`agent.run`) with a child per model call (`agent.model_call`, under which the
router's spans nest) and per tool call (`agent.tool_call`).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import orjson
from opentelemetry import trace

from llmagg.common.backoff import Backoff
from llmagg.common.errors import ErrorKind, ServiceError
from llmagg.common.logging import log_fields
from llmagg_agent.domain.answer import extract
from llmagg_agent.domain.builtin_tools import ASK_HUMAN, BUILTIN_TOOLS, tools_for_run
from llmagg_agent.domain.contextual import check_model_quality, fenced
from llmagg_agent.domain.metrics import AgentMetrics, NoMetrics
from llmagg_agent.domain.model import ModelClient, ModelReply, ModelRequest
from llmagg_agent.domain.requests import InvokeRequest, ResumeRequest, check_length, check_sizes
from llmagg_agent.domain.threads import (
    AgentStatus,
    HumanInput,
    StaleThread,
    Thread,
    ThreadLocks,
    ThreadStore,
    ThreadSummary,
    check_thread_id,
    thread_busy,
    thread_not_found,
)
from llmagg_agent.domain.tools import ToolOutcome, ToolRegistry
from llmagg_agent.domain.workspace import Caller, Workspace, WorkspacePolicy

log = logging.getLogger(__name__)
tracer = trace.get_tracer("llmagg.agent")

ONE_QUESTION = "Error: only one question can wait for the human at a time; ask this one again after the answer."
INTERRUPTED = "Error: the run ended before this call was carried out; call the tool again if it is still needed."
MAX_PAGE = 500
_CLAIM_BACKOFF = Backoff(0.05, 1.0)  # a thread another replica holds: looked at again, less often each time
DEFAULT_PAGE = 50


@dataclass(frozen=True)
class AgentLimits:
    max_steps: int = 25  # model calls per run
    run_deadline_s: float = 280.0
    lease_margin_s: float = 30.0  # a dead replica's lease outlives its run's deadline by this much
    # Longest instruction (and answer to a question) and context, in characters: refused above, never stored.
    max_instruction_chars: int = 100_000
    max_context_chars: int = 1_000_000


def user_message(request: InvokeRequest) -> str:
    parts = [request.instruction.strip()]
    if request.language:
        parts.append(f"Language: {request.language}")
    if request.context:
        parts.append(f"Existing code or context:\n{fenced(request.context, request.language)}")
    return "\n\n".join(parts)


def system_prompt(tools: ToolRegistry, language: str | None) -> str:
    lines = ["You are a coding agent. Carry out the user's instruction and produce working code."]
    if "read_file" in tools:
        lines.append(
            "You work in the user's project directory with the tools read_file, write_file and list_files; every "
            "path is relative to the project directory. Read a file before you change it, and write whole files."
        )
    if ASK_HUMAN in tools:
        lines.append(
            f"When a decision or information only the user has is needed, call {ASK_HUMAN} with your question "
            "and wait for the answer."
        )
    block = f"one fenced ```{language} code block" if language else "one fenced code block"
    lines.append(
        f"When you are done, reply without calling a tool: the final code in {block}, then a short explanation."
    )
    return "\n".join(lines)


def _normalise_calls(message: dict[str, Any]) -> list[dict[str, Any]]:
    """The tool calls of an answer, each with an id, a name and JSON text arguments (made so in the message)."""
    calls = [call for call in message.get("tool_calls") or [] if isinstance(call, dict)]
    for call in calls:
        function = call.get("function") if isinstance(call.get("function"), dict) else {}
        call["id"] = call.get("id") or f"call_{uuid.uuid4().hex[:24]}"
        call["type"] = "function"
        call["function"] = {
            "name": function.get("name") if isinstance(function.get("name"), str) else "",
            "arguments": function.get("arguments") if isinstance(function.get("arguments"), str) else "",
        }
    if calls:
        message["tool_calls"] = calls
    else:
        message.pop("tool_calls", None)
    return calls


def _repair(thread: Thread) -> None:
    """Give every tool call of the last answer a result, but the question still waiting for the human.

    A run that died between an answer and the results of its calls left them unanswered; models refuse a
    conversation like that, so they are answered as interrupted.
    """
    last = max((i for i, m in enumerate(thread.messages) if m.get("role") == "assistant"), default=None)
    if last is None:
        return
    answered = {m.get("tool_call_id") for m in thread.messages[last + 1 :] if m.get("role") == "tool"}
    waiting = thread.human_input.tool_call_id if thread.human_input else None
    for call in thread.messages[last].get("tool_calls") or []:
        if call["id"] not in answered and call["id"] != waiting:
            name = call["function"]["name"]
            thread.messages.append({"role": "tool", "tool_call_id": call["id"], "name": name, "content": INTERRUPTED})


def _page_token(summary: ThreadSummary) -> str:
    return base64.urlsafe_b64encode(orjson.dumps([summary.created_at, summary.thread_id])).decode().rstrip("=")


def _after(page_token: str) -> tuple[float, str] | None:
    if not page_token:
        return None
    try:
        created, thread_id = orjson.loads(base64.urlsafe_b64decode(page_token + "=" * (-len(page_token) % 4)))
        return float(created), str(thread_id)
    except (ValueError, TypeError, binascii.Error, orjson.JSONDecodeError):
        raise ServiceError(
            ErrorKind.INVALID_ARGUMENT, "page_token is not one this service gave", code="invalid_page_token"
        ) from None


class CodeAgent:
    def __init__(
        self,
        store: ThreadStore,
        model: ModelClient,
        workspaces: WorkspacePolicy,
        limits: AgentLimits,
        model_name: str = "auto",
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        metrics: AgentMetrics | None = None,
    ) -> None:
        self.store = store
        self._metrics = metrics or NoMetrics()
        self._model = model
        self._workspaces = workspaces
        self.limits = limits
        self._model_name = model_name
        self._clock = clock
        self._monotonic = monotonic
        self._locks = ThreadLocks()
        self.replica = uuid.uuid4().hex[:12]

    # --- the API ----------------------------------------------------------------------------------------
    async def invoke(
        self,
        request: InvokeRequest,
        client_id: str | None = None,
        time_left_s: float | None = None,
        *,
        admin: bool = False,
    ) -> Thread:
        """Run the agent on the request; `admin`: the caller's key is an admin key (its workspace roots apply)."""
        check_sizes(request, self.limits.max_instruction_chars, self.limits.max_context_chars)
        if not request.instruction.strip():
            raise ServiceError(
                ErrorKind.INVALID_ARGUMENT,
                "instruction must not be empty",
                code="invalid_instruction",
                param="instruction",
            )
        check_model_quality(request.model_quality)
        thread_id = check_thread_id(request.thread_id) if request.thread_id else f"thread_{uuid.uuid4().hex[:24]}"
        workspace = self._workspace(request.project_directory, Caller(client_id, admin))
        deadline = self._deadline(time_left_s)
        async with self._holding(thread_id, deadline):
            thread = await self.store.load(thread_id)
            if thread is None:
                now = self._clock()
                thread = Thread(thread_id, client_id, created_at=now, updated_at=now)
            elif not thread.visible_to(client_id):
                raise thread_not_found(thread_id)
            elif thread.status == AgentStatus.REQUIRES_HUMAN_INPUT and thread.human_input is not None:
                raise ServiceError(
                    ErrorKind.FAILED_PRECONDITION,
                    f"Thread {thread_id!r} is waiting for the answer to its question (tool_call_id "
                    f"{thread.human_input.tool_call_id!r}); answer it with POST /v1/agents/resume.",
                    code="thread_waiting_for_human",
                    param="thread_id",
                    http_status=409,
                )
            _repair(thread)
            thread.messages.append({"role": "user", "content": user_message(request)})
            thread.request_params = request.params()
            self._begin(thread)
            await self._save(thread)
            await self._run(thread, workspace, deadline, client_id)
        return thread

    async def resume(
        self,
        request: ResumeRequest,
        client_id: str | None = None,
        time_left_s: float | None = None,
        *,
        admin: bool = False,
    ) -> Thread:
        check_length("human_response", request.human_response, self.limits.max_instruction_chars)
        thread_id = check_thread_id(request.thread_id)
        if not request.tool_call_id:
            raise ServiceError(
                ErrorKind.INVALID_ARGUMENT,
                "tool_call_id is required",
                code="invalid_tool_call_id",
                param="tool_call_id",
            )
        deadline = self._deadline(time_left_s)
        async with self._holding(thread_id, deadline):
            thread = await self.store.load(thread_id)
            if thread is None or not thread.visible_to(client_id):
                raise thread_not_found(thread_id)
            waiting = thread.human_input
            if thread.status != AgentStatus.REQUIRES_HUMAN_INPUT or waiting is None:
                raise ServiceError(
                    ErrorKind.FAILED_PRECONDITION,
                    f"Thread {thread_id!r} is not waiting for human input (its status is {thread.status.value!r}).",
                    code="thread_not_waiting",
                    param="thread_id",
                    http_status=409,
                )
            if request.tool_call_id != waiting.tool_call_id:
                raise ServiceError(
                    ErrorKind.INVALID_ARGUMENT,
                    f"Thread {thread_id!r} waits for the answer to tool_call_id {waiting.tool_call_id!r}, "
                    f"not {request.tool_call_id!r}.",
                    code="tool_call_id_mismatch",
                    param="tool_call_id",
                )
            workspace = self._workspace(thread.request_params.get("project_directory"), Caller(client_id, admin))
            thread.messages.append(
                {
                    "role": "tool",
                    "tool_call_id": waiting.tool_call_id,
                    "name": ASK_HUMAN,
                    "content": request.human_response,
                }
            )
            self._begin(thread)
            await self._save(thread)
            await self._run(thread, workspace, deadline, client_id)
        return thread

    async def thread(self, thread_id: str, client_id: str | None = None) -> Thread:
        thread = await self.store.load(check_thread_id(thread_id))
        if thread is None or not thread.visible_to(client_id):
            raise thread_not_found(thread_id)
        return thread

    async def threads(
        self, limit: int | None = None, page_token: str = "", client_id: str | None = None
    ) -> tuple[list[ThreadSummary], str]:
        """A page of the caller's threads, newest first: `limit` (1 to MAX_PAGE, default DEFAULT_PAGE) of them."""
        if limit is None:
            limit = DEFAULT_PAGE
        elif not 1 <= limit <= MAX_PAGE:
            raise ServiceError(
                ErrorKind.INVALID_ARGUMENT,
                f"limit must be between 1 and {MAX_PAGE}, got {limit}",
                code="invalid_limit",
                param="limit",
            )
        found = await self.store.list(limit + 1, _after(page_token), client_id)
        page = found[:limit]
        return page, _page_token(page[-1]) if len(found) > limit else ""

    async def delete(self, thread_id: str, client_id: str | None = None) -> bool:
        """Forget a thread; 409 while a run holds it, 404 when there is none."""
        check_thread_id(thread_id)
        async with self._holding(thread_id, self._monotonic()) as holder:
            thread = await self.store.load(thread_id)
            if thread is None or not thread.visible_to(client_id):
                raise thread_not_found(thread_id)
            return await self.store.delete(thread_id, holder)

    # --- holding a thread ---------------------------------------------------------------------------------
    def _deadline(self, time_left_s: float | None) -> float:
        allowed = self.limits.run_deadline_s
        return self._monotonic() + (allowed if time_left_s is None else min(allowed, time_left_s))

    @contextlib.asynccontextmanager
    async def _holding(self, thread_id: str, deadline: float) -> AsyncIterator[str]:
        """This run alone holds the thread: in this process (a lock) and among replicas (the store's lease)."""
        async with self._locks.hold(thread_id, max(0.0, deadline - self._monotonic())):
            async with self._leased(thread_id, deadline) as holder:
                yield holder

    @contextlib.asynccontextmanager
    async def _leased(self, thread_id: str, deadline: float) -> AsyncIterator[str]:
        """The store's lease on the thread, for this run only: another replica's run makes it wait."""
        holder = f"{self.replica}/{uuid.uuid4().hex[:12]}"
        lease_s = self.limits.run_deadline_s + self.limits.lease_margin_s
        tries = 0
        while not await self.store.claim(thread_id, holder, self._clock() + lease_s, self._clock()):
            tries += 1
            pause = _CLAIM_BACKOFF.delay(tries)
            if self._monotonic() + pause > deadline:
                raise thread_busy(thread_id)
            await asyncio.sleep(pause)  # look again, less often each time, until the deadline
        try:
            yield holder
        finally:
            try:
                await asyncio.shield(self.store.release(thread_id, holder))
            except Exception:  # the lease runs out by itself
                log.exception("could not release the lease of thread %s", thread_id)

    def _workspace(self, project_directory: str | None, caller: Caller) -> Workspace | None:
        return self._workspaces.open(project_directory, caller) if project_directory else None

    async def _save(self, thread: Thread) -> None:
        thread.updated_at = self._clock()
        try:
            await self.store.save(thread)
        except StaleThread:
            raise ServiceError(
                ErrorKind.FAILED_PRECONDITION,
                f"Thread {thread.thread_id!r} was changed by another run meanwhile; this run stopped.",
                code="thread_changed",
                http_status=409,
            ) from None

    # --- a run ---------------------------------------------------------------------------------------------
    @staticmethod
    def _begin(thread: Thread) -> None:
        thread.status = AgentStatus.RUNNING
        thread.human_input = None
        thread.generated_code = thread.explanation = thread.error_details = None

    async def _run(self, thread: Thread, workspace: Workspace | None, deadline: float, client_id: str | None) -> None:
        attributes = {"llmagg.thread_id": thread.thread_id}
        if client_id:
            attributes["llmagg.client_id"] = client_id
        started = self._monotonic()
        with tracer.start_as_current_span("agent.run", attributes=attributes, record_exception=False) as span:
            try:
                steps = await self._loop(thread, workspace, deadline, client_id)
            except asyncio.CancelledError:
                self._stop(thread, "The run was cancelled before it finished (the caller left or the service stopped).")
                self._metrics.run_ended("cancelled", 0, self._monotonic() - started)
                with contextlib.suppress(Exception):
                    await asyncio.shield(self._save(thread))
                raise
            span.set_attributes({"llmagg.agent_status": thread.status.value, "llmagg.steps": steps})
            self._metrics.run_ended(thread.status.value, steps, self._monotonic() - started)
            log.info(
                "agent run ended: %s after %d model calls",
                thread.status.value,
                steps,
                extra=log_fields(thread_id=thread.thread_id, agent_status=thread.status.value, client_id=client_id),
            )

    def _stop(self, thread: Thread, reason: str) -> None:
        thread.status = AgentStatus.ERROR
        thread.error_details = reason

    async def _loop(self, thread: Thread, workspace: Workspace | None, deadline: float, client_id: str | None) -> int:
        tools = tools_for_run(workspace is not None)
        language = thread.request_params.get("language")
        steps = 0
        while True:
            if steps >= self.limits.max_steps:
                self._stop(
                    thread,
                    f"The agent stopped after {steps} model calls without a final answer (the step limit, "
                    "AGENT_MAX_STEPS).",
                )
                break
            remaining = deadline - self._monotonic()
            try:
                if remaining <= 0:
                    raise TimeoutError
                reply = await self._ask(thread, tools, language, remaining, steps + 1, client_id)
            except TimeoutError:
                self._stop(thread, f"The agent ran out of time after {steps} model calls (its deadline).")
                break
            except ServiceError as failure:
                self._stop(thread, f"A model call failed: {failure.message} ({failure.code})")
                break
            steps += 1
            thread.model_used = reply.model_used
            thread.messages.append(reply.message)
            calls = _normalise_calls(reply.message)
            if not calls:
                answer = extract(reply.message.get("content"), language)
                thread.status = AgentStatus.COMPLETED
                thread.generated_code, thread.explanation = answer.generated_code, answer.explanation
                break
            await self._save(thread)
            question = await self._carry_out(thread, calls, tools, workspace)
            if question is not None:
                thread.status = AgentStatus.REQUIRES_HUMAN_INPUT
                thread.human_input = question
                content = reply.message.get("content")
                thread.explanation = content.strip() if isinstance(content, str) and content.strip() else None
                break
        await self._save(thread)
        return steps

    async def _ask(
        self,
        thread: Thread,
        tools: ToolRegistry,
        language: str | None,
        remaining: float,
        step: int,
        client_id: str | None,
    ) -> ModelReply:
        params = thread.request_params
        request = ModelRequest(
            messages=[{"role": "system", "content": system_prompt(tools, language)}, *thread.messages],
            tools=tools.openai(),
            model=self._model_name,
            provider=params.get("provider"),
            model_quality=params.get("model_quality"),
            timeout_s=remaining,
            client_id=client_id,
        )
        with tracer.start_as_current_span(
            "agent.model_call", attributes={"llmagg.step": step}, record_exception=False
        ) as span:
            started = self._monotonic()
            try:
                async with asyncio.timeout(remaining):
                    reply = await self._model.complete(request)
            except (ServiceError, TimeoutError) as failure:
                reason = failure.code if isinstance(failure, ServiceError) else "deadline"
                span.set_status(trace.Status(trace.StatusCode.ERROR, reason))
                self._metrics.model_call_ended(
                    "failed" if reason != "deadline" else reason, self._monotonic() - started
                )
                raise
            self._metrics.model_call_ended("ok", self._monotonic() - started)
            span.set_attributes(
                {"llmagg.model_used": reply.model_used, "llmagg.tool_calls": len(reply.message.get("tool_calls") or [])}
            )
            return reply

    async def _carry_out(
        self, thread: Thread, calls: list[dict[str, Any]], tools: ToolRegistry, workspace: Workspace | None
    ) -> HumanInput | None:
        """Run each call in order and append its result; the question to the human, if one was asked."""
        question: HumanInput | None = None
        for call in calls:
            name, arguments = call["function"]["name"], call["function"]["arguments"]
            with tracer.start_as_current_span(
                "agent.tool_call", attributes={"llmagg.tool": name, "llmagg.tool_call_id": call["id"]}
            ) as span:
                if name == ASK_HUMAN and name in tools:
                    checked = tools.check(name, arguments)
                    if isinstance(checked, ToolOutcome):
                        outcome = checked
                    elif question is not None:
                        outcome = ToolOutcome(ONE_QUESTION, "invalid")
                    else:
                        question = HumanInput(call["id"], checked[1]["question"])
                        span.set_attribute("llmagg.outcome", "asked")
                        self._metrics.tool_call_ended(name, "asked")
                        continue
                else:
                    outcome = await tools.run(name, arguments, workspace)
                span.set_attribute("llmagg.outcome", outcome.status)
                self._metrics.tool_call_ended(name if name in BUILTIN_TOOLS else "other", outcome.status)
            thread.messages.append(
                {"role": "tool", "tool_call_id": call["id"], "name": name, "content": outcome.content}
            )
            await self._save(thread)
        return question
