"""No key comes back through logprobs: the entries spell the text again, token by token (and byte by byte), and
their alternatives could complete a key the text began."""

from __future__ import annotations

import json

from llmagg_router.domain.key_redaction import KeyRedactor
from llmagg_router.domain.logprob_redaction import without_keys

from .test_key_redaction import KEY, REDACTED, content, joined, passed_on


def entry(token: str, logprob: float = -0.5, spelt: bytes | None = None, alternatives: list | None = None) -> dict:
    if alternatives is None:
        alternatives = [{"token": token, "logprob": logprob, "bytes": list(token.encode())}]
    return {"token": token, "logprob": logprob, "bytes": list(token.encode() if spelt is None else spelt),
            "top_logprobs": alternatives}  # fmt: skip


def tokens_of(chunks: list[dict], index: int = 0, name: str = "content") -> list[str]:
    return [
        e["token"]
        for chunk in chunks
        for choice in chunk["choices"]
        if choice.get("index", 0) == index
        for e in (choice.get("logprobs") or {}).get(name) or []
    ]


def redacted(entries: list[dict]) -> list[dict]:
    return without_keys(KeyRedactor([KEY]), entries)


# --- whole answers ------------------------------------------------------------------------------------


def test_a_run_of_entries_spelling_the_key_becomes_one_redacted_entry_in_a_whole_answer():
    pieces = ["say ", KEY[:6], KEY[6:15], KEY[15:] + " ok", "!"]
    answer = {"choices": [{"index": 0, "message": {"content": "".join(pieces)},
                           "logprobs": {"content": [entry(p, -0.25) for p in pieces], "refusal": None}}]}  # fmt: skip
    logprobs = KeyRedactor([KEY]).answer(answer)["choices"][0]["logprobs"]["content"]
    assert [e["token"] for e in logprobs] == ["say ", f"{REDACTED} ok", "!"]
    assert logprobs[1] == {"token": f"{REDACTED} ok", "logprob": -0.75, "bytes": list(f"{REDACTED} ok".encode()),
                           "top_logprobs": []}  # fmt: skip
    assert logprobs[0] == entry("say ", -0.25) and KEY[:6] not in json.dumps(answer)


def test_the_key_twice_and_the_refusal_list_are_redacted_too():
    pieces = [KEY[:9], KEY[9:] + " and ", KEY]
    answer = {"choices": [{"index": 0, "logprobs": {"refusal": [entry(p) for p in pieces]}}]}
    assert [e["token"] for e in KeyRedactor([KEY]).answer(answer)["choices"][0]["logprobs"]["refusal"]] == [
        f"{REDACTED} and {REDACTED}"
    ]


def test_entries_whose_bytes_alone_spell_the_key_are_redacted():
    entries = [entry("a", spelt=KEY[:10].encode()), entry("b", spelt=KEY[10:].encode()), entry("c")]
    assert [e["token"] for e in redacted(entries)] == [REDACTED, "c"]


def test_a_runs_bytes_keep_the_bytes_around_the_key_even_a_character_cut_between_tokens():
    cut = "é".encode()  # two bytes, one in each token (OpenAI writes such tokens as "bytes:\\xc3")
    entries = [entry("bytes:\\xc3", spelt=cut[:1]), entry("bytes:\\xa9" + KEY, spelt=cut[1:] + KEY.encode())]
    first, merged = redacted(entries)
    assert first == entries[0] and merged["token"] == f"bytes:\\xa9{REDACTED}"
    assert bytes(first["bytes"] + merged["bytes"]).decode() == f"é{REDACTED}"  # not the escape's text


def test_a_runs_logprob_is_the_sum_of_those_it_has():
    entries = [entry(KEY[:10], -1.0), {"token": KEY[10:], "logprob": None}]
    assert redacted(entries)[0]["logprob"] == -1.0


def test_an_alternative_that_completes_the_key_after_the_text_before_it_is_redacted():
    alternatives = [{"token": "-test-0123456789", "logprob": -2.0, "bytes": None}, {"token": "ly", "logprob": -3.0}]
    entries = [entry("say"), entry(" sk-redact"), entry("ed", alternatives=alternatives)]
    out = redacted(entries)
    assert [e["token"] for e in out] == ["say", " sk-redact", "ed"]  # the text holds no key
    assert out[2]["top_logprobs"] == [
        {"token": REDACTED, "logprob": -2.0, "bytes": list(REDACTED.encode())},
        {"token": "ly", "logprob": -3.0},
    ]


def test_an_alternative_whose_bytes_spell_the_key_is_redacted_and_bytes_that_are_not_bytes_are_dropped():
    spelling = {"token": "x", "logprob": -1.0, "bytes": list(KEY.encode())}
    odd = {"token": "y", "logprob": -1.5, "bytes": [float(b) for b in KEY.encode()]}
    out = redacted([entry("hi", alternatives=[spelling, odd]), entry("!", spelt=b"")])
    assert out[0]["top_logprobs"] == [
        {"token": REDACTED, "logprob": -1.0, "bytes": list(REDACTED.encode())},
        {"token": "y", "logprob": -1.5, "bytes": None},
    ]
    out = redacted([{"token": "z", "logprob": -1.0, "bytes": ["115"]}])
    assert out == [{"token": "z", "logprob": -1.0, "bytes": None}]


# --- streams ------------------------------------------------------------------------------------------


def stream_of(*pieces: str, index: int = 0) -> list[dict]:
    chunks = [{"id": "c1", "choices": [{"index": index, "delta": {"content": p}, "finish_reason": None,
                                        "logprobs": {"content": [entry(p)]}}]} for p in pieces]  # fmt: skip
    return [*chunks, content("", "stop", index)]


def test_entries_of_a_key_cut_across_chunks_are_held_and_redacted():
    out = passed_on(*stream_of("say s", "k-redact-", "test-0123456789", " ok"))
    assert KEY[:5] not in json.dumps(out) and "sk-" not in json.dumps(out)
    assert "".join(tokens_of(out)) == joined(out, "content") == f"say {REDACTED} ok"


def test_entries_held_back_that_start_no_key_go_on_unchanged_and_in_order():
    out = passed_on(*stream_of("a s", "ky", " s"))
    assert tokens_of(out) == ["a s", "ky", " s"]  # " s" held until the finishing chunk, then before it
    assert out[-2]["choices"][0]["logprobs"]["content"] == [entry(" s")] and out[-1]["choices"][0]["finish_reason"]


def test_choices_hold_their_entries_apart():
    first, second = stream_of("one s", "k-redact-test-0123456789"), stream_of("two s", "o", index=1)
    out = passed_on(first[0], second[0], first[1], second[1], second[2], first[2])
    assert "".join(tokens_of(out, 0)) == f"one {REDACTED}" and tokens_of(out, 1) == ["two s", "o"]


def test_an_alternative_in_a_later_chunk_that_completes_a_key_begun_in_a_held_one_is_redacted():
    alternatives = [{"token": "-test-0123456789", "logprob": -2.0}]
    ending = {"id": "c1", "choices": [{"index": 0, "delta": {"content": "ing"}, "finish_reason": None,
                                       "logprobs": {"content": [entry("ing", alternatives=alternatives)]}}]}  # fmt: skip
    out = passed_on(*stream_of("sk-redact")[:1], ending, content("", "stop"))
    assert "".join(tokens_of(out)) == "sk-redacting"
    assert [e["top_logprobs"] for c in out for ch in c["choices"] for e in (ch.get("logprobs") or {}).get("content", [])
            if e["token"] == "ing"] == [[{"token": REDACTED, "logprob": -2.0, "bytes": list(REDACTED.encode())}]]  # fmt: skip
