"""What a run is asked: the README's CodeAgentRequest and ResumeAgentRequest, and the bounds of their fields.

Every field is bounded before anything is stored: `request_params` echoes the request and the thread keeps it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from llmagg.common.errors import ErrorKind, ServiceError

MAX_NAME_CHARS = 256  # language, provider
MAX_PATH_CHARS = 4096  # project_directory (PATH_MAX)


@dataclass(frozen=True)
class InvokeRequest:
    """The README's CodeAgentRequest."""

    instruction: str
    context: str | None = None
    language: str | None = None
    project_directory: str | None = None
    thread_id: str | None = None
    model_quality: str | None = None
    provider: str | None = None

    def params(self) -> dict[str, Any]:
        return {
            "instruction": self.instruction,
            "context": self.context,
            "language": self.language,
            "project_directory": self.project_directory,
            "thread_id": self.thread_id,
            "model_quality": self.model_quality,
            "provider": self.provider,
        }


@dataclass(frozen=True)
class ResumeRequest:
    """The README's ResumeAgentRequest."""

    thread_id: str
    tool_call_id: str
    human_response: str


def check_length(param: str, value: str | None, limit: int) -> None:
    """OpenAI's refusal of a string over its maximum length (400 string_above_max_length)."""
    if value is not None and len(value) > limit:
        raise ServiceError(
            ErrorKind.INVALID_ARGUMENT,
            f"Invalid '{param}': string too long. Expected a string with maximum length {limit}, but got a string "
            f"with length {len(value)} instead.",
            code="string_above_max_length",
            param=param,
        )


def check_sizes(request: InvokeRequest, max_instruction_chars: int, max_context_chars: int) -> None:
    """Every field of an invoke within its bound."""
    check_length("instruction", request.instruction, max_instruction_chars)
    check_length("context", request.context, max_context_chars)
    check_length("project_directory", request.project_directory, MAX_PATH_CHARS)
    for name in ("language", "provider"):
        check_length(name, getattr(request, name), MAX_NAME_CHARS)
