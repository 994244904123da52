"""Structured (one JSON object per line) logging with secret scrubbing as a last line of defence."""

from __future__ import annotations

import contextvars
import logging
import re
import sys
import time

import orjson

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


def scrub(text: str) -> str:
    """`text` without any key this process holds, nor anything shaped like a key or a URL password."""
    return redact(_SECRET_PATTERNS.sub(lambda m: (m.group(1) or m.group(2) or "") + REDACTED, text))


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self._service = service

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "service": self._service,
            "logger": record.name,
            "msg": scrub(record.getMessage()),
        }
        current_request = request_id.get()
        if current_request:
            entry["request_id"] = current_request
        current_client = client_id.get()
        if current_client:
            entry["client_id"] = current_client
        fields = getattr(record, "fields", None)
        if fields:
            entry.update({k: scrub(v) if isinstance(v, str) else v for k, v in fields.items()})
        if record.exc_info:
            entry["exc"] = scrub(self.formatException(record.exc_info))
        return orjson.dumps(entry, default=str).decode()


def configure_logging(service: str, level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())


def log_fields(**fields: object) -> dict[str, dict[str, object]]:
    """`logger.info("msg", extra=log_fields(provider="groq"))` adds structured fields."""
    return {"fields": fields}
