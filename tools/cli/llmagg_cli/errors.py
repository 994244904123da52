"""Exit codes scripts can test, and the one error type commands raise."""

from __future__ import annotations

OK = 0
FAILED = 1  # the server refused the request (bad input, ...)
USAGE = 2  # wrong arguments (argparse uses 2 as well)
NOT_FOUND = 3
EXISTS = 4  # already exists
DENIED = 5  # no key, a bad key, or a key without the admin scope
UNREACHABLE = 6  # the gateway cannot be reached, or a service behind it is down

BY_STATUS = {400: FAILED, 401: DENIED, 403: DENIED, 404: NOT_FOUND, 409: EXISTS, 502: UNREACHABLE, 503: UNREACHABLE}


class CliError(Exception):
    def __init__(self, message: str, code: int = FAILED) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
