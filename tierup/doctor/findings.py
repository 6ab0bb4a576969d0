"""One check's outcome, and how an error of the AWS SDK becomes "could not check" rather than a crash.

No I/O here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Status = Literal["ok", "problem", "unchecked"]

#: error codes that mean these credentials may not look, not that something is wrong
_NOT_ALLOWED = frozenset({"AccessDenied", "AccessDeniedException", "UnauthorizedOperation",
                          "UnrecognizedClientException", "InvalidClientTokenId", "ExpiredToken",
                          "ExpiredTokenException", "AuthFailure", "SignatureDoesNotMatch"})


@dataclass(frozen=True)
class Finding:
    check: str
    status: Status
    detail: str
    #: what to do about a problem (empty when ok or unchecked)
    fix: str = ""


def ok(check: str, detail: str) -> Finding:
    return Finding(check, "ok", detail)


def problem(check: str, detail: str, fix: str) -> Finding:
    return Finding(check, "problem", detail, fix)


def unchecked(check: str, reason: str) -> Finding:
    return Finding(check, "unchecked", reason)


def error_code(exc: BaseException) -> str:
    """The AWS error code of a botocore ``ClientError`` (empty for anything else)."""
    response = getattr(exc, "response", None)
    return str((response or {}).get("Error", {}).get("Code", "")) if isinstance(response, dict) else ""


def offline_reason(exc: BaseException) -> str | None:
    """Why a call could not be made at all (no credentials, unreachable, not allowed), or None
    when the error is an answer from the service that a check should interpret itself."""
    from botocore import exceptions as aws

    if isinstance(exc, (aws.NoCredentialsError, aws.PartialCredentialsError, aws.NoRegionError)):
        return f"no usable AWS credentials or region here ({type(exc).__name__})"
    if isinstance(exc, (aws.EndpointConnectionError, aws.ConnectTimeoutError, aws.ReadTimeoutError,
                        aws.ConnectionClosedError)):
        return f"AWS is unreachable from here ({type(exc).__name__})"
    if error_code(exc) in _NOT_ALLOWED:
        return f"these credentials may not look ({error_code(exc)})"
    return None
