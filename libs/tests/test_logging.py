import json
import logging

import pytest

from llmagg.common.logging import _SECRET_PATTERNS, JsonFormatter, log_fields, scrub
from llmagg.common.secrets import REDACTED, Secret, redact


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


@pytest.mark.parametrize(
    "text",
    [
        "\u017fk-live-abcdefghijkl",  # a long s, which the case-insensitive pattern takes for an s
        "see SK_live-ABCDEFGHIJKL there",
        "BEARER   token.value",
        "x hVs.abcdefghijk y",
        "aizaSyA-abcdefghijklmnopqrstuvwxyz123",
        "https://user:pa55word@host/path",
        "chat sim-small -> sim/sim-small via bench-1: 1 attempt, 5+16 tokens, 3 ms",
    ],
)
def test_scrub_looks_at_every_text_the_key_shapes_could_match(text):
    """scrub skips the shape pattern for texts that cannot match it: exactly those, nothing that could."""
    assert scrub(text) == redact(_SECRET_PATTERNS.sub(lambda m: (m.group(1) or m.group(2) or "") + REDACTED, text))


def test_many_keys_held_are_each_redacted():
    held = [f"Many{n:02d}FAKEkeysHeldAtOnce0123" for n in range(40)]
    for value in held:
        Secret(value)
    assert redact(" ".join(held)) == " ".join([REDACTED] * 40)
    assert redact(f"one {held[7]}x") == f"one {REDACTED}x"


def test_the_timestamp_is_the_records_time_in_utc_to_the_millisecond():
    formatter = JsonFormatter("router")
    stamps = []
    for created in (1_700_000_000.25, 1_700_000_000.999, 1_700_000_061.5):
        record = logging.LogRecord("router", logging.INFO, __file__, 1, "m", (), None)
        record.created, record.msecs = created, (created - int(created)) * 1000
        stamps.append(json.loads(formatter.format(record))["ts"])
    assert stamps == ["2023-11-14T22:13:20.250Z", "2023-11-14T22:13:20.999Z", "2023-11-14T22:14:21.500Z"]
