"""The values of a request, checked before it is routed: nonsense (a negative `max_tokens`, a
`temperature` of "hot", an unknown role) is a 400 that names the field, in OpenAI's own words and codes,
instead of reaching a provider, the quota ledger or a usage row.

Only what OpenAI defines is checked, and only as far as OpenAI itself refuses it; fields it does not
know pass untouched. A value that is valid but large (a `max_tokens` of 2**31) passes: the quota
estimate clamps it (tokens.py). `null` is a field not given.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from llmagg.common.errors import ErrorKind, ServiceError

ROLES = ("system", "assistant", "user", "function", "tool", "developer")
# field -> (integer?, minimum, maximum); None: unbounded on that side.
_CHAT_NUMBERS: dict[str, tuple[bool, float | None, float | None]] = {
    "max_tokens": (True, 1, None),
    "max_completion_tokens": (True, 1, None),
    "n": (True, 1, 128),
    "temperature": (False, 0, 2),
    "top_p": (False, 0, 1),
    "presence_penalty": (False, -2, 2),
    "frequency_penalty": (False, -2, 2),
    "top_logprobs": (True, 0, 20),
    "seed": (True, None, None),
}
_EMBEDDING_NUMBERS: dict[str, tuple[bool, float | None, float | None]] = {"dimensions": (True, 1, None)}


def _invalid(message: str, param: str, code: str) -> ServiceError:
    return ServiceError(ErrorKind.INVALID_ARGUMENT, message, code=code, param=param)


def _kind(value: Any) -> str:
    """What a JSON value is, as OpenAI's messages say it."""
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a decimal number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, Mapping):
        return "an object"
    return "null"


def _wrong_type(param: str, expected: str, value: Any) -> ServiceError:
    return _invalid(
        f"Invalid type for '{param}': expected {expected}, but got {_kind(value)} instead.", param, "invalid_type"
    )


def is_whole_number(value: Any) -> bool:
    """An integer in JSON's sense: no fraction (orjson reads integers past 64 bits, like 10**20, as floats)."""
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (isinstance(value, float) and value.is_integer())


def _number(param: str, value: Any, integer: bool, low: float | None, high: float | None) -> None:
    numeric = isinstance(value, int | float) and not isinstance(value, bool)
    if integer and not is_whole_number(value):
        raise _wrong_type(param, "an integer", value)
    if not numeric or value != value:  # NaN is no number either
        raise _wrong_type(param, "a decimal", value)
    what = "integer" if integer else "decimal"
    shown = str(int(value) if integer else value)
    shown = shown if len(shown) <= 40 else f"{shown[:20]}...({len(shown)} digits)"
    if low is not None and value < low:
        raise _invalid(
            f"Invalid '{param}': {what} below minimum value. Expected a value >= {low:g}, but got {shown} instead.",
            param,
            f"{what}_below_min_value",
        )
    if high is not None and value > high:
        raise _invalid(
            f"Invalid '{param}': {what} above maximum value. Expected a value <= {high:g}, but got {shown} instead.",
            param,
            f"{what}_above_max_value",
        )


def _numbers(body: Mapping[str, Any], rules: Mapping[str, tuple[bool, float | None, float | None]]) -> None:
    for name, (integer, low, high) in rules.items():
        value = body.get(name)
        if value is not None:
            _number(name, value, integer, low, high)


def _non_empty_array(param: str, value: Any, expected: str) -> list[Any]:
    if not isinstance(value, list):
        raise _wrong_type(param, expected, value)
    if not value:
        raise _invalid(
            f"Invalid '{param}': empty array. Expected an array with minimum length 1, but got an empty array instead.",
            param,
            "empty_array",
        )
    return value


def check_messages(messages: Any) -> None:
    for index, message in enumerate(_non_empty_array("messages", messages, "an array of objects")):
        where = f"messages[{index}]"
        if not isinstance(message, Mapping):
            raise _wrong_type(where, "an object", message)
        role = message.get("role")
        if role is None:
            raise _invalid(
                f"Missing required parameter: '{where}.role'.", f"{where}.role", "missing_required_parameter"
            )
        if role not in ROLES:
            supported = ", ".join(f"'{r}'" for r in ROLES[:-1]) + f", and '{ROLES[-1]}'"
            shown = repr(role) if isinstance(role, str) else f"'{role}'"
            raise _invalid(
                f"Invalid value: {shown[:80]}. Supported values are: {supported}.", f"{where}.role", "invalid_value"
            )
        content = message.get("content")
        if content is not None and not isinstance(content, str | list):
            raise _wrong_type(f"{where}.content", "a string or an array of objects", content)


def check_chat_values(body: Mapping[str, Any]) -> None:
    """Raise a ServiceError (400) naming the first chat field whose value OpenAI would refuse."""
    check_messages(body.get("messages"))
    _numbers(body, _CHAT_NUMBERS)
    logprobs = body.get("logprobs")
    if logprobs is not None and not isinstance(logprobs, bool):
        raise _wrong_type("logprobs", "a boolean", logprobs)
    stop = body.get("stop")
    if isinstance(stop, list):
        for index, item in enumerate(stop):
            if not isinstance(item, str):
                raise _wrong_type(f"stop[{index}]", "a string", item)
    elif stop is not None and not isinstance(stop, str):
        raise _wrong_type("stop", "a string or an array of strings", stop)


def check_embedding_values(body: Mapping[str, Any]) -> None:
    """Raise a ServiceError (400) naming the first embeddings field whose value OpenAI would refuse."""
    value = body.get("input")
    expected = "a string or an array of strings or token arrays"
    if not isinstance(value, str):
        _non_empty_array("input", value, expected)
    _numbers(body, _EMBEDDING_NUMBERS)
