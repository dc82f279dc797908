"""Schemathesis against the admin API's own OpenAPI description (docs/admin.md).

A real server with an API key: the description is loaded from its
``/admin/openapi.json`` and every operation is fed generated requests, valid
and invalid, with the key. Each answer must not be a 5xx, must carry a status
the description lists, and must match the schema given for that status.
Derandomized and short by default; ``DICOMHUB_FUZZ_EXAMPLES`` raises the
number of examples per operation (fuzz/run, fuzz/README.md).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

import httpx
import jsonschema_rs
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    ignored_auth,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.specs.openapi.definitions import OPENAPI_30

from .conftest import Server, start_server

EXAMPLES = int(os.environ.get("DICOMHUB_FUZZ_EXAMPLES", "40"))

KEY = "fuzz-admin-key-0123456789"

CONFIG = f"""
[cors]
origins = ["https://viewer.example.org"]
headers = ["Authorization"]
methods = ["GET", "HEAD"]
max_age = 600

[auth.api_keys]
fuzz = "{KEY}"
"""

AUTH = {"Authorization": f"Bearer {KEY}"}

SITE_HEADERS = ("Origin", "Sec-Fetch-Site")


@pytest.fixture(scope="module")
def admin_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = start_server(tmp_path_factory.mktemp("fuzz-admin"), CONFIG)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def admin_schema(admin_server: Server) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_url(
        admin_server.url + "/admin/openapi.json", headers=AUTH
    )


# Every operation the description lists, each with valid and invalid requests;
# schemathesis leaves out the path it loaded the description from.
# (schemathesis.pytest.from_fixture fails on pytest 9.2 in schemathesis 4.32.5:
# it sets Function._nodeid, which pytest 9 no longer has; so the strategies are
# drawn here with Hypothesis' own @given.)
OPERATIONS = [
    ("/admin/cors", "GET"),
    ("/admin/cors", "HEAD"),
    ("/admin/cors", "PUT"),
    ("/admin/cors", "DELETE"),
]


def test_every_operation_is_fuzzed(admin_schema: schemathesis.BaseSchema) -> None:
    listed = {
        (result.ok().path, result.ok().method.upper())
        for result in admin_schema.get_all_operations()
    }

    assert listed == set(OPERATIONS)


@pytest.mark.parametrize("mode", list(GenerationMode), ids=str)
@pytest.mark.parametrize(("path", "method"), OPERATIONS, ids="{0[1]} {0[0]}".format)
def test_admin_api_answers_as_described(
    admin_schema: schemathesis.BaseSchema, path: str, method: str, mode: GenerationMode
) -> None:
    operation = admin_schema[path][method]

    @given(case=operation.as_strategy(generation_mode=mode), script=st.booleans())
    @settings(
        max_examples=EXAMPLES,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def answers_as_described(case: schemathesis.Case, script: bool) -> None:
        # Half the changes come as from a script (no Origin, no Sec-Fetch-Site),
        # so that the body reaches the validator instead of the 403 for other
        # sites (docs/admin.md, "Changes from other sites").
        if script and case.headers:
            for name in SITE_HEADERS:
                case.headers.pop(name, None)

        case.call_and_validate(
            headers=AUTH,
            checks=[
                not_a_server_error,
                status_code_conformance,
                response_schema_conformance,
                ignored_auth,
            ],
        )

    answers_as_described()


# What schemathesis does not vary: the media type and bytes that are not JSON.
RAW_CONTENT_TYPES = st.sampled_from(
    [
        "application/json",
        "application/json; charset=utf-8",
        "APPLICATION/JSON",
        "application/json;",
        "application/jsonx",
        "text/json",
        "application/x-www-form-urlencoded",
        "",
    ]
)
RAW_BODIES = st.one_of(
    st.binary(max_size=300),
    st.sampled_from(
        [
            b"[" * 10_000,
            b'{"a":' * 5_000,
            b'{"origins": NaN}',
            b'{"maxAge": 1e308}',
            b'{"maxAge": ' + b"9" * 5_000 + b"}",
            b'{"maxAge": 99999999999999999999999}',
            b'{"maxAge": 1, "maxAge": 2}',
            b"\xff\xfe{\x00}\x00",
            b" " * 70_000,
        ]
    ),
)


@given(content_type=RAW_CONTENT_TYPES, body=RAW_BODIES)
@settings(
    max_examples=EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_put_raw_bodies(admin_server: Server, content_type: str, body: bytes) -> None:
    answer = httpx.put(
        admin_server.url + "/admin/cors",
        content=body,
        headers={**AUTH, "Content-Type": content_type},
    )

    assert answer.status_code in (200, 400, 413, 415), answer.text
    assert answer.headers["content-type"] == "application/json"


# Bodies the fuzzing found to answer 500 once: json.loads reads 1e999 as
# float('inf') and keeps a lone surrogate escape, and a refusal repeating either
# could not be encoded. They are refused as not JSON (RFC 8259 §6, §8.2).
@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b'{"maxAge": 1e999}', id="inf"),
        pytest.param(b'{"maxAge": -1e999}', id="-inf"),
        pytest.param(rb'{"origins": ["\ud800"]}', id="surrogate-value"),
        pytest.param(rb'{"\udfff": 1}', id="surrogate-key"),
    ],
)
def test_put_refuses_what_json_cannot_carry(
    server_factory: Callable[..., Server], body: bytes
) -> None:
    """A 400 saying the body is not JSON, not a 500."""
    server = server_factory(CONFIG)

    answer = httpx.put(
        server.url + "/admin/cors",
        content=body,
        headers={**AUTH, "Content-Type": "application/json"},
    )

    assert answer.status_code == 400
    assert "not JSON" in answer.text
    assert "Traceback" not in server.log()


def test_the_description_is_valid_openapi_30(admin_server: Server) -> None:
    """Checked against the OpenAPI 3.0 JSON Schema that schemathesis ships."""
    document = httpx.get(admin_server.url + "/admin/openapi.json", headers=AUTH)
    validator = jsonschema_rs.Draft4Validator(OPENAPI_30)

    assert document.status_code == 200
    assert document.headers["content-type"] == "application/json"
    assert [error.message for error in validator.iter_errors(document.json())] == []


def test_the_description_needs_the_key(admin_server: Server) -> None:
    """The description is under /admin, so it is admin: RFC 6750 §3.1 401."""
    answer = httpx.get(admin_server.url + "/admin/openapi.json")

    assert answer.status_code == 401
    assert answer.headers["www-authenticate"].startswith("Bearer ")


def test_server_survives(admin_server: Server) -> None:
    """After the fuzzing above (same module server), /health still answers."""
    assert httpx.get(admin_server.url + "/health").status_code == 200
    assert "Traceback" not in admin_server.log()
