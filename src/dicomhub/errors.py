"""The errors dicomhub turns into HTTP answers.

    DicomhubError            any failure a request can meet; carries an HTTP status
    ├── BadRequest           400: a parameter or body that cannot be understood
    ├── Unauthorized         401: no or bad credentials (sent with WWW-Authenticate)
    ├── Forbidden            403
    ├── NotFound             404: no such study, series, instance or frame
    ├── MethodNotAllowed     405
    ├── NotAcceptable        406: no representation matches Accept (PS3.18 §8.7.5)
    ├── Conflict             409
    ├── PayloadTooLarge      413: the body is over the configured limit
    ├── UnsupportedMediaType 415: the request body is not of a supported type
    └── ServiceUnavailable   503: the index or the storage does not answer

Messages say what was wrong and what to do; they never carry patient data.
"""

from __future__ import annotations


class DicomhubError(Exception):
    """Base class; `status` is the HTTP status code of the answer."""

    status = 500

    def __init__(self, message: str, *, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.message = message
        self.headers = headers or {}


class BadRequest(DicomhubError):
    status = 400


class Unauthorized(DicomhubError):
    status = 401


class Forbidden(DicomhubError):
    status = 403


class NotFound(DicomhubError):
    status = 404


class MethodNotAllowed(DicomhubError):
    status = 405


class NotAcceptable(DicomhubError):
    status = 406


class Conflict(DicomhubError):
    status = 409


class PayloadTooLarge(DicomhubError):
    status = 413


class UnsupportedMediaType(DicomhubError):
    status = 415


class ServiceUnavailable(DicomhubError):
    status = 503
