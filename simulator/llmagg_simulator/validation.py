"""Reading request bodies: the refusal every dialect raises for a body its provider would not take, and type tests."""

from __future__ import annotations

from typing import Any


class BadRequest(Exception):
    """A body the provider would refuse with a 400; each dialect words the answer (see Dialect.bad_request)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_str_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) for item in value)
