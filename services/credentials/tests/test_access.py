"""Who may do what: ext_authz decisions for the gateway, and the service's own RPC rules."""

from __future__ import annotations

import orjson
import pytest
from envoy.service.auth.v3 import external_auth_pb2 as authz
from google.rpc import code_pb2

from llmagg.common.errors import ErrorKind, ServiceError
from llmagg_credentials.authz_servicer import AuthorizationServicer
from llmagg_credentials.domain.access import RULES, Caller
from llmagg_credentials.domain.client_keys import PREFIX

from .conftest import ENV_ADMIN


def check_request(path: str, authorization: str | None) -> authz.CheckRequest:
    request = authz.CheckRequest()
    request.attributes.request.http.path = path
    if authorization is not None:
        request.attributes.request.http.headers["authorization"] = authorization
    return request


async def test_a_valid_key_passes_with_its_id_and_scope_and_loses_its_authorization_header(access, keys):
    record, secret = await keys.create("k", "client")
    response = await AuthorizationServicer(access).Check(
        check_request("/v1/chat/completions", f"Bearer {secret.reveal()}"), None
    )
    assert response.status.code == code_pb2.OK
    headers = {h.header.key: (h.header.value, h.append_action) for h in response.ok_response.headers}
    overwrite = response.ok_response.headers[0].OVERWRITE_IF_EXISTS_OR_ADD
    assert headers == {"x-llmagg-client-id": (record.id, overwrite), "x-llmagg-client-scope": ("client", overwrite)}
    assert list(response.ok_response.headers_to_remove) == ["authorization"]


@pytest.mark.parametrize(
    ("authorization", "code"),
    [(None, "missing_api_key"), ("Bearer ", "missing_api_key"), ("Basic abc", "missing_api_key"),
     ("Bearer sk-wrong-FAKE", "invalid_api_key")],
)  # fmt: skip
async def test_missing_or_bad_keys_are_an_openai_shaped_401(access, authorization, code):
    response = await AuthorizationServicer(access).Check(check_request("/v1/models", authorization), None)
    assert response.status.code == code_pb2.UNAUTHENTICATED
    assert response.denied_response.status.code == 401
    body = orjson.loads(response.denied_response.body)
    assert body["error"]["type"] == "authentication_error" and body["error"]["code"] == code
    assert {h.header.key: h.header.value for h in response.denied_response.headers} == {
        "content-type": "application/json"
    }


@pytest.mark.parametrize("path", ["/v1/admin/accounts", "/llmagg.credentials.v1.CredentialsService/AddAccount"])
async def test_a_plain_key_on_an_admin_route_is_a_403_and_an_admin_key_keeps_its_header(access, keys, path):
    _, plain = await keys.create("k", "client")
    servicer = AuthorizationServicer(access)
    denied = await servicer.Check(check_request(path, f"Bearer {plain.reveal()}"), None)
    assert denied.denied_response.status.code == 403 and denied.status.code == code_pb2.PERMISSION_DENIED
    assert orjson.loads(denied.denied_response.body)["error"]["code"] == "insufficient_scope"
    allowed = await servicer.Check(check_request(path, f"Bearer {ENV_ADMIN}"), None)
    assert allowed.status.code == code_pb2.OK
    assert list(allowed.ok_response.headers_to_remove) == []  # credentials checks the admin key again


async def test_with_the_store_down_an_unseen_key_is_a_503_not_a_pass(access, store):
    store.available = False
    response = await AuthorizationServicer(access).Check(
        check_request("/v1/models", f"Bearer {PREFIX}0123456789ab-FAKE-unseen"), None
    )
    assert response.denied_response.status.code == 503
    assert orjson.loads(response.denied_response.body)["error"]["code"] == "credential_store_unavailable"


async def test_leases_and_reports_answer_the_router_token_only(access, keys):
    _, plain = await keys.create("k", "client")
    assert await access.require("Lease", "router", "") is Caller.ROUTER
    for peer, authorization, kind in [
        ("gateway", f"Bearer {ENV_ADMIN}", ErrorKind.PERMISSION_DENIED),
        ("gateway", f"Bearer {plain.reveal()}", ErrorKind.PERMISSION_DENIED),
        (None, "", ErrorKind.UNAUTHENTICATED),
        ("gateway", "", ErrorKind.UNAUTHENTICATED),  # through the gateway without a key
    ]:
        with pytest.raises(ServiceError) as caught:
            await access.require("Lease", peer, authorization)
        assert caught.value.kind is kind


async def test_management_needs_an_admin_key_and_the_router_may_only_list(access):
    assert await access.require("AddAccount", "gateway", f"Bearer {ENV_ADMIN}") is Caller.ADMIN
    assert await access.require("ListAccounts", "router", "") is Caller.ROUTER
    for method in ("AddAccount", "RotateAccountKey", "DeleteAccount", "CreateClientKey", "RevokeClientKey"):
        with pytest.raises(ServiceError) as caught:
            await access.require(method, "router", "")
        assert caught.value.kind is ErrorKind.PERMISSION_DENIED


async def test_ratelimits_token_may_list_accounts_and_nothing_else(access):
    assert await access.require("ListAccounts", "ratelimit", "") is Caller.RATELIMIT
    for method in ("Lease", "ReportOutcome", "AddAccount", "UpdateAccount", "ListClientKeys"):
        with pytest.raises(ServiceError) as caught:
            await access.require(method, "ratelimit", "")
        assert caught.value.kind is ErrorKind.PERMISSION_DENIED


def test_every_rpc_of_the_service_has_a_rule():
    from llmagg.credentials.v1 import credentials_pb2

    methods = {m.name for m in credentials_pb2.DESCRIPTOR.services_by_name["CredentialsService"].methods}
    assert set(RULES) == methods


async def test_discovery_may_list_and_lease_but_not_report_nor_manage(access):
    assert await access.require("ListAccounts", "discovery", "") is Caller.DISCOVERY
    assert await access.require("Lease", "discovery", "") is Caller.DISCOVERY
    for method in ("ReportOutcome", "AddAccount", "RotateAccountKey", "CreateClientKey"):
        with pytest.raises(ServiceError) as caught:
            await access.require(method, "discovery", "")
        assert caught.value.kind is ErrorKind.PERMISSION_DENIED


async def test_discovery_routes_through_the_gateway_are_admin_only(access, keys):
    _, plain = await keys.create("k", "client")
    for path in ("/v1/admin/discovery/changes", "/llmagg.discovery.v1.DiscoveryService/RefreshNow"):
        assert (await access.decide(path, f"Bearer {ENV_ADMIN}")).allowed
        assert (await access.decide(path, f"Bearer {plain.reveal()}")).status == 403
