"""`key=value` options."""

from __future__ import annotations

from llmagg_cli.errors import USAGE, CliError


def pairs(items: list[str] | None, what: str) -> dict[str, str]:
    result: dict[str, str] = {}
    for item in items or ():
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise CliError(f"{what} must look like name=value, got {item!r}", USAGE)
        result[key] = value
    return result


def numbers(items: list[str] | None, what: str) -> dict[str, float]:
    try:
        return {k: float(v) for k, v in pairs(items, what).items()}
    except ValueError:
        raise CliError(f"{what} values must be numbers", USAGE) from None
