"""`llmagg-agent "instruction" --project DIR`: run the coding agent on a folder from the terminal.

It talks to the gateway's REST API (LLMAGG_URL, default http://127.0.0.1:8000; a client key in
LLMAGG_API_KEY when the gateway checks them), shows each step while the agent works (the model's tool
calls and their results, read from the thread as the agent saves it), asks the agent's questions in the
terminal and answers them with /v1/agents/resume, then prints the final code (stdout) and explanation.
Progress and questions go to stderr, so `llmagg-agent ... > code.py` keeps only the code.

Exit codes (those of `llmagg`): 0 completed, 1 the agent stopped with an error or the gateway refused,
2 usage, 3 not found, 4 conflict (the thread waits for an answer or is busy), 5 not allowed (no client
key, or a project outside the agent's workspace roots), 6 the gateway is unreachable, 7 no answer to
the agent's question (stdin closed).

`llmagg agent ...` is the same command inside the `llmagg` CLI (llmagg_cli.agent registers it).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

DEFAULT_URL = "http://127.0.0.1:8000"
POLL_S = 0.25  # how often progress is looked up while a run goes on
OK, FAILED, USAGE, NOT_FOUND, CONFLICT, NOT_ALLOWED, UNREACHABLE, NO_ANSWER = 0, 1, 2, 3, 4, 5, 6, 7
_STATUS_CODES = {401: NOT_ALLOWED, 403: NOT_ALLOWED, 404: NOT_FOUND, 409: CONFLICT, 502: UNREACHABLE, 503: UNREACHABLE}


class CliError(Exception):
    def __init__(self, message: str, code: int = FAILED) -> None:
        super().__init__(message)
        self.message, self.code = message, code


@dataclass
class Gateway:
    url: str
    api_key: str | None = None
    timeout_s: float = 900.0

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        request = urllib.request.Request(
            self.url.rstrip("/") + path,
            data=json.dumps(body).encode() if body is not None else None,
            method=method,
            headers=headers,
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                return json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as refused:
            try:
                detail = json.loads(refused.read())["error"]
                message = f"{detail.get('message')} ({detail.get('code')})"
            except (ValueError, KeyError, TypeError):
                message = f"HTTP {refused.code}"
            if refused.code == 401:
                message += " -- set LLMAGG_API_KEY to a client key (`llmagg keys create --name me` makes one)"
            raise CliError(message, _STATUS_CODES.get(refused.code, FAILED)) from None
        except (urllib.error.URLError, OSError) as problem:
            reason = getattr(problem, "reason", problem)
            raise CliError(
                f"cannot reach the gateway at {self.url}: {reason} (is `make run` up?)", UNREACHABLE
            ) from None

    def thread(self, thread_id: str) -> dict[str, Any] | None:
        try:
            return self.call("GET", f"/v1/agents/threads/{urllib.parse.quote(thread_id, safe='')}")
        except CliError as error:
            if error.code == NOT_FOUND:
                return None
            raise


def _short(value: Any, limit: int = 60) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    text = text.replace("\n", "\\n")
    return text if len(text) <= limit else f"{text[: limit - 3]}..."


def describe_call(call: dict[str, Any]) -> str:
    function = call.get("function") or {}
    try:
        arguments = json.loads(function.get("arguments") or "{}")
        shown = ", ".join(f"{key}={_short(value)}" for key, value in arguments.items())
    except (ValueError, AttributeError):
        shown = _short(function.get("arguments") or "")
    return f"{function.get('name')}({shown})"


def describe_result(content: str) -> str:
    if content.startswith("Error:"):
        return f"failed: {_short(content[len('Error:') :].strip(), 120)}"
    lines = content.count("\n") + (0 if content.endswith("\n") or not content else 1)
    first = content.splitlines()[0] if content else ""
    return f"{lines} line{'s' if lines != 1 else ''}: {_short(first)}"


@dataclass
class Progress:
    """Prints the thread's new messages: each model answer as a step, each tool call and its result."""

    out: TextIO
    shown: int = 0
    steps: int = 0
    asked: set[str] = field(default_factory=set)

    def show(self, messages: list[dict[str, Any]]) -> None:
        for message in messages[self.shown :]:
            role = message.get("role")
            if role == "assistant":
                self.steps += 1
                calls = message.get("tool_calls") or []
                note = f" {_short(message['content'], 100)}" if message.get("content") and calls else ""
                print(f"[step {self.steps}] model answered{':' if calls else ''}{note}", file=self.out)
                for call in calls:
                    print(f"  -> {describe_call(call)}", file=self.out)
            elif role == "tool":
                print(f"  <- {message.get('name')}: {describe_result(message.get('content') or '')}", file=self.out)
        self.out.flush()
        self.shown = max(self.shown, len(messages))


def _watch(gateway: Gateway, thread_id: str, progress: Progress, method: str, path: str, body: dict) -> dict:
    """Send the run's request; while it goes on, show the thread's progress; then its last steps."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        running = pool.submit(gateway.call, method, path, body)
        while not concurrent.futures.wait([running], timeout=POLL_S).done:
            thread = gateway.thread(thread_id)
            if thread is not None:
                progress.show(thread.get("messages") or [])
        response = running.result()
    thread = gateway.thread(thread_id)
    if thread is not None:
        progress.show(thread.get("messages") or [])
    return response


def _ask(question: str, answers: TextIO, out: TextIO) -> str:
    print(f"\nThe agent asks: {question}\nYour answer: ", end="", file=out, flush=True)
    line = answers.readline()
    if not line:
        raise CliError("no answer (stdin is closed)", NO_ANSWER)
    return line.rstrip("\n")


def run(
    args: argparse.Namespace,
    api_key: str | None,
    answers: TextIO = sys.stdin,
    out: TextIO = sys.stdout,
    err: TextIO = sys.stderr,
) -> int:
    """Run the agent as `args` say; the exit code. Raises CliError when the gateway refuses or cannot be reached."""
    gateway = Gateway(args.url, api_key)
    project = Path(args.project).expanduser().resolve() if args.project else None
    if project is not None and not project.is_dir():
        raise CliError(f"--project {args.project} is not a directory", USAGE)
    thread_id = args.thread or f"thread_cli_{uuid.uuid4().hex[:20]}"
    existing = gateway.thread(thread_id)
    progress = Progress(err, shown=len(existing["messages"]) if existing else 0)
    request: dict[str, Any] = {"instruction": args.instruction, "thread_id": thread_id}
    optional = {
        "project_directory": str(project) if project else None,
        "language": args.language,
        "model_quality": args.model_quality,
        "provider": args.provider,
        "context": Path(args.context_file).read_text() if args.context_file else None,
    }
    request.update({key: value for key, value in optional.items() if value is not None})
    print(f"thread {thread_id}" + (f", project {project}" if project else ""), file=err, flush=True)
    response = _watch(gateway, thread_id, progress, "POST", "/v1/agents/code/invoke", request)
    while response.get("agent_status") == "requires_human_input":
        asked = response["human_input_request"]
        answer = _ask(asked["question_for_human"], answers, err)
        resume = {"thread_id": thread_id, "tool_call_id": asked["tool_call_id"], "human_response": answer}
        response = _watch(gateway, thread_id, progress, "POST", "/v1/agents/resume", resume)
    if args.json:
        print(json.dumps(response, indent=2), file=out)
    if response.get("agent_status") != "completed":
        print(f"The agent stopped: {response.get('error_details') or response.get('agent_status')}", file=err)
        return FAILED
    if not args.json:
        print(
            f"\ndone in {progress.steps} step{'s' if progress.steps != 1 else ''} ({response.get('model_used')})",
            file=err,
        )
        if response.get("generated_code"):
            print(response["generated_code"], file=out)
        if response.get("explanation"):
            print(f"\n{response['explanation']}", file=err)
    return OK


def add_arguments(parser: argparse.ArgumentParser, *, common: bool = True) -> None:
    """The command's arguments; `common=False` leaves out --url and --json (`llmagg` has its own)."""
    parser.add_argument("instruction", help="what the agent should do")
    parser.add_argument("--project", metavar="DIR", help="the project folder its file tools work in")
    parser.add_argument("--language", help="the language of the code asked for (python, javascript, ...)")
    parser.add_argument("--model-quality", choices=["fastest", "balanced", "best_quality"])
    parser.add_argument("--provider", help="pin the model calls to one provider id")
    parser.add_argument("--thread", metavar="ID", help="continue this thread (default: a new one)")
    parser.add_argument("--context-file", metavar="FILE", help="a file whose text is sent as context")
    if common:
        parser.add_argument("--url", default=os.environ.get("LLMAGG_URL", DEFAULT_URL), help="the gateway (LLMAGG_URL)")
        parser.add_argument("--json", action="store_true", help="print the final response as JSON")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="llmagg-agent", description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return run(args, os.environ.get("LLMAGG_API_KEY") or None)
    except CliError as error:
        print(f"llmagg-agent: {error.message}", file=sys.stderr)
        return error.code
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
