"""Client API keys checked by Envoy (ext_authz -> credentials) on every request, REST and gRPC."""

from __future__ import annotations

import json

import openai
import pytest

from ..helpers import (
    ADMIN_KEY,
    ROUTER_TEST_ENV,
    admin_call,
    create_client_key,
    post_raw,
    router_log_lines,
    scenario,
    wait_for,
)

HELLO = [{"role": "user", "content": "Hello!"}]


def sdk(stack, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=stack.base_url, api_key=key, max_retries=0, timeout=30)


def test_no_key_is_an_openai_shaped_401(stack):
    status, headers, body = post_raw(f"{stack.base_url}/chat/completions", b'{"model": "chat-model"}')
    assert status == 401 and headers["content-type"] == "application/json"
    assert body["error"]["type"] == "authentication_error" and body["error"]["code"] == "missing_api_key"


def test_a_bad_key_is_a_401_the_sdk_understands(stack):
    with pytest.raises(openai.AuthenticationError) as caught:
        sdk(stack, "sk-wrong-FAKE-key").chat.completions.create(model="chat-model", messages=HELLO)
    assert caught.value.status_code == 401 and caught.value.code == "invalid_api_key"
    with pytest.raises(openai.AuthenticationError):
        sdk(stack, "sk-wrong-FAKE-key").models.list()


def test_a_plain_key_on_an_admin_route_is_a_403_and_an_admin_key_passes(stack, client_key):
    status, body = admin_call(stack, "GET", "/v1/admin/accounts", key=client_key)
    assert status == 403
    assert body["error"]["type"] == "permission_error" and body["error"]["code"] == "insufficient_scope"
    status, body = admin_call(stack, "GET", "/v1/admin/accounts")
    assert status == 200 and "sim-fast-acct" in {a["alias"] for a in body["accounts"]}
    assert all("api_key" not in a for a in body["accounts"])


def test_a_revoked_key_is_refused_within_the_cache_ttl(stack):
    key = create_client_key(stack, "to revoke")
    client = sdk(stack, key)
    assert client.chat.completions.create(model="chat-model", messages=HELLO).provider == "sim-fast"
    key_id = key.split("-")[2]
    status, body = admin_call(stack, "DELETE", f"/v1/admin/keys/{key_id}")
    assert status == 200 and body["key"]["revoked"] is True

    def refused() -> bool:
        try:
            client.models.list()
        except openai.AuthenticationError:
            return True
        return False

    # One credentials replica: refused at once; with several, within CREDENTIALS_AUTHZ_CACHE_TTL_S (10 s).
    wait_for(refused, "the revoked key refused", timeout_s=12)
    assert refused()


def test_the_client_id_reaches_the_router_and_the_key_does_not(stack, client_key, simulator):
    scenario(simulator, "all-fail")
    with pytest.raises(openai.InternalServerError) as caught:
        sdk(stack, client_key).chat.completions.create(model="all-fail", messages=HELLO)
    request_id = caught.value.response.headers["x-request-id"]
    lines = router_log_lines(stack, request_id, 3)  # two attempts failed, then the request
    assert {line["client_id"] for line in lines} == {client_key.split("-")[2]}
    assert client_key not in (stack.run_dir / "router.log").read_text()


def test_a_client_cannot_claim_another_identity_by_header(stack, client_key, simulator):
    scenario(simulator, "all-fail")
    with pytest.raises(openai.InternalServerError) as caught:
        sdk(stack, client_key).chat.completions.create(
            model="all-fail", messages=HELLO, extra_headers={"x-llmagg-client-id": "someone-else"}
        )
    request_id = caught.value.response.headers["x-request-id"]
    lines = router_log_lines(stack, request_id, 3)  # two attempts failed, then the request
    assert {line["client_id"] for line in lines} == {client_key.split("-")[2]}


def test_a_clients_own_provider_key_is_used_for_that_request_only(stack, client_key, simulator):
    simulator.reset("sim-fast")
    own = "sk-own-FAKE-provider-key"
    raw = sdk(stack, client_key).chat.completions.with_raw_response.create(
        model="sim-small",
        messages=HELLO,
        extra_body={"provider": "sim-fast"},
        extra_headers={"x-provider-api-key": own},
    )
    assert raw.headers["x-llmagg-account"].startswith("byok-") and own not in raw.headers["x-llmagg-account"]
    sdk(stack, client_key).chat.completions.create(model="sim-fast/sim-small", messages=HELLO)
    assert [r["headers"]["authorization"] for r in simulator.requests("sim-fast")] == [
        f"Bearer {own}",
        f"Bearer {ROUTER_TEST_ENV['SIM_PROVIDER_KEY']}",  # the next request is back on the stored account
    ]
    with pytest.raises(openai.BadRequestError) as caught:
        sdk(stack, client_key).chat.completions.create(
            model="sim-small", messages=HELLO, extra_headers={"x-provider-api-key": own}
        )
    assert caught.value.code == "own_key_needs_provider"


def test_admin_routes_manage_keys_through_the_gateway(stack):
    status, created = admin_call(stack, "POST", "/v1/admin/keys", {"name": "ci", "scope": "admin"})
    assert status == 200 and created["key"]["scope"] == "admin" and created["secret"].startswith("sk-llmagg-")
    status, listed = admin_call(stack, "GET", "/v1/admin/keys")
    assert created["key"]["id"] in {k["id"] for k in listed["keys"]}
    assert "secret" not in json.dumps(listed) and created["secret"] not in json.dumps(listed)
    status, _ = admin_call(stack, "GET", "/v1/admin/accounts", key=created["secret"])
    assert status == 200
    status, body = admin_call(stack, "POST", "/v1/admin/keys", {"name": "x", "scope": "root"})
    assert status == 400 and body["error"]["code"] == "invalid_scope"


# --- client authentication switched off ----------------------------------------------------------


@pytest.fixture(scope="module")
def anonymous_stack(router_config, tmp_path_factory, make_stack):
    stack = make_stack(tmp_path_factory.mktemp("anonymous"), client_auth=False)
    with stack.running({**ROUTER_TEST_ENV, "LLMAGG_CONFIG": str(router_config)}):
        yield stack


def test_with_client_auth_off_anyone_on_loopback_is_anonymous(anonymous_stack, simulator):
    scenario(simulator, "all-fail")
    with pytest.raises(openai.InternalServerError) as caught:
        sdk(anonymous_stack, "anything").chat.completions.create(model="all-fail", messages=HELLO)
    request_id = caught.value.response.headers["x-request-id"]
    log = (anonymous_stack.run_dir / "router.log").read_text().splitlines()
    assert {json.loads(line)["client_id"] for line in log if request_id in line} == {"anonymous"}
    assert sdk(anonymous_stack, "anything").chat.completions.create(model="chat-model", messages=HELLO).provider


def test_with_client_auth_off_admin_routes_still_need_an_admin_key(anonymous_stack):
    status, body = admin_call(anonymous_stack, "GET", "/v1/admin/accounts", key="sk-wrong-FAKE-key")
    assert status == 401 and body["error"]["code"] == "invalid_api_key"
    status, _ = admin_call(anonymous_stack, "GET", "/v1/admin/accounts", key=ADMIN_KEY)
    assert status == 200


@pytest.mark.parametrize(
    "path", ["/v1/%61dmin/accounts", "/v1//admin/accounts", "/v1/./admin/accounts", "/v1/models/../admin/accounts"]
)
def test_a_disguised_admin_path_does_not_let_a_plain_key_through(stack, client_key, path):
    status, body = admin_call(stack, "GET", path, key=client_key)
    assert status in (401, 403, 404), body  # refused or unknown, never served
    assert "accounts" not in body
