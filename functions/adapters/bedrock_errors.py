"""Bedrock's errors translated into tierup's tree: the one place that knows Bedrock error codes.

Errors reach the provider three ways: a ``ClientError`` when the call is made, an
``EventStreamError`` (a ``ClientError`` whose code is the event name, e.g.
``throttlingException``) while a ``ConverseStream`` answer is read, and transport errors
(timeouts, lost connections). Bedrock's own message is passed on only for a rejected request,
which the client can fix; other messages can name the account's roles, so they stay in the
chained exception for the logs.

Errors that provably came before the request reached the model (``reached_no_model``: no
connection, or throttled at admission) may be retried; any other error after the request was
sent says ``may_have_generated``, so the call is never repeated and is billed.

botocore is imported only when an error is being translated.
"""

from __future__ import annotations

from ..core.errors import (ProviderAccessDeniedError, ProviderBadRequestError, ProviderError,
                           ProviderThrottledError, ProviderTimeoutError, ProviderUnavailableError)

#: Bedrock error code -> tierup error; codes not listed (ModelErrorException,
#: InternalServerException, ModelStreamErrorException, ...) are a plain ``ProviderError`` (502)
ERROR_CODES: dict[str, type[ProviderError]] = {
    "ValidationException": ProviderBadRequestError,
    "AccessDeniedException": ProviderAccessDeniedError,
    "ThrottlingException": ProviderThrottledError,
    "ServiceQuotaExceededException": ProviderThrottledError,
    "ModelTimeoutException": ProviderTimeoutError,
    "ServiceUnavailableException": ProviderUnavailableError,
    "ModelNotReadyException": ProviderUnavailableError,
}


def error_for_code(code: str, message: str = "") -> ProviderError:
    """The tierup error for a Bedrock error code (stream events spell it ``throttlingException``)."""
    code = code[:1].upper() + code[1:]
    error_class = ERROR_CODES.get(code, ProviderError)
    if error_class is ProviderBadRequestError:
        return ProviderBadRequestError(f"Bedrock rejected the request: {message or code}")
    return error_class(f"Bedrock failed the request ({code})")


def error_from_event(event: dict) -> ProviderError | None:
    """The error an in-stream exception event carries (``{"throttlingException": {...}}``), if any."""
    for name, body in event.items():
        if name.endswith("Exception"):
            return error_for_code(name, (body or {}).get("message", ""))
    return None


#: error codes Bedrock answers with at admission, before the model runs
PRE_GENERATION_CODES = frozenset({"ThrottlingException"})


def reached_no_model(exc: BaseException) -> bool:
    """Whether ``exc`` proves the request never reached the model, so that repeating it cannot
    bill twice: no connection was made (refused, connect timeout), or Bedrock throttled the call
    when it arrived. An error event inside a stream comes after generation began."""
    from botocore.exceptions import ClientError, ConnectTimeoutError, EndpointConnectionError, EventStreamError

    if isinstance(exc, (EndpointConnectionError, ConnectTimeoutError)):
        return True
    if isinstance(exc, ClientError) and not isinstance(exc, EventStreamError):
        return exc.response.get("Error", {}).get("Code") in PRE_GENERATION_CODES
    return False


def translate_bedrock_error(exc: BaseException) -> ProviderError:
    """The tierup error for any exception raised by a Bedrock call; raise it ``from exc``."""
    from botocore.exceptions import (ClientError, ConnectTimeoutError, EndpointConnectionError, EventStreamError,
                                     ReadTimeoutError)
    from urllib3.exceptions import ReadTimeoutError as Urllib3ReadTimeoutError

    if isinstance(exc, ProviderError):
        return exc
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        translated = error_for_code(error.get("Code") or "Unknown", error.get("Message") or "")
        # Bedrock's error answers bill nothing; an error event mid-stream follows generated text
        translated.may_have_generated = isinstance(exc, EventStreamError)
        return translated
    if isinstance(exc, (ReadTimeoutError, Urllib3ReadTimeoutError, TimeoutError)):
        return ProviderTimeoutError("Bedrock timed out", may_have_generated=True)
    if isinstance(exc, (EndpointConnectionError, ConnectTimeoutError)):  # no connection: nothing was sent
        return ProviderError(f"Bedrock call failed ({type(exc).__name__})")
    # a connection closed after the request was sent, a malformed event stream
    return ProviderError(f"Bedrock call failed ({type(exc).__name__})", may_have_generated=True)
