"""The web console (`/ui`): its static files answered by Envoy itself, and the rule that admin actions are JSON.

Each file of llmagg_gateway/console/ becomes one route with a `direct_response` whose body is the file,
inlined into the config: no file has to be mounted beside Envoy (make run, the image and Kubernetes
serve the same bytes), and `make check` fails when the config is older than the files. The pages need no
key to load; every piece of data they show comes from the admin routes, which the page calls with the
admin key in an `Authorization` header (never a cookie: no request carries it by itself, so a page of
another site cannot act with it).

Headers: a strict Content-Security-Policy (only the console's own scripts and styles, data only from
this origin, no framing), no sniffing, no referrer, and nothing cached.
"""

from __future__ import annotations

import json
import urllib.parse
from pathlib import Path

from llmagg import gateway_keys
from llmagg.rpcs import ADMIN_REST_PREFIX

CONSOLE_DIR = Path(__file__).with_name("console")
PREFIX = "/ui"
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".json": "application/json",
}
# Where the Requests page links each traced attempt: <jaeger_ui>/trace/<trace id> (python -m llmagg_gateway
# --jaeger-ui; make run: GATEWAY_JAEGER_UI_URL).
DEFAULT_JAEGER_UI = "http://localhost:16686"
SETTINGS_PATH = f"{PREFIX}/settings.json"
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "cache-control": "no-store",
}
# Envoy keeps direct-response bodies to 4 KiB unless told otherwise.
MAX_ASSET_BYTES = 256 * 1024
# Methods that carry a body: on an admin route their body must be JSON (415 otherwise), so that no HTML
# form (which can only send form encodings or text/plain) can ever make one.
BODY_METHODS = ("POST", "PUT", "PATCH")


def console_files(directory: Path = CONSOLE_DIR) -> dict[str, Path]:
    """URL path -> file, for every file of the console folder (index.html also at /ui and /ui/)."""
    files = {}
    for path in sorted(directory.rglob("*")):
        if path.is_file():
            if path.suffix not in CONTENT_TYPES:
                raise ValueError(f"{path}: the console serves only {sorted(CONTENT_TYPES)} files")
            if path.stat().st_size > MAX_ASSET_BYTES:
                raise ValueError(f"{path}: larger than {MAX_ASSET_BYTES} bytes")
            files[f"{PREFIX}/{path.relative_to(directory).as_posix()}"] = path
    index = files.get(f"{PREFIX}/index.html")
    if index is not None:
        files[PREFIX] = files[f"{PREFIX}/"] = index
    return files


def _headers(values: dict[str, str]) -> list[dict]:
    return [
        {"header": {"key": key, "value": value}, "append_action": "OVERWRITE_IF_EXISTS_OR_ADD"}
        for key, value in values.items()
    ]


def _skip(*filters: str) -> dict:
    """Per-route: these filters of the chain do nothing on this route."""
    disabled = {"@type": "type.googleapis.com/envoy.config.route.v3.FilterConfig", "disabled": True}
    return {name: disabled for name in filters}


TRANSCODER = "envoy.filters.http.grpc_json_transcoder"
EXT_AUTHZ = "envoy.filters.http.ext_authz"
# The client-key check: the key-routing Lua and the hashes (basic_auth) filter, then ext_authz.
KEY_CHECK = (*gateway_keys.FILTER_NAMES, EXT_AUTHZ)


def jaeger_ui_url(url: str) -> str:
    """The Jaeger UI's base URL, checked: http(s) with a host, no query or fragment; no trailing slash."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise ValueError(f"the Jaeger UI's URL must be http(s)://HOST[:PORT][/PATH], not {url!r}")
    return url.rstrip("/")


def console_settings(jaeger_ui: str = DEFAULT_JAEGER_UI) -> str:
    """What the pages need to know of this deployment (nothing secret: the file needs no key)."""
    return json.dumps({"jaeger_ui": jaeger_ui_url(jaeger_ui)})


def console_routes(
    client_auth: bool = True, directory: Path = CONSOLE_DIR, jaeger_ui: str = DEFAULT_JAEGER_UI
) -> list[dict]:
    """One route per console file and its settings (no key needed to load a page: it holds no data), then the
    JSON rule."""
    bodies = {url: (path.read_text(), path.suffix) for url, path in console_files(directory).items()}
    bodies[SETTINGS_PATH] = (console_settings(jaeger_ui), ".json")
    routes = []
    for url, (body, suffix) in bodies.items():
        route: dict = {
            "match": {"path": url},
            "direct_response": {"status": 200, "body": {"inline_string": body}},
            "response_headers_to_add": _headers({**SECURITY_HEADERS, "content-type": CONTENT_TYPES[suffix]}),
        }
        # No key to load a page, and no gRPC method behind it.
        route["typed_per_filter_config"] = _skip(TRANSCODER, *(KEY_CHECK if client_auth else ()))
        routes.append(route)
    return [*routes, json_actions_only()]


def json_actions_only() -> dict:
    """A POST/PUT/PATCH to an admin route whose body is not JSON: 415 (shaped as OpenAI's error by
    local_replies.py), before it reaches a service. Checked after ext_authz: a caller without an admin key
    still gets its 401/403 first."""
    return {
        # The transcoder would send it on to its service (and pick that service's route) instead.
        "typed_per_filter_config": _skip(TRANSCODER),
        "match": {
            "prefix": ADMIN_REST_PREFIX,
            "headers": [
                {"name": ":method", "string_match": {"safe_regex": {"regex": "|".join(BODY_METHODS)}}},
                {
                    "name": "content-type",
                    "string_match": {"prefix": "application/json"},
                    "invert_match": True,
                    "treat_missing_header_as_empty": True,
                },
            ],
        },
        "direct_response": {
            "status": 415,
            "body": {"inline_string": "An admin action's body must be JSON (Content-Type: application/json)."},
        },
    }


def console_reply_mappers() -> list[dict]:
    """Envoy answers a direct response as a local reply, which local_replies.py shapes as OpenAI's error JSON:
    a console file keeps its own bytes and content type instead (matched by its path, one mapper per type)."""
    mappers = []
    for url_ending, content_type in [
        ("/ui", CONTENT_TYPES[".html"]),
        ("/", CONTENT_TYPES[".html"]),
        *CONTENT_TYPES.items(),
    ]:
        path = {"header": {"name": ":path", "string_match": {"suffix": url_ending}}}
        under_ui = {"header": {"name": ":path", "string_match": {"prefix": PREFIX}}}
        served = {
            "status_code_filter": {
                "comparison": {"op": "EQ", "value": {"default_value": 200, "runtime_key": "llmagg.ui"}}
            }
        }
        mappers.append(
            {
                "filter": {"and_filter": {"filters": [served, {"header_filter": under_ui}, {"header_filter": path}]}},
                "body_format_override": {
                    "text_format_source": {"inline_string": "%LOCAL_REPLY_BODY%"},
                    "content_type": content_type,
                },
            }
        )
    return mappers
