"""Structured (one JSON object per line) logging with secret scrubbing as a last line of defence."""

from __future__ import annotations

import contextvars
import logging
import re
import sys
import time

import orjson
from opentelemetry import trace

from llmagg.common.log_handler import LoopStepHandler
from llmagg.common.secrets import REDACTED, redact

# Shapes of credentials that must never reach a log line even if a message carries one by mistake.
_SECRET_PATTERNS = re.compile(
    r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]+"
    r"|(://[^/\s:@]*:)[^/\s@]+(?=@)"  # the password in scheme://user:password@host
    r"|\b(sk|gsk|csk|xai|hf|nvapi|pk|rk)[-_][A-Za-z0-9_-]{8,}"
    r"|\bhvs\.[A-Za-z0-9_-]{8,}"
    r"|\bAIza[0-9A-Za-z_-]{20,}"
)


# The gateway's x-request-id of the RPC being served, so every log line of a request can be found.
request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
# The authenticated client (its key's public id, or "anonymous") the gateway put in x-llmagg-client-id.
client_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("client_id", default=None)


# What an ASCII text holds (lowercased) wherever _SECRET_PATTERNS matches in it; a text with none of these
# is left as it is without running the (slow) pattern. A non-ASCII text always runs it (case-insensitive
# matching lets some non-ASCII letters stand for ASCII ones).
_SECRET_HINTS = (
    "bearer", "://", "sk-", "sk_", "xai-", "xai_", "hf-", "hf_", "nvapi-", "nvapi_", "pk-", "pk_", "rk-", "rk_",
    "hvs.", "aiza",
)  # fmt: skip


def _may_be_secret_shaped(text: str) -> bool:
    if not text.isascii():
        return True
    lowered = text.lower()
    for hint in _SECRET_HINTS:
        if hint in lowered:
            return True
    return False


def scrub(text: str) -> str:
    """`text` without any key this process holds, nor anything shaped like a key or a URL password."""
    if _may_be_secret_shaped(text):
        text = _SECRET_PATTERNS.sub(lambda m: (m.group(1) or m.group(2) or "") + REDACTED, text)
    return redact(text)


def _trace_ids() -> tuple[str, str] | None:
    """The current span's trace and span ids, when a span is being recorded."""
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return None
    return format(context.trace_id, "032x"), format(context.span_id, "016x")


def capture_context(record: logging.LogRecord) -> None:
    """Keep on the record the request, client and trace ids of the moment it is made (it may be formatted
    later, outside the request's context: `log_handler`)."""
    record.llmagg_context = (request_id.get(), client_id.get(), _trace_ids())


def _context_fields(record: logging.LogRecord) -> dict[str, object]:
    """What every line carries beside its message: request, client and trace ids, and the record's fields."""
    entry: dict[str, object] = {}
    captured = getattr(record, "llmagg_context", None)
    current_request, current_client, ids = captured or (request_id.get(), client_id.get(), _trace_ids())
    if current_request:
        entry["request_id"] = current_request
    if current_client:
        entry["client_id"] = current_client
    if ids:
        entry["trace_id"], entry["span_id"] = ids
    fields = getattr(record, "fields", None)
    if fields:
        entry.update({k: scrub(v) if isinstance(v, str) else v for k, v in fields.items()})
    return entry


class JsonFormatter(logging.Formatter):
    """One JSON object per line: for log collectors (the default)."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self._service = service
        self._second: tuple[int, str] = (-1, "")  # the last second written, as the timestamp writes it

    def format(self, record: logging.LogRecord) -> str:
        second, written = self._second
        if int(record.created) != second:
            second = int(record.created)
            written = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            self._second = (second, written)
        entry = {
            "ts": f"{written}.{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "service": self._service,
            "logger": record.name,
            "msg": scrub(record.getMessage()),
            **_context_fields(record),
        }
        if record.exc_info:
            entry["exc"] = scrub(self.formatException(record.exc_info))
        return orjson.dumps(entry, default=str).decode()


class TextFormatter(logging.Formatter):
    """One line a person can read: time, service, level, message, then the fields as key=value."""

    _SHOWN_IDS = 8  # enough of a trace or request id to find it; the JSON lines carry them whole

    def __init__(self, service: str) -> None:
        super().__init__()
        self._service = service

    def format(self, record: logging.LogRecord) -> str:
        when = time.strftime("%H:%M:%S", time.localtime(record.created)) + f".{int(record.msecs):03d}"
        fields = _context_fields(record)
        for name in ("request_id", "trace_id", "span_id"):
            if isinstance(fields.get(name), str):
                fields[name] = str(fields[name])[: self._SHOWN_IDS]
        fields.pop("span_id", None)
        extra = "  " + " ".join(f"{k}={v}" for k, v in fields.items()) if fields else ""
        level = "" if record.levelno == logging.INFO else f"{record.levelname} "
        line = f"{when} {self._service:<11} {level}{scrub(record.getMessage())}{extra}"
        if record.exc_info:
            line += "\n" + scrub(self.formatException(record.exc_info))
        return line


FORMATTERS = {"json": JsonFormatter, "text": TextFormatter}


def configure_logging(service: str, level: str = "INFO", log_format: str = "json") -> None:
    # Our formatters write none of the thread, process or calling function of a record: not gathered for
    # every line (the logging HOWTO's "Optimization").
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    logging._srcfile = None  # type: ignore[attr-defined]  # no stack walk for the caller per record
    handler = LoopStepHandler(sys.stderr, capture_context)
    handler.setFormatter(FORMATTERS[log_format](service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())


def log_fields(**fields: object) -> dict[str, dict[str, object]]:
    """`logger.info("msg", extra=log_fields(provider="groq"))` adds structured fields."""
    return {"fields": fields}
