"""CREDENTIALS_VAULT_AUTH=kubernetes against the real OpenBao, whose `kubernetes` auth method asks a
TokenReview endpoint this test serves over HTTPS on loopback (a CA and certificate made here).

OpenBao reads the ServiceAccount's name, namespace and uid from the JWT's claims (it checks the signature
only when given public keys, none here), then asks TokenReview whether the token is valid and whose it is.
The fake reviewer knows exactly the tokens the test "issued", like an API server, and forgets rotated ones.
"""

from __future__ import annotations

import base64
import datetime
import ipaddress
import json
import logging
import secrets
import ssl
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID
from grpc_health.v1 import health_pb2

from llmagg.common.errors import ErrorKind, ServiceError
from llmagg_credentials.domain.store import ACCOUNTS
from llmagg_credentials.server import build_credentials, build_server, load_catalogue
from llmagg_credentials.settings import CredentialsSettings
from llmagg_devstack import CREDENTIALS_POLICY

from ..helpers import wait_until_token_expired

NAMESPACE = "llmagg"
BOUND_SA = "credentials"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class ServiceAccountIssuer:
    """Mints ServiceAccount JWTs (RS256, legacy-token claims) and remembers which are currently valid."""

    def __init__(self) -> None:
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.valid: dict[str, tuple[str, str, str]] = {}  # jwt -> (namespace, name, uid)
        self.reviews: list[str] = []  # the service-account names TokenReview was asked about
        self.uids: dict[tuple[str, str], str] = {}

    def mint(self, namespace: str, name: str) -> str:
        uid = self.uids.setdefault((namespace, name), str(uuid.uuid4()))
        header = {"alg": "RS256", "typ": "JWT", "kid": "test"}
        claims = {
            "iss": "kubernetes/serviceaccount",
            "sub": f"system:serviceaccount:{namespace}:{name}",
            "kubernetes.io/serviceaccount/namespace": namespace,
            "kubernetes.io/serviceaccount/service-account.name": name,
            "kubernetes.io/serviceaccount/service-account.uid": uid,
            "kubernetes.io/serviceaccount/secret.name": f"{name}-token-{secrets.token_hex(3)}",
        }
        signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
        signature = self._key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        jwt = f"{signing_input}.{_b64(signature)}"
        self.valid[jwt] = (namespace, name, uid)
        return jwt

    def revoke(self, jwt: str) -> None:
        self.valid.pop(jwt, None)

    def review(self, token: str) -> dict:
        known = self.valid.get(token)
        if known is None:
            return {"authenticated": False, "error": "invalid bearer token"}
        namespace, name, uid = known
        self.reviews.append(name)
        return {
            "authenticated": True,
            "user": {"username": f"system:serviceaccount:{namespace}:{name}", "uid": uid},
        }


def _certificates(tmp: Path) -> tuple[str, Path, Path]:
    """A self-signed CA (PEM text) and a server certificate for 127.0.0.1 it signed (files)."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test kubernetes CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kubernetes")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    cert_file, key_file = tmp / "apiserver.crt", tmp / "apiserver.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return ca.public_bytes(serialization.Encoding.PEM).decode(), cert_file, key_file


@pytest.fixture(scope="module")
def issuer() -> ServiceAccountIssuer:
    return ServiceAccountIssuer()


@pytest.fixture(scope="module")
def token_review(tmp_path_factory, issuer) -> Iterator[tuple[str, str]]:
    """The TokenReview API over HTTPS on loopback: (its https URL, the CA's PEM)."""
    ca_pem, cert_file, key_file = _certificates(tmp_path_factory.mktemp("apiserver"))

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            if self.path != "/apis/authentication.k8s.io/v1/tokenreviews":
                self.send_error(404)
                return
            request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            body = json.dumps(
                {
                    "apiVersion": "authentication.k8s.io/v1",
                    "kind": "TokenReview",
                    "spec": request.get("spec", {}),
                    "status": issuer.review(request["spec"]["token"]),
                }
            ).encode()
            self.send_response(201)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}", ca_pem
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def kubernetes_auth(openbao, token_review) -> tuple[str, str, str]:
    """Per test, a KV mount with the credentials policy and a kubernetes auth mount whose role binds only
    llmagg/credentials, with tokens that live 2 s: (kv mount, auth mount, role)."""
    host, ca_pem = token_review
    suffix = secrets.token_hex(3)
    kv, auth, role = f"t-k8s-{suffix}", f"k8s-{suffix}", "credentials"
    root = openbao.root_client()
    root.sys.enable_secrets_engine("kv", path=kv, options={"version": "2"})
    root.sys.create_or_update_policy(f"{kv}-credentials", CREDENTIALS_POLICY.format(mount=kv))
    root.sys.enable_auth_method("kubernetes", path=auth)
    root.write(
        f"auth/{auth}/config",
        kubernetes_host=host,
        kubernetes_ca_cert=ca_pem,
        disable_iss_validation=True,
        disable_local_ca_jwt=True,
    )
    root.write(
        f"auth/{auth}/role/{role}",
        bound_service_account_names=[BOUND_SA],
        bound_service_account_namespaces=[NAMESPACE],
        token_policies=[f"{kv}-credentials"],
        token_ttl="2s",
        token_max_ttl="2s",
    )
    return kv, auth, role


def credentials_for(openbao, kubernetes_auth, jwt_file: Path):
    """The credentials service's parts exactly as it builds them from its settings (store, accounts, server)."""
    kv, auth, role = kubernetes_auth
    settings = CredentialsSettings(
        store="vault",
        vault_addr=openbao.address,
        vault_mount=kv,
        vault_auth="kubernetes",
        vault_kubernetes_role=role,
        vault_jwt_file=jwt_file,
        vault_auth_mount=auth,
        config=None,
        admin_key=None,
        metrics_port=0,  # several servers in one process: no shared Prometheus registry
    )
    providers, _ = load_catalogue(settings, {})
    credentials = build_credentials(settings, providers)
    return credentials, build_server(settings, credentials)


async def vault_health(server) -> int:
    await server.check_readiness()
    request = health_pb2.HealthCheckRequest(service="vault")
    return (await server.health.Check(request, None)).status


async def test_the_bound_service_account_logs_in_and_reads_and_writes_accounts(
    openbao, kubernetes_auth, issuer, tmp_path
):
    jwt_file = tmp_path / "token"
    jwt_file.write_text(issuer.mint(NAMESPACE, BOUND_SA))
    credentials, server = credentials_for(openbao, kubernetes_auth, jwt_file)
    reviews_before = len(issuer.reviews)
    assert await vault_health(server) == health_pb2.HealthCheckResponse.SERVING
    added = await credentials.accounts.add("groq", "k8s-acct", "gsk-k8s-FAKE-key")
    assert (added.alias, added.provider) == ("k8s-acct", "groq")
    assert [a.alias for a in await credentials.accounts.list()] == ["k8s-acct"]
    assert await credentials.store.names(ACCOUNTS) == ["k8s-acct"]
    assert issuer.reviews[reviews_before:] == [BOUND_SA]  # one login, checked by TokenReview


async def test_another_service_account_is_refused_with_a_clear_message_and_no_token_in_logs(
    openbao, kubernetes_auth, issuer, tmp_path, caplog
):
    caplog.set_level(logging.DEBUG)
    jwt = issuer.mint(NAMESPACE, "router")  # a real token, but not of the role's ServiceAccount
    jwt_file = tmp_path / "token"
    jwt_file.write_text(jwt)
    credentials, server = credentials_for(openbao, kubernetes_auth, jwt_file)
    kv, auth, role = kubernetes_auth
    refusal = (
        f"Vault at {openbao.address} (mount {kv}) refused the kubernetes login"
        f" (role {role!r} at auth/{auth}): check the role's bound ServiceAccount names and namespaces"
    )
    assert await vault_health(server) == health_pb2.HealthCheckResponse.NOT_SERVING  # reported, no crash
    assert f"vault is unusable: StoreUnavailable: {refusal}" in caplog.messages
    with pytest.raises(ServiceError) as refused:  # what a client of the credentials service gets: UNAVAILABLE
        await credentials.accounts.list()
    assert (refused.value.kind, refused.value.code, str(refused.value)) == (
        ErrorKind.UNAVAILABLE,
        "credential_store_unavailable",
        f"The credential store is unavailable ({refusal}); nothing was changed. Retry when it is back.",
    )
    assert "router" not in issuer.reviews  # OpenBao refused it on the role's binding, before any TokenReview
    assert jwt not in caplog.text and jwt.split(".")[2] not in caplog.text
    # the operator binds the ServiceAccount: the next readiness round logs in, no restart needed
    openbao.root_client().write(
        f"auth/{auth}/role/{role}",
        bound_service_account_names=[BOUND_SA, "router"],
        bound_service_account_namespaces=[NAMESPACE],
        token_policies=[f"{kv}-credentials"],
    )
    assert await vault_health(server) == health_pb2.HealthCheckResponse.SERVING
    assert issuer.reviews.count("router") == 1


async def test_a_rotated_token_file_keeps_working_after_the_vault_token_expires(
    openbao, kubernetes_auth, issuer, tmp_path
):
    jwt_file = tmp_path / "token"
    first_jwt = issuer.mint(NAMESPACE, BOUND_SA)
    jwt_file.write_text(first_jwt)
    credentials, server = credentials_for(openbao, kubernetes_auth, jwt_file)
    store = credentials.store
    assert await store.write(ACCOUNTS, "rotated", {"n": 1}, version=0) == 1
    first_token = store._client.token
    # kubelet rotates the projected token: a new file content; the API server no longer accepts the old one
    second_jwt = issuer.mint(NAMESPACE, BOUND_SA)
    jwt_file.write_text(second_jwt)
    issuer.revoke(first_jwt)
    wait_until_token_expired(openbao, first_token, "the Kubernetes-login token to expire")  # tokens live 2 s
    assert await vault_health(server) == health_pb2.HealthCheckResponse.SERVING  # its ping logged in again
    assert (await store.read(ACCOUNTS, "rotated")).data == {"n": 1}
    assert store._client.token != first_token
    assert await store.write(ACCOUNTS, "rotated", {"n": 2}, version=1) == 2
