"""OpenID Connect access tokens with roles, against a real issuer.

The issuer is a real HTTP server on a free port serving its discovery document
(OpenID Connect Discovery 1.0 §4) and JWK Set (RFC 7517 §5); the keys are made
at test time. dicomhub runs as a real process configured to trust it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from .conftest import Server, ServerFailed, free_port, start_server
from .dicomdata import fresh, stow

V = "https://viewer.example.org"
AUDIENCE = "dicomhub-test"
FULL_KEY = "full-key-for-scripts-0123456789"
READ_KEY = "read-only-key-for-viewer-0123"

RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC_KEY = ec.generate_private_key(ec.SECP256R1())
OTHER_RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _jwk(private_key: Any, kid: str) -> dict[str, Any]:
    if isinstance(private_key, rsa.RSAPrivateKey):
        data = RSAAlgorithm.to_jwk(private_key.public_key(), as_dict=True)
        data["alg"] = "RS256"
    else:
        data = ECAlgorithm.to_jwk(private_key.public_key(), as_dict=True)
        data["alg"] = "ES256"
    return {**data, "kid": kid, "use": "sig"}


@dataclass
class Issuer:
    """A minimal OpenID provider: discovery document and JWK Set over HTTP."""

    url: str
    jwks: list[dict[str, Any]]
    jwks_fetches: int = 0
    httpd: ThreadingHTTPServer | None = field(default=None, repr=False)

    def token(
        self,
        claims: dict[str, Any] | None = None,
        key: Any = RSA_KEY,
        kid: str = "rsa-1",
        alg: str = "RS256",
    ) -> str:
        now = int(time.time())
        payload = {
            "iss": self.url,
            "aud": AUDIENCE,
            "sub": "user-" + uuid.uuid4().hex[:8],
            "iat": now,
            "nbf": now,
            "exp": now + 600,
            **(claims or {}),
        }
        payload = {k: v for k, v in payload.items() if v is not None}
        return jwt.encode(payload, key, algorithm=alg, headers={"kid": kid})


def _serve_issuer(jwks: list[dict[str, Any]]) -> Issuer:
    port = free_port()
    issuer = Issuer(f"http://127.0.0.1:{port}", jwks)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            if self.path == "/.well-known/openid-configuration":
                body = {"issuer": issuer.url, "jwks_uri": issuer.url + "/jwks.json"}
            elif self.path == "/jwks.json":
                issuer.jwks_fetches += 1
                body = {"keys": issuer.jwks}
            else:
                self.send_error(404)
                return
            data = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            return None

    issuer.httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    threading.Thread(target=issuer.httpd.serve_forever, daemon=True).start()
    return issuer


@pytest.fixture(scope="module")
def issuer() -> Iterator[Issuer]:
    issuer = _serve_issuer([_jwk(RSA_KEY, "rsa-1"), _jwk(EC_KEY, "ec-1")])
    yield issuer
    assert issuer.httpd is not None
    issuer.httpd.shutdown()


def _config(issuer: Issuer) -> str:
    # Keycloak-style nested roles, mapped from Azure-style names (an "owner"
    # value grants read, write and delete, as DICOM Data Owner does).
    return f"""
[cors]
origins = ["{V}"]
headers = ["Authorization", "Content-Type"]
methods = ["GET", "HEAD", "POST", "PUT", "DELETE"]
allow_credentials = false

[auth]
issuer = "{issuer.url}"
audience = ["{AUDIENCE}", "other-name-of-this-server"]
roles_claim = "realm_access.roles"
leeway_seconds = 5

[auth.role_map]
reader = ["DICOM.Reader", "DICOM.Owner"]
writer = ["DICOM.Writer", "DICOM.Owner"]
deleter = ["DICOM.Deleter", "DICOM.Owner"]
admin = ["DICOM.Admin"]

[auth.api_keys]
scripts = "{FULL_KEY}"

[auth.api_keys.viewer]
key = "{READ_KEY}"
roles = ["reader"]
"""


@pytest.fixture(scope="module")
def server(
    issuer: Issuer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    server = start_server(tmp_path_factory.mktemp("oidc"), _config(issuer))
    yield server
    server.stop()


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _roles(*values: str) -> dict[str, Any]:
    return {"realm_access": {"roles": list(values)}}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _forged(issuer: Issuer, alg: str, secret: bytes | None) -> str:
    """A token signed with `alg` by hand (PyJWT refuses to make these)."""
    now = int(time.time())
    header = _b64(json.dumps({"alg": alg, "typ": "JWT", "kid": "rsa-1"}).encode())
    claims = {"iss": issuer.url, "aud": AUDIENCE, "sub": "mallory", "exp": now + 600}
    payload = _b64(json.dumps({**claims, **_roles("DICOM.Owner")}).encode())
    signing_input = f"{header}.{payload}".encode()
    if secret is None:
        return f"{header}.{payload}."
    signature = hmac.new(secret, signing_input, hashlib.sha256).digest()
    return f"{header}.{payload}.{_b64(signature)}"


def _challenge(response: httpx.Response) -> str:
    return response.headers.get("www-authenticate", "")


# --- tokens accepted and refused -------------------------------------------


@pytest.mark.parametrize(
    ("key", "kid", "alg"), [(RSA_KEY, "rsa-1", "RS256"), (EC_KEY, "ec-1", "ES256")]
)
def test_valid_tokens(
    server: Server, issuer: Issuer, key: Any, kid: str, alg: str
) -> None:
    token = issuer.token(_roles("DICOM.Reader"), key=key, kid=kid, alg=alg)

    response = httpx.get(f"{server.root}/studies", headers=_bearer(token))

    assert response.status_code == 200


def test_missing_token_gets_a_bare_challenge(server: Server, issuer: Issuer) -> None:
    response = httpx.get(f"{server.root}/studies")

    assert response.status_code == 401
    assert _challenge(response) == 'Bearer realm="dicomhub"'
    assert issuer.url in response.text


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        ({"exp": int(time.time()) - 3600}, "expired"),
        ({"nbf": int(time.time()) + 3600}, "not valid yet"),
        ({"aud": "someone-else-entirely"}, "not meant for this server"),
        ({"iss": "https://evil-issuer.example"}, "another issuer"),
        ({"exp": None}, "lacks the exp claim"),
    ],
    ids=["expired", "not-yet-valid", "wrong-audience", "wrong-issuer", "no-exp"],
)
def test_refused_claims(
    server: Server, issuer: Issuer, claims: dict[str, Any], reason: str
) -> None:
    token = issuer.token({**_roles("DICOM.Owner"), **claims})

    response = httpx.get(f"{server.root}/studies", headers=_bearer(token))

    assert response.status_code == 401
    challenge = _challenge(response)
    assert challenge.startswith('Bearer realm="dicomhub", error="invalid_token"')
    assert reason in challenge
    assert reason in response.text
    # Claims are never echoed back.
    for text in (challenge, response.text):
        assert "someone-else-entirely" not in text
        assert "evil-issuer" not in text


def test_wrong_signature(server: Server, issuer: Issuer) -> None:
    token = issuer.token(_roles("DICOM.Owner"), key=OTHER_RSA_KEY, kid="rsa-1")

    response = httpx.get(f"{server.root}/studies", headers=_bearer(token))

    assert response.status_code == 401
    assert "signature does not verify" in _challenge(response)


def test_tampered_payload(server: Server, issuer: Issuer) -> None:
    header, _, signature = issuer.token(_roles("DICOM.Reader")).split(".")
    claims = {"iss": issuer.url, "aud": AUDIENCE, "exp": int(time.time()) + 600}
    payload = _b64(json.dumps({**claims, **_roles("DICOM.Admin")}).encode())

    response = httpx.get(
        server.url + "/admin/cors", headers=_bearer(f"{header}.{payload}.{signature}")
    )

    assert response.status_code == 401
    assert "signature does not verify" in _challenge(response)


def test_alg_none_is_refused(server: Server, issuer: Issuer) -> None:
    response = httpx.get(
        f"{server.root}/studies", headers=_bearer(_forged(issuer, "none", None))
    )

    assert response.status_code == 401
    assert "algorithm this server refuses" in _challenge(response)


def test_hs256_with_the_public_key_as_secret_is_refused(
    server: Server, issuer: Issuer
) -> None:
    """The classic key-confusion attack (RFC 8725 §2.1)."""
    pem = RSA_KEY.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    for secret in (pem, json.dumps(_jwk(RSA_KEY, "rsa-1")).encode()):
        token = _forged(issuer, "HS256", secret)

        response = httpx.delete(
            f"{server.root}/studies/1.2.826.0.1.3680043.9.9", headers=_bearer(token)
        )

        assert response.status_code == 401
        assert "algorithm this server refuses" in _challenge(response)


def test_a_jwt_shaped_token_goes_to_oidc_and_others_to_api_keys(
    server: Server,
) -> None:
    shaped = httpx.get(f"{server.root}/studies", headers=_bearer("abc.def.ghi"))
    key_like = httpx.get(f"{server.root}/studies", headers=_bearer("not-a-key-at-all"))

    assert shaped.status_code == 401
    assert "not a well-formed JWT" in _challenge(shaped)
    assert key_like.status_code == 401
    assert "not a valid API key" in _challenge(key_like)


def test_other_schemes_are_refused(server: Server) -> None:
    response = httpx.get(f"{server.root}/studies", auth=("user", "password"))

    assert response.status_code == 401
    assert 'error="invalid_token"' in _challenge(response)


# --- roles -------------------------------------------------------------------

ENDPOINTS = ["qido", "wado", "stow", "delete", "admin-get", "admin-put", "health"]
ALLOWED = {
    "DICOM.Reader": {"qido", "wado", "health"},
    "DICOM.Writer": {"stow", "health"},
    "DICOM.Deleter": {"delete", "health"},
    "DICOM.Admin": {"qido", "wado", "admin-get", "admin-put", "health"},
    "DICOM.Owner": {"qido", "wado", "stow", "delete", "health"},
    "unmapped-role": {"health"},
}
NEEDED = {
    "qido": "'reader' or 'admin'",
    "wado": "'reader' or 'admin'",
    "stow": "'writer'",
    "delete": "'deleter'",
    "admin-get": "'admin'",
    "admin-put": "'admin'",
}
OK = {"qido": 200, "wado": 200, "stow": 200, "delete": 204}


def _call(server: Server, endpoint: str, headers: dict[str, str]) -> httpx.Response:
    full = _bearer(FULL_KEY)
    if endpoint == "health":
        return httpx.get(server.url + "/health", headers=headers)
    if endpoint == "qido":
        return httpx.get(f"{server.root}/studies", headers=headers)
    if endpoint == "stow":
        return stow(server.root, [fresh("CT_small.dcm")], headers=headers)
    if endpoint.startswith("admin"):
        current = httpx.get(server.url + "/admin/cors", headers=full).json()
        if endpoint == "admin-get":
            return httpx.get(server.url + "/admin/cors", headers=headers)
        return httpx.put(server.url + "/admin/cors", json=current, headers=headers)

    ct = fresh("CT_small.dcm")
    assert stow(server.root, [ct], headers=full).status_code == 200
    study = f"{server.root}/studies/{ct.StudyInstanceUID}"
    if endpoint == "delete":
        return httpx.delete(study, headers=headers)
    return httpx.get(
        f"{study}/series/{ct.SeriesInstanceUID}/instances/{ct.SOPInstanceUID}",
        headers={"Accept": "multipart/related; type=application/dicom", **headers},
    )


@pytest.mark.parametrize("role", sorted(ALLOWED))
@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_role_matrix(server: Server, issuer: Issuer, role: str, endpoint: str) -> None:
    token = issuer.token(_roles(role))

    response = _call(server, endpoint, _bearer(token))

    if endpoint in ALLOWED[role]:
        assert response.status_code == OK.get(endpoint, 200), response.text
    else:
        assert response.status_code == 403, response.text
        challenge = _challenge(response)
        assert 'error="insufficient_scope"' in challenge
        assert f"needs the role {NEEDED[endpoint]}" in challenge
        assert f"needs the role {NEEDED[endpoint]}" in response.text


def test_roles_claim_as_a_string_and_several_values(
    server: Server, issuer: Issuer
) -> None:
    both = issuer.token(_roles("DICOM.Writer", "DICOM.Admin"))
    assert _call(server, "stow", _bearer(both)).status_code == 200
    assert _call(server, "admin-get", _bearer(both)).status_code == 200

    as_text = issuer.token({"realm_access": {"roles": "DICOM.Reader"}})
    assert _call(server, "qido", _bearer(as_text)).status_code == 200
    assert _call(server, "stow", _bearer(as_text)).status_code == 403


def test_no_roles_claim_means_no_roles(server: Server, issuer: Issuer) -> None:
    token = issuer.token({"roles": ["DICOM.Owner"]})  # not the configured claim

    assert _call(server, "qido", _bearer(token)).status_code == 403


def test_api_key_roles(server: Server) -> None:
    viewer = _bearer(READ_KEY)
    assert _call(server, "qido", viewer).status_code == 200
    assert _call(server, "stow", viewer).status_code == 403
    assert _call(server, "admin-get", viewer).status_code == 403

    scripts = _bearer(FULL_KEY)
    for endpoint in ENDPOINTS:
        assert _call(server, endpoint, scripts).status_code == OK.get(endpoint, 200)


def test_the_audit_log_names_the_subject(server: Server, issuer: Issuer) -> None:
    token = issuer.token({**_roles("DICOM.Admin"), "sub": "alice-the-admin"})

    response = _call(server, "admin-put", _bearer(token))

    assert response.status_code == 200
    audit = [line for line in server.log().splitlines() if "dicomhub.audit" in line]
    assert "alice-the-admin" in audit[-1]
    assert token not in server.log()


def test_refused_admin_token_is_audited(server: Server, issuer: Issuer) -> None:
    token = issuer.token({**_roles("DICOM.Reader"), "sub": "bob-the-reader"})

    response = _call(server, "admin-put", _bearer(token))

    assert response.status_code == 403
    audit = [line for line in server.log().splitlines() if "dicomhub.audit" in line]
    assert "refused PUT /admin/cors" in audit[-1]
    assert "(bob-the-reader): 403" in audit[-1]


# --- CORS on refusals ----------------------------------------------------------


def _items(value: str) -> set[str]:
    return {item.strip().lower() for item in value.split(",") if item.strip()}


@pytest.mark.parametrize("case", ["missing", "expired", "forbidden"])
def test_refusals_carry_cors_headers(server: Server, issuer: Issuer, case: str) -> None:
    headers = {"Origin": V}
    if case == "expired":
        headers |= _bearer(issuer.token({"exp": int(time.time()) - 3600}))
    if case == "forbidden":
        headers |= _bearer(issuer.token(_roles("DICOM.Writer")))

    response = httpx.get(f"{server.root}/studies", headers=headers)

    assert response.status_code == (403 if case == "forbidden" else 401)
    assert response.headers["access-control-allow-origin"] == V
    assert "origin" in _items(response.headers["vary"])
    assert _challenge(response).startswith("Bearer")
    assert "www-authenticate" in _items(
        response.headers["access-control-expose-headers"]
    )


# --- key rotation and a local JWK Set ------------------------------------------


def test_unknown_kid_refetches_the_jwks_once(tmp_path: Path) -> None:
    issuer = _serve_issuer([_jwk(RSA_KEY, "rsa-1")])
    config = f"""
[auth]
issuer = "{issuer.url}"
audience = "{AUDIENCE}"
"""
    server = start_server(tmp_path, config)
    try:
        reader = {"roles": "reader"}
        first = issuer.token(reader)
        assert httpx.get(f"{server.root}/studies", headers=_bearer(first)).is_success
        fetched = issuer.jwks_fetches

        # The issuer rotates: a new key, the old one withdrawn.
        new_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        issuer.jwks = [_jwk(new_key, "rsa-2")]
        rotated = issuer.token(reader, key=new_key, kid="rsa-2")
        response = httpx.get(f"{server.root}/studies", headers=_bearer(rotated))

        assert response.status_code == 200
        assert issuer.jwks_fetches == fetched + 1

        # A second unknown kid within the minute fetches nothing more.
        unknown = issuer.token(reader, key=new_key, kid="rsa-3")
        response = httpx.get(f"{server.root}/studies", headers=_bearer(unknown))

        assert response.status_code == 401
        assert "no signing key" in _challenge(response)
        assert issuer.jwks_fetches == fetched + 1

        # The withdrawn key no longer signs anything.
        old = httpx.get(f"{server.root}/studies", headers=_bearer(first))
        assert old.status_code == 401
    finally:
        server.stop()
        assert issuer.httpd is not None
        issuer.httpd.shutdown()


def test_jwks_file_and_jwks_uri(tmp_path: Path) -> None:
    issuer = Issuer("https://login.example.org/realms/x", [])
    jwks_file = tmp_path / "jwks.json"
    jwks_file.write_text(json.dumps({"keys": [_jwk(EC_KEY, "ec-1")]}))
    config = f"""
[auth]
issuer = "{issuer.url}"
audience = "{AUDIENCE}"
jwks_file = "{jwks_file}"
"""
    server = start_server(tmp_path / "srv", config)
    try:
        token = issuer.token({"roles": ["reader"]}, key=EC_KEY, kid="ec-1", alg="ES256")
        response = httpx.get(f"{server.root}/studies", headers=_bearer(token))
        assert response.status_code == 200

        missing = httpx.get(f"{server.root}/studies")
        assert "API key" not in missing.text
    finally:
        server.stop()


# --- settings checked at start ---------------------------------------------------


@pytest.mark.parametrize(
    ("table", "key"),
    [
        ('issuer = "http://login.example.org"\naudience = "x"\n', "auth.issuer"),
        ('issuer = "https://login.example.org"\n', "auth.audience"),
        ('audience = "x"\n', "auth.audience"),
        (
            'issuer = "https://login.example.org"\naudience = "x"\n'
            "leeway_seconds = 9999\n",
            "auth.leeway_seconds",
        ),
        (
            'issuer = "https://login.example.org"\naudience = "x"\n'
            'role_map = { superuser = ["x"] }\n',
            "auth.role_map.superuser",
        ),
        (
            'issuer = "https://login.example.org"\naudience = "x"\n'
            'jwks_file = "/nonexistent/jwks.json"\n',
            "auth.jwks_file",
        ),
        (
            'issuer = "https://login.example.org"\naudience = "x"\n'
            'jwks_uri = "ftp://login.example.org/keys"\n',
            "auth.jwks_uri",
        ),
        (
            'api_keys = { ro = { key = "0123456789abcdef0", roles = ["root"] } }\n',
            "auth.api_keys.ro.roles",
        ),
        ('roles_claim = "realm_access..roles"\n', "auth.roles_claim"),
        # Read as an access token while an issuer is set: never usable.
        (
            'issuer = "http://127.0.0.1:9"\naudience = "x"\n'
            'api_keys = { dotted = "0123456789abcdef0.part-two.part-three" }\n',
            "auth.api_keys.dotted",
        ),
    ],
)
def test_bad_oidc_settings_stop_the_server(
    tmp_path: Path, table: str, key: str
) -> None:
    with pytest.raises(ServerFailed) as info:
        start_server(tmp_path, "[auth]\n" + table)

    assert info.value.returncode == 2
    assert key in info.value.output
    assert "0123456789abcdef0" not in info.value.output


def test_issuer_unreachable_gives_503(tmp_path: Path) -> None:
    """No keys could be fetched: no token can be checked, which is not the
    client's fault (and not a 500)."""
    issuer = Issuer(f"http://127.0.0.1:{free_port()}", [])  # nothing listens
    config = f"""
[auth]
issuer = "{issuer.url}"
audience = "{AUDIENCE}"
"""
    server = start_server(tmp_path, config)
    try:
        token = issuer.token({"roles": ["reader"]})
        response = httpx.get(f"{server.root}/studies", headers=_bearer(token))

        assert response.status_code == 503
        assert "signing keys cannot be fetched" in response.text
        assert response.headers["retry-after"] == "30"
        assert "cannot fetch the issuer's signing keys" in server.log()
        assert httpx.get(server.url + "/health").status_code == 200
    finally:
        server.stop()
