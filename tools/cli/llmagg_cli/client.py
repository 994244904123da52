"""The admin REST API through the gateway (`/v1/admin/...`), with an admin key."""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llmagg_cli.errors import BY_STATUS, UNREACHABLE, USAGE, CliError

DEFAULT_URL = "http://127.0.0.1:8000"
DEFAULT_KEY_FILE = Path(".run") / "admin-key"


def admin_key(key_file: str | None) -> str:
    """LLMAGG_ADMIN_KEY, else the key file (--admin-key-file, LLMAGG_ADMIN_KEY_FILE, or the one `make run` wrote)."""
    if os.environ.get("LLMAGG_ADMIN_KEY"):
        return os.environ["LLMAGG_ADMIN_KEY"]
    path = Path(key_file or os.environ.get("LLMAGG_ADMIN_KEY_FILE") or DEFAULT_KEY_FILE)
    try:
        return path.read_text().strip()
    except OSError:
        raise CliError(
            f"no admin key: set LLMAGG_ADMIN_KEY, pass --admin-key-file, or run from the folder where `make run` "
            f"wrote {DEFAULT_KEY_FILE} (looked for {path})",
            USAGE,
        ) from None


@dataclass
class AdminClient:
    url: str
    key: str
    timeout_s: float = 30.0

    def call(self, method: str, path: str, body: dict[str, Any] | None = None, query: dict[str, str] | None = None):
        target = self.url.rstrip("/") + path + (f"?{urllib.parse.urlencode(query)}" if query else "")
        request = urllib.request.Request(
            target,
            data=json.dumps(body).encode() if body is not None else None,
            method=method,
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {self.key}"},
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                return json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as error:
            raise _refusal(error) from None
        except (urllib.error.URLError, OSError) as error:
            reason = getattr(error, "reason", error)
            raise CliError(
                f"cannot reach the gateway at {self.url}: {reason} (is `make run` up?)", UNREACHABLE
            ) from None


def _refusal(error: urllib.error.HTTPError) -> CliError:
    try:
        detail = json.loads(error.read())["error"]
        message = f"{detail.get('message')} ({detail.get('code')})"
    except (ValueError, KeyError, TypeError):
        message = f"HTTP {error.code}"
    return CliError(message, BY_STATUS.get(error.code, 1))
