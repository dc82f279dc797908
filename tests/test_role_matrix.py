"""The role matrix over every endpoint of the application.

The endpoints are not listed here: they are read from the route table of the
application `dicomhub.app.create_app` builds (DICOMweb routes under /v2 and
/v1, the change feed, the admin API and page, /health), so a route added later
is covered as soon as it exists. Each method of each path is sent by every
principal (API keys of each role, access tokens from a real OpenID issuer, and
no token at all) to a real server, and the answer must be a refusal (401 or
403) exactly when `auth.action_for` names an action the principal's roles do
not grant (RFC 6750 §3.1), and anything else but a 5xx otherwise.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from pydicom.dataset import Dataset
from starlette.applications import Starlette
from starlette.routing import BaseRoute, Mount, Route

from dicomhub.app import create_app
from dicomhub.auth import GRANTS, Action, OpenAccess, Role, action_for
from dicomhub.config import load_settings

from .conftest import Server, start_server
from .dicomdata import fresh, multipart_body, stow, to_bytes
from .test_oidc import AUDIENCE, EC_KEY, RSA_KEY, Issuer, _jwk, _serve_issuer

KEYS = {role: f"role-matrix-{role.value}-key-0123456789" for role in Role}


def _route_table() -> list[BaseRoute]:
    """The routes of the application as `create_app` builds it, found under
    its middleware layers."""
    with tempfile.TemporaryDirectory() as tmp:
        layer: object = create_app(
            load_settings(None, environ={}, data_dir=Path(tmp)), OpenAccess()
        )
        while not isinstance(layer, Starlette):
            layer = layer.app  # type: ignore[attr-defined]
        layer.state.services.index.engine.dispose()
        return list(layer.routes)


def _endpoints(routes: list[BaseRoute], prefix: str = "") -> Iterator[tuple[str, str]]:
    """(method, path template) for each method of each route."""
    for route in routes:
        if isinstance(route, Mount):
            if route.routes:
                yield from _endpoints(list(route.routes), prefix + route.path)
            else:
                # A mounted app (the admin page's static files): one file.
                for method in ("GET", "HEAD"):
                    yield method, f"{prefix}{route.path}/{{file}}"
        elif isinstance(route, Route):
            for method in sorted(route.methods or ()):
                yield method, prefix + route.path


ENDPOINTS = sorted(set(_endpoints(_route_table())))


@dataclass(frozen=True)
class Principal:
    name: str
    roles: frozenset[Role]
    token: str | None  # an API key or an access token; None sends none


@dataclass(frozen=True)
class Stored:
    ds: Dataset
    body: bytes
    content_type: str


@pytest.fixture(scope="module")
def issuer() -> Iterator[Issuer]:
    issuer = _serve_issuer([_jwk(RSA_KEY, "rsa-1"), _jwk(EC_KEY, "ec-1")])
    yield issuer
    assert issuer.httpd is not None
    issuer.httpd.shutdown()


@pytest.fixture(scope="module")
def server(
    issuer: Issuer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    keys = "".join(
        f'\n[auth.api_keys.{role.value}]\nkey = "{key}"\nroles = ["{role.value}"]\n'
        for role, key in KEYS.items()
    )
    config = f"""
[auth]
issuer = "{issuer.url}"
audience = "{AUDIENCE}"
{keys}"""
    server = start_server(tmp_path_factory.mktemp("role-matrix"), config)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def principals(issuer: Issuer) -> list[Principal]:
    def token(*roles: Role) -> str:
        return issuer.token({"roles": [role.value for role in roles]})

    return [
        *(Principal(f"{r.value} key", frozenset({r}), KEYS[r]) for r in Role),
        Principal("reader token", frozenset({Role.READER}), token(Role.READER)),
        Principal("admin token", frozenset({Role.ADMIN}), token(Role.ADMIN)),
        Principal("token without roles", frozenset(), token()),
        Principal("no token", frozenset(), None),
    ]


@pytest.fixture(scope="module")
def stored(server: Server) -> Stored:
    ds = fresh("CT_small.dcm")
    body, content_type = multipart_body([to_bytes(ds)])
    _store(server, ds)
    return Stored(ds, body, content_type)


def _store(server: Server, ds: Dataset) -> None:
    response = stow(server.root, [ds], headers=_bearer(KEYS[Role.WRITER]))
    assert response.status_code == 200, response.text


def _bearer(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}


def _filled(template: str, ds: Dataset) -> str:
    """The path with its parameters set to the stored instance's UIDs (and a
    frame number, a file of the admin page); any other parameter gets "1"."""
    values = {
        "study": ds.StudyInstanceUID,
        "series": ds.SeriesInstanceUID,
        "instance": ds.SOPInstanceUID,
        "frames": "1",
        "file": "index.html",
    }
    return re.sub(
        r"\{(\w+)(?::\w+)?\}", lambda m: values.get(m.group(1), "1"), template
    )


def _granted(roles: frozenset[Role], action: Action) -> bool:
    return action is Action.PUBLIC or any(action in GRANTS[role] for role in roles)


def test_every_part_of_the_application_is_enumerated() -> None:
    paths = {path for _, path in ENDPOINTS}

    assert "/health" in paths
    assert "/admin/" in paths
    assert "/admin/cors" in paths
    for root in ("/v2", "/v1"):
        assert f"{root}/changefeed" in paths
        assert ("POST", f"{root}/studies") in ENDPOINTS
        assert ("PUT", f"{root}/studies/{{study}}") in ENDPOINTS
        assert ("DELETE", f"{root}/studies/{{study}}") in ENDPOINTS
    assert len(ENDPOINTS) > 100


@pytest.mark.parametrize(("method", "template"), ENDPOINTS, ids=" ".join)
def test_role_matrix(
    server: Server,
    principals: list[Principal],
    stored: Stored,
    method: str,
    template: str,
) -> None:
    path = _filled(template, stored.ds)
    action = action_for(method, path)
    body = stored.body if method in ("POST", "PUT") else None
    wrong = []
    with httpx.Client(timeout=60) as client:
        for principal in principals:
            headers = _bearer(principal.token)
            if body is not None:
                headers["Content-Type"] = stored.content_type
            response = client.request(
                method, server.url + path, content=body, headers=headers
            )
            status = response.status_code
            if method == "DELETE" and status == 204:
                # Put the instance back for the principals that follow.
                _store(server, stored.ds)

            if not _granted(principal.roles, action):
                expected = "401" if principal.token is None else "403"
                ok = str(status) == expected
            else:
                expected = "neither 401, 403 nor 5xx"
                ok = status not in (401, 403) and status < 500
            if not ok:
                wrong.append(
                    f"{principal.name}: {status} ({action.value}: expected "
                    f"{expected}) {response.text[:120]!r}"
                )

    assert not wrong, f"{method} {path}:\n" + "\n".join(wrong)
