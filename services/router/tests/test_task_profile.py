"""The task profile: what kind of task a request is, read from the request already parsed."""

from __future__ import annotations

import pytest

from llmagg_router.domain.request import parse_request
from llmagg_router.domain.task_profile import profile_of
from llmagg_router.domain.upstream import Operation


def profile(messages, **fields):
    return profile_of(parse_request({"model": "auto", "messages": messages, **fields}, Operation.CHAT))


def user(text):
    return [{"role": "user", "content": text}]


@pytest.mark.parametrize(
    ("messages", "fields", "kind"),
    [
        (user("Hi there, how are you today?"), {}, "chat"),
        (user("Write a Python function that reverses a list.\n```python\ndef f(x):\n```"), {}, "code"),
        (user("def add(a, b):\n    return a + b\nWhy does this fail?"), {}, "code"),
        (user("What is 17 * 23 + 4?"), {}, "math"),
        (user("Solve the equation 3x + 2 = 11 for x."), {}, "math"),
        (user("List three fruits."), {"response_format": {"type": "json_object"}}, "json"),
        (user("Reply in JSON with the keys name and age."), {}, "json"),
        (
            user("What's the weather in Paris?"),
            {"tools": [{"type": "function", "function": {"name": "weather", "parameters": {}}}]},
            "tools",
        ),
        (user("word " * 40000), {}, "long"),
    ],
)
def test_the_kind_of_task_is_read_from_the_request(messages, fields, kind):
    assert profile(messages, **fields).kind == kind


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("Bonjour, comment vas-tu ?", "latin"),
        ("Привет, как дела? Расскажи о погоде.", "cyrillic"),  # noqa: RUF001
        ("你好，今天天气怎么样？", "cjk"),  # noqa: RUF001
        ("مرحبا كيف حالك اليوم", "arabic"),
    ],
)
def test_the_script_of_the_last_user_message_is_the_language(text, language):
    assert profile(user(text)).language == language


def test_the_key_joins_kind_and_a_non_latin_language():
    assert profile(user("What is 2 + 2?")).key == "math"
    assert profile(user("Сколько будет 2 + 2?")).key == "math/cyrillic"


def test_only_the_last_user_message_decides_and_parts_are_read():
    messages = [
        {"role": "system", "content": "You are a Python expert. def f(): pass"},
        {"role": "user", "content": [{"type": "text", "text": "Tell me a joke."}]},
    ]
    assert profile(messages).kind == "chat"


def test_embeddings_have_their_own_kind():
    request = parse_request({"model": "auto", "input": "x"}, Operation.EMBEDDINGS)
    assert profile_of(request).key == "embedding"
