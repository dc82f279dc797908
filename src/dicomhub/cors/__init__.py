"""CORS configured as the Azure DICOM service configures it, checked per Fetch.

``parse_cors_settings`` validates the ``[cors]`` table into a `CorsPolicy`;
`PolicyHolder` keeps the policy in force and lets it change at run time;
`CORSMiddleware` answers preflights and puts the policy's headers on every
other answer. The rules are those of ``docs/cors.md``: settings in §4,
decisions D1-D17 in §5.
"""

from .middleware import CORSMiddleware, PolicyHolder
from .plan import CorsPlan, PreflightAnswer
from .policy import CorsConfigError, CorsPolicy, parse_cors_settings

__all__ = [
    "CORSMiddleware",
    "CorsConfigError",
    "CorsPlan",
    "CorsPolicy",
    "PolicyHolder",
    "PreflightAnswer",
    "parse_cors_settings",
]
