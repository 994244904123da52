import json
import logging

import pytest

from llmagg.common.logging import JsonFormatter, log_fields, scrub
from llmagg.common.secrets import Secret, redact


@pytest.mark.parametrize(
    "secret",
    [
        "sk-proj-FAKE0123456",
        "gsk_FAKE0123456789",
        "hvs.FAKE01234567",
        "AIzaSyA-abcdefghijklmnopqrstuvwxyz123",
        "nvapi-abcdefghijklmnopqrstuvwxyz",
    ],
)
def test_known_key_shapes_are_scrubbed(secret):
    assert secret not in scrub(f"upstream said: invalid key {secret} (check it)")


def test_bearer_tokens_are_scrubbed_whatever_their_shape():
    assert scrub("Authorization: Bearer abc.def-123") == "Authorization: Bearer [redacted]"


def test_passwords_in_urls_are_scrubbed():
    assert (
        scrub("cannot reach redis://:hunter2-pw@127.0.0.1:6379/0")
        == "cannot reach redis://:[redacted]@127.0.0.1:6379/0"
    )
    assert scrub("postgresql://llmagg:s3cr3t@db/ledger") == "postgresql://llmagg:[redacted]@db/ledger"


def test_ordinary_text_is_left_alone():
    text = "provider groq model llama-3.3-70b-versatile account groq-1 rate limited for 12s"
    assert scrub(text) == text


def test_records_are_one_json_object_with_fields_and_no_secrets():
    record = logging.LogRecord("router", logging.WARNING, __file__, 1, "key %s failed", ("sk-live-abcdefghijkl",), None)
    record.__dict__.update(log_fields(provider="groq", detail="Bearer sk-live-abcdefghijkl"))
    line = JsonFormatter("router").format(record)
    entry = json.loads(line)
    assert entry["service"] == "router" and entry["level"] == "warning" and entry["provider"] == "groq"
    assert "sk-live-abcdefghijkl" not in line


def test_every_key_this_process_holds_is_scrubbed_whatever_its_shape():
    odd_shape = "Zq81FAKEmistralShaped0123456789ab"  # 32 characters, no known prefix
    Secret(odd_shape)
    assert (
        scrub(f"invalid key {odd_shape}; json {{'k': '{odd_shape}'}}")
        == "invalid key [redacted]; json {'k': '[redacted]'}"
    )
    assert redact("short words stay") == "short words stay"
