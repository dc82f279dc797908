"""The admin API's OpenAPI 3.0 description, served at ``/admin/openapi.json``.

Written by hand from `api` and `CorsPolicy.from_azure_json` (docs/admin.md):
every status code, header and body a request to ``/admin/cors`` can meet.
tests/test_fuzz_admin.py holds the server to it with schemathesis.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ..cors.policy import ALL_METHODS, LARGEST_MAX_AGE

# api imports this module for its route: its limits are read when the document
# is first built, not at import.
from . import api

# RFC 9110 §5.6.2: token = 1*tchar (cors.policy.TOKEN, anchored).
TOKEN_PATTERN = r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$"

# The body of every refusal of /admin/cors itself (api._refusal).
_REFUSAL = {"$ref": "#/components/schemas/Refusal"}

# The answer of the authorization layer (auth.AuthorizationMiddleware): text.
_AUTH_TEXT = {"text/plain": {"schema": {"type": "string"}}}
_OBJECT = {"type": "object"}
_CHALLENGE = "#/components/headers/WWW-Authenticate"


def _string_list(description: str, item: dict[str, Any] | None = None) -> dict:
    return {
        "type": "array",
        "items": {"type": "string", **(item or {})},
        "description": description,
    }


def _refusal(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "headers": {"Cache-Control": {"$ref": "#/components/headers/NoStore"}},
        "content": {"application/json": {"schema": _REFUSAL}},
    }


# Settings as answered: always all seven keys, in normal form.
CORS_SETTINGS = {
    "type": "object",
    "description": (
        "The CORS settings in force, in the Azure DICOM service's JSON shape plus "
        "exposeHeaders and allowPrivateNetwork (docs/cors.md §4), normalised."
    ),
    "required": [
        "origins",
        "headers",
        "methods",
        "maxAge",
        "allowCredentials",
        "exposeHeaders",
        "allowPrivateNetwork",
    ],
    "additionalProperties": False,
    "properties": {
        "origins": _string_list(
            '["*"] alone, or origins as browsers serialise them '
            "(RFC 6454 §6.2); [] means CORS is off."
        ),
        "headers": _string_list(
            '["*"] alone, or lower-case request header names.',
            {"pattern": TOKEN_PATTERN},
        ),
        "methods": {
            **_string_list(
                '["*"] alone (every method), or upper-case method names.',
                {"enum": ["*", *ALL_METHODS]},
            ),
            "minItems": 1,
        },
        "maxAge": {
            "type": "integer",
            "nullable": True,
            "minimum": 0,
            "maximum": LARGEST_MAX_AGE,
            "description": "Seconds a browser may cache a preflight; null: not set.",
        },
        "allowCredentials": {"type": "boolean"},
        "exposeHeaders": _string_list(
            "Response header names scripts may read, as given (never '*').",
            {"pattern": TOKEN_PATTERN},
        ),
        "allowPrivateNetwork": {"type": "boolean"},
    },
}


def _cors_settings_input() -> dict[str, Any]:
    """Settings as a PUT takes them: a key left out, or null, takes its default."""
    return {
        "type": "object",
        "description": (
            "Every key is optional; a key left out or null takes its default (not the "
            "value in force). The validator of the [cors] table applies "
            "(docs/cors.md §4): '*' cannot be mixed with names in origins, headers "
            'or methods; allowCredentials cannot be true with origins ["*"]; an '
            "origin is scheme://host[:port] with no path. Unknown keys are refused. "
            f"At most {api.MAX_BODY_BYTES} bytes, lists and objects nested at most "
            f"{api.MAX_DEPTH} deep, no key twice in one object, no NaN or Infinity."
        ),
        "additionalProperties": False,
        "properties": {
            "origins": {
                **_string_list(
                    '["*"], or origins such as "https://viewer.example.org" '
                    "(default [])"
                ),
                "nullable": True,
            },
            "headers": {
                **_string_list(
                    '["*"], or request header names (default [])',
                    {"pattern": TOKEN_PATTERN},
                ),
                "nullable": True,
            },
            "methods": {
                "description": (
                    "Method names from DELETE, GET, HEAD, OPTIONS, PATCH, POST, PUT in "
                    'any case, ["*"], ["all"], or the string "*" or "all" '
                    '(default ["GET", "HEAD"])'
                ),
                "oneOf": [
                    {
                        "type": "array",
                        "minItems": 1,
                        "items": {"type": "string", "pattern": TOKEN_PATTERN},
                    },
                    {
                        "type": "string",
                        "nullable": True,
                        "enum": ["*", "all", "ALL", "All", None],
                    },
                ],
            },
            "maxAge": {
                "type": "integer",
                "nullable": True,
                "minimum": 0,
                "maximum": LARGEST_MAX_AGE,
                "description": "Seconds (default: not set); above 7200, a warning.",
            },
            "allowCredentials": {"type": "boolean", "nullable": True},
            "exposeHeaders": {
                **_string_list(
                    "Response header names (default: the DICOMweb ones, docs/cors.md)",
                    {"pattern": TOKEN_PATTERN},
                ),
                "nullable": True,
            },
            "allowPrivateNetwork": {"type": "boolean", "nullable": True},
        },
    }


REFUSAL = {
    "type": "object",
    "required": ["message"],
    "description": (
        "What was wrong and what to do; key, value and rule when the validator "
        "refused a setting."
    ),
    "properties": {
        "message": {"type": "string"},
        "key": {"type": "string"},
        "value": {"description": "The refused value, any JSON value."},
        "rule": {"type": "string"},
    },
}


def _headers() -> dict[str, Any]:
    return {
        "ETag": {
            "required": True,
            "description": "The version of the settings in force in this process.",
            "schema": {"type": "string", "pattern": r'^"[0-9]+"$'},
        },
        "Last-Modified": {
            "description": "When that version was written (absent for version 0).",
            "schema": {"type": "string"},
        },
        "NoStore": {
            "required": True,
            "description": "Settings and refusals are never cached.",
            "schema": {"type": "string", "enum": ["no-store"]},
        },
        "Source": {
            "required": True,
            "description": (
                "admin: set through this API; config: the file and environment."
            ),
            "schema": {"type": "string", "enum": ["admin", "config"]},
        },
        "Stored": {
            "description": "The index holds settings that are not valid, not in force.",
            "schema": {"type": "string", "enum": ["invalid"]},
        },
        "Warning": {
            "description": (
                f'RFC 9111 §5.5 299 dicomhub "..."; at most {api.MAX_WARNING_FIELDS} '
                f"fields of at most {api.MAX_WARNING_CHARS} characters each."
            ),
            "schema": {"type": "string"},
        },
        "WWW-Authenticate": {
            "required": True,
            "description": "RFC 6750 §3 Bearer challenge.",
            "schema": {"type": "string", "pattern": "^Bearer "},
        },
    }


_SETTINGS_HEADERS = {
    "ETag": {"$ref": "#/components/headers/ETag"},
    "Last-Modified": {"$ref": "#/components/headers/Last-Modified"},
    "Cache-Control": {"$ref": "#/components/headers/NoStore"},
    "Dicomhub-Cors-Source": {"$ref": "#/components/headers/Source"},
    "Dicomhub-Cors-Stored": {"$ref": "#/components/headers/Stored"},
    "Warning": {"$ref": "#/components/headers/Warning"},
}


def _settings(description: str, body: bool = True) -> dict[str, Any]:
    answer: dict[str, Any] = {"description": description, "headers": _SETTINGS_HEADERS}
    if body:
        answer["content"] = {
            "application/json": {
                "schema": {"$ref": "#/components/schemas/CorsSettings"}
            }
        }
    return answer


def _without_body(answer: dict[str, Any]) -> dict[str, Any]:
    """The answer to HEAD: GET's, without content (RFC 9110 §9.3.2)."""
    return {key: value for key, value in answer.items() if key != "content"}


# RFC 6750 §3.1: 401 without or with a bad token, 403 for a key without admin.
_AUTH_ANSWERS = {
    "401": {
        "description": "No bearer token, or one that is not valid ([auth] is on).",
        "headers": {"WWW-Authenticate": {"$ref": _CHALLENGE}},
        "content": _AUTH_TEXT,
    },
    "403": {
        "description": "The token lacks the admin role.",
        "content": _AUTH_TEXT,
    },
    # hosts.HostCheckMiddleware, with [server] allowed_hosts (RFC 9110 §15.5.20).
    "421": {
        "description": "The Host header names no host of this server.",
        "content": _AUTH_TEXT,
    },
    # auth: an OpenID Connect issuer whose JWK Set cannot be fetched.
    "503": {
        "description": "The issuer's keys could not be fetched; try again.",
        "content": _AUTH_TEXT,
    },
}

# Sec-Fetch-Site (Fetch Metadata) and Origin: changes from other sites get 403.
_SITE_HEADERS = [
    {
        "name": "Sec-Fetch-Site",
        "in": "header",
        "required": False,
        "description": "Only same-origin and none are taken (Fetch Metadata).",
        "schema": {"type": "string"},
    },
    {
        "name": "Origin",
        "in": "header",
        "required": False,
        "description": "Without Sec-Fetch-Site, only this server's own origin.",
        "schema": {"type": "string"},
    },
]

_CHANGE_REFUSALS = {
    "403": {
        "description": (
            "The token lacks the admin role (text/plain), or the change came from "
            "a page on another site (JSON)."
        ),
        "content": {**_AUTH_TEXT, "application/json": {"schema": _REFUSAL}},
    },
    "409": _refusal("Other processes kept changing the settings; read and repeat."),
    "421": _AUTH_ANSWERS["421"],
    "503": {
        "description": (
            "The index did not answer, nothing was changed (JSON); or the "
            "issuer's keys could not be fetched (text/plain)."
        ),
        "content": {**_AUTH_TEXT, "application/json": {"schema": _REFUSAL}},
    },
}


@cache
def document() -> dict[str, Any]:
    """The OpenAPI 3.0 document (built once, after `api` is loaded)."""
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "dicomhub admin API",
            "version": "1",
            "description": (
                "The CORS settings while the server runs (docs/admin.md). With "
                "[auth] api_keys or an issuer, every request needs a bearer token "
                "with the admin role; without [auth] the API is open."
            ),
        },
        "security": [{"bearer": []}],
        "paths": {
            "/admin/cors": {
                "get": {
                    "operationId": "getCors",
                    "summary": "The CORS settings in force in this process.",
                    "responses": {
                        "200": _settings("The settings in force."),
                        **_AUTH_ANSWERS,
                    },
                },
                "head": {
                    "operationId": "headCors",
                    "summary": "The headers of GET, without the body.",
                    "responses": {
                        "200": _settings("The settings' headers.", body=False),
                        **{
                            status: _without_body(answer)
                            for status, answer in _AUTH_ANSWERS.items()
                        },
                    },
                },
                "put": {
                    "operationId": "putCors",
                    "summary": "Replace all the settings, here and on every replica.",
                    "parameters": _SITE_HEADERS,
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {
                                    "$ref": "#/components/schemas/CorsSettingsInput"
                                }
                            }
                        },
                    },
                    "responses": {
                        "200": _settings(
                            "Stored and in force; the settings normalised."
                        ),
                        "400": _refusal(
                            "Not JSON (or a key twice, NaN, nested too deep), or the "
                            "validator refused a setting (key, value, rule)."
                        ),
                        "401": _AUTH_ANSWERS["401"],
                        **_CHANGE_REFUSALS,
                        "413": _refusal(f"The body is over {api.MAX_BODY_BYTES} B."),
                        "415": _refusal("The body is not application/json."),
                    },
                },
                "delete": {
                    "operationId": "deleteCors",
                    "summary": "Hand the settings back to the configuration file.",
                    "parameters": _SITE_HEADERS,
                    "responses": {
                        "200": _settings("The configured settings, now in force."),
                        "401": _AUTH_ANSWERS["401"],
                        **_CHANGE_REFUSALS,
                    },
                },
            },
            "/admin/openapi.json": {
                "get": {
                    "operationId": "getOpenApi",
                    "summary": "This description.",
                    "responses": {
                        "200": {
                            "description": "The OpenAPI 3.0 document.",
                            "content": {"application/json": {"schema": _OBJECT}},
                        },
                        **_AUTH_ANSWERS,
                    },
                }
            },
        },
        "components": {
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "An API key or an OpenID Connect access token.",
                }
            },
            "schemas": {
                "CorsSettings": CORS_SETTINGS,
                "CorsSettingsInput": _cors_settings_input(),
                "Refusal": REFUSAL,
            },
            "headers": _headers(),
        },
    }


async def openapi_json(request: Request) -> Response:
    return JSONResponse(document())
