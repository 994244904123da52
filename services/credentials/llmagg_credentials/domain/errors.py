"""The credentials domain's errors, as every service's ServiceError."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from llmagg.common.errors import ErrorKind, ServiceError
from llmagg_credentials.domain.store import StoreUnavailable


def invalid(message: str, code: str, param: str | None = None) -> ServiceError:
    return ServiceError(ErrorKind.INVALID_ARGUMENT, message, code=code, param=param)


def not_found(what: str, code: str) -> ServiceError:
    return ServiceError(ErrorKind.NOT_FOUND, f"{what} does not exist.", code=code)


def store_unavailable(problem: StoreUnavailable) -> ServiceError:
    return ServiceError(
        ErrorKind.UNAVAILABLE,
        f"The credential store is unavailable ({problem}); nothing was changed. Retry when it is back.",
        code="credential_store_unavailable",
    )


@contextlib.contextmanager
def store_errors() -> Iterator[None]:
    """A store that is down becomes UNAVAILABLE for the caller (nothing was written)."""
    try:
        yield
    except StoreUnavailable as problem:
        raise store_unavailable(problem) from None
