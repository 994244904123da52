"""Request values checked at the edge (issue 16, item 2): nonsense is an OpenAI-shaped 400 naming the field,
and a valid but huge answer allowance is clamped for metering, never sent to the ledger whole."""

import pytest

from llmagg.common.errors import ErrorKind, ServiceError
from llmagg_router.domain.request import parse_request
from llmagg_router.domain.upstream import Operation

from .helpers import RecordingQuota

HI = [{"role": "user", "content": "hi"}]
ROLES = "'system', 'assistant', 'user', 'function', 'tool', and 'developer'"


def refusal(body: dict, operation: Operation = Operation.CHAT) -> tuple[str | None, str, str | None]:
    with pytest.raises(ServiceError) as caught:
        parse_request(body, operation)
    error = caught.value
    assert error.kind is ErrorKind.INVALID_ARGUMENT
    assert error.openai_error()["error"]["type"] == "invalid_request_error"
    return error.param, error.message, error.code


def chat(**fields) -> dict:
    return {"model": "auto", "messages": HI, **fields}


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        (
            {"max_tokens": -5},
            ("max_tokens", "Invalid 'max_tokens': integer below minimum value. Expected a value >= 1, but got -5 "
             "instead.", "integer_below_min_value"),
        ),
        (
            {"max_tokens": 0},
            ("max_tokens", "Invalid 'max_tokens': integer below minimum value. Expected a value >= 1, but got 0 "
             "instead.", "integer_below_min_value"),
        ),
        (
            {"max_tokens": 1.5},
            ("max_tokens", "Invalid type for 'max_tokens': expected an integer, but got a decimal number instead.",
             "invalid_type"),
        ),
        (
            {"max_tokens": "100"},
            ("max_tokens", "Invalid type for 'max_tokens': expected an integer, but got a string instead.",
             "invalid_type"),
        ),
        (
            {"max_tokens": True},
            ("max_tokens", "Invalid type for 'max_tokens': expected an integer, but got a boolean instead.",
             "invalid_type"),
        ),
        (
            {"max_completion_tokens": -1},
            ("max_completion_tokens", "Invalid 'max_completion_tokens': integer below minimum value. Expected a "
             "value >= 1, but got -1 instead.", "integer_below_min_value"),
        ),
        (
            {"temperature": "hot"},
            ("temperature", "Invalid type for 'temperature': expected a decimal, but got a string instead.",
             "invalid_type"),
        ),
        (
            {"temperature": 2.5},
            ("temperature", "Invalid 'temperature': decimal above maximum value. Expected a value <= 2, but got 2.5 "
             "instead.", "decimal_above_max_value"),
        ),
        (
            {"temperature": -0.1},
            ("temperature", "Invalid 'temperature': decimal below minimum value. Expected a value >= 0, but got -0.1 "
             "instead.", "decimal_below_min_value"),
        ),
        (
            {"top_p": 1.01},
            ("top_p", "Invalid 'top_p': decimal above maximum value. Expected a value <= 1, but got 1.01 instead.",
             "decimal_above_max_value"),
        ),
        (
            {"n": -1},
            ("n", "Invalid 'n': integer below minimum value. Expected a value >= 1, but got -1 instead.",
             "integer_below_min_value"),
        ),
        (
            {"n": 129},
            ("n", "Invalid 'n': integer above maximum value. Expected a value <= 128, but got 129 instead.",
             "integer_above_max_value"),
        ),
        (
            {"presence_penalty": 3},
            ("presence_penalty", "Invalid 'presence_penalty': decimal above maximum value. Expected a value <= 2, "
             "but got 3 instead.", "decimal_above_max_value"),
        ),
        (
            {"frequency_penalty": [1]},
            ("frequency_penalty", "Invalid type for 'frequency_penalty': expected a decimal, but got an array "
             "instead.", "invalid_type"),
        ),
        (
            {"top_logprobs": 21},
            ("top_logprobs", "Invalid 'top_logprobs': integer above maximum value. Expected a value <= 20, but got "
             "21 instead.", "integer_above_max_value"),
        ),
        (
            {"seed": "7"},
            ("seed", "Invalid type for 'seed': expected an integer, but got a string instead.", "invalid_type"),
        ),
        (
            {"logprobs": "yes"},
            ("logprobs", "Invalid type for 'logprobs': expected a boolean, but got a string instead.",
             "invalid_type"),
        ),
        (
            {"stop": 5},
            ("stop", "Invalid type for 'stop': expected a string or an array of strings, but got an integer "
             "instead.", "invalid_type"),
        ),
        (
            {"stop": ["a", 1]},
            ("stop[1]", "Invalid type for 'stop[1]': expected a string, but got an integer instead.",
             "invalid_type"),
        ),
        (
            {"messages": "hi"},
            ("messages", "Invalid type for 'messages': expected an array of objects, but got a string instead.",
             "invalid_type"),
        ),
        (
            {"messages": []},
            ("messages", "Invalid 'messages': empty array. Expected an array with minimum length 1, but got an "
             "empty array instead.", "empty_array"),
        ),
        (
            {"messages": [*HI, "hi"]},
            ("messages[1]", "Invalid type for 'messages[1]': expected an object, but got a string instead.",
             "invalid_type"),
        ),
        (
            {"messages": [{"role": "wizard", "content": "hi"}]},
            ("messages[0].role", f"Invalid value: 'wizard'. Supported values are: {ROLES}.", "invalid_value"),
        ),
        (
            {"messages": [{"content": "hi"}]},
            ("messages[0].role", "Missing required parameter: 'messages[0].role'.", "missing_required_parameter"),
        ),
        (
            {"messages": [*HI, {"role": "assistant", "content": 42}]},
            ("messages[1].content", "Invalid type for 'messages[1].content': expected a string or an array of "
             "objects, but got an integer instead.", "invalid_type"),
        ),
    ],
)  # fmt: skip
def test_nonsense_values_are_a_400_that_names_the_field(fields, expected):
    assert refusal(chat(**fields)) == expected


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            {"model": "auto", "input": []},
            ("input", "Invalid 'input': empty array. Expected an array with minimum length 1, but got an empty "
             "array instead.", "empty_array"),
        ),
        (
            {"model": "auto", "input": 5},
            ("input", "Invalid type for 'input': expected a string or an array of strings or token arrays, but got "
             "an integer instead.", "invalid_type"),
        ),
        (
            {"model": "auto", "input": "x", "dimensions": 0},
            ("dimensions", "Invalid 'dimensions': integer below minimum value. Expected a value >= 1, but got 0 "
             "instead.", "integer_below_min_value"),
        ),
    ],
)  # fmt: skip
def test_nonsense_embedding_values_are_a_400_that_names_the_field(body, expected):
    assert refusal(body, Operation.EMBEDDINGS) == expected


@pytest.mark.parametrize(
    "fields",
    [
        {"max_tokens": None, "temperature": None, "n": None},  # null: not given
        {"max_tokens": 1, "temperature": 0, "top_p": 1, "n": 128, "presence_penalty": -2, "frequency_penalty": 2},
        {"max_tokens": 2**31 - 1},
        {"max_tokens": 2**31},
        {"max_completion_tokens": 10**20},
        {"max_tokens": 1e20},  # orjson reads integers beyond 64 bits as floats: still a whole number
        {"temperature": 1.7, "top_p": 0.5, "seed": -3, "stop": "\n", "logprobs": True, "top_logprobs": 0},
        {"messages": [{"role": r, "content": "x"} for r in ("developer", "system", "user", "assistant", "tool")]},
        {"messages": [*HI, {"role": "assistant", "content": None, "tool_calls": []}]},
        {"messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]},
    ],
)
def test_valid_values_pass_untouched(fields):
    body = chat(**fields)
    assert parse_request(body, Operation.CHAT).upstream_body == body


@pytest.mark.parametrize("huge", [2**31 - 1, 2**31, 2**63, 10**20, 1e20, 1e308])
async def test_a_huge_answer_allowance_is_clamped_for_metering_and_sent_upstream_as_asked(make_router, upstream, huge):
    quota = RecordingQuota()
    await make_router(quota=quota).complete(chat(model="smart/big-model", max_tokens=huge))
    (_, _, _, estimated), = quota.reserved  # fmt: skip
    assert estimated == 200000 + 1  # the model's context window, and the prompt's one token
    assert upstream.calls[0][3]["max_tokens"] == huge


async def test_without_a_known_window_the_allowance_is_clamped_to_the_metering_maximum(make_router, upstream):
    from llmagg_router.domain.tokens import MAX_METERED_COMPLETION_TOKENS

    quota = RecordingQuota()
    await make_router(quota=quota).complete(chat(model="fast/unlisted-model", max_tokens=10**20))
    (_, _, _, estimated), = quota.reserved  # fmt: skip
    assert estimated == MAX_METERED_COMPLETION_TOKENS + 1
