"""The one error tree of tierup, and how each error maps to HTTP.

Every error the gateway, the CLI or a Lambda handler raises on purpose is a ``TierupError``.
Vendor errors (botocore, openai, aiohttp) are translated at the adapter with ``raise ... from``.

    TierupError
    ├── ConfigError                    a bad tierup.toml; names the offending key
    ├── DeployError                    building the AWS stack failed (the Lambda bundle, infra/)
    ├── RequestError            400    the client's request is wrong
    │   ├── BodyTooLargeError   413
    │   ├── PromptTooLargeError 400    can never fit the plan or route, so not a 429
    │   ├── NotFoundError       404    unknown path or route
    │   └── MethodNotAllowedError 405
    ├── AuthenticationError     401
    ├── PermissionDeniedError   403
    ├── RateLimitError          429    carries x-ratelimit-* and Retry-After headers
    │   └── OverloadedError     429/503  backpressure: the instance is full
    ├── BudgetExceededError     503    a kill switch or spend cap names the budget
    ├── StorageUnavailableError 503    a store on the request path (DynamoDB) failed or did not
    │                                  answer within its deadline; carries Retry-After
    ├── UnpricedModelError      503    a per-token model has no price: refused, never billed at $0
    ├── CacheError              503    the response cache's store or embedder failed; the cache
    │                                  turns it into a miss, so it never reaches a client
    ├── GpuControlError                Modal refused or failed a control call (autoscaler, stats)
    └── ProviderError           502    the model provider failed
        ├── InvalidStructuredOutputError 502  the answer does not match the requested JSON schema
        ├── ProviderBadRequestError   400
        ├── ProviderAccessDeniedError 403
        ├── ProviderThrottledError    429
        ├── ProviderUnavailableError  503
        ├── ProviderTimeoutError      504    also: the whole call outlived provider-timeout-s
        └── ProviderStreamIncompleteError 502  the upstream's stream ended before ``[DONE]``

A ``ProviderError`` says whether the model may have started generating (``may_have_generated``):
such a call may be billed by the provider, so it is never repeated (on the same tier or another)
and the gateway bills what it can prove was used.

No I/O here.
"""

from __future__ import annotations


class TierupError(Exception):
    """Base of every error tierup raises on purpose."""

    status = 500
    error_type = "server_error"
    code: str | None = None

    def __init__(self, message: str, *, code: str | None = None, param: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.param = param
        self.headers = dict(headers or {})

    def to_openai(self) -> dict:
        """The body OpenAI's clients expect: ``{"error": {message, type, param, code}}``."""
        return {"error": {"message": self.message, "type": self.error_type,
                          "param": self.param, "code": self.code}}


class ConfigError(TierupError):
    """The config is invalid; ``key`` is the dotted path of the offending entry."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}" if key else message, code="invalid_config")
        self.key = key


class DeployError(TierupError):
    """Building the deployment failed (e.g. pip could not install the Lambda bundle's wheels)."""

    code = "deploy_failed"


class RequestError(TierupError):
    status = 400
    error_type = "invalid_request_error"
    code = "invalid_request"


class BodyTooLargeError(RequestError):
    status = 413
    code = "body_too_large"


class PromptTooLargeError(RequestError):
    code = "prompt_too_large"


class NotFoundError(RequestError):
    status = 404
    code = "not_found"


class MethodNotAllowedError(RequestError):
    status = 405
    code = "method_not_allowed"


class AuthenticationError(TierupError):
    status = 401
    error_type = "authentication_error"
    code = "invalid_api_key"


class PermissionDeniedError(TierupError):
    status = 403
    error_type = "permission_error"
    code = "permission_denied"


class RateLimitError(TierupError):
    status = 429
    error_type = "rate_limit_error"
    code = "rate_limit_exceeded"


class OverloadedError(RateLimitError):
    """Backpressure: refused fast, before any provider or DynamoDB call."""

    code = "overloaded"

    def __init__(self, message: str, *, status: int = 429, retry_after_s: float = 1.0) -> None:
        super().__init__(message, headers={"retry-after": str(max(1, round(retry_after_s)))})
        self.status = status


class BudgetExceededError(TierupError):
    status = 503
    error_type = "budget_exceeded"
    code = "budget_exceeded"


class StorageUnavailableError(TierupError):
    """A store the request needs (API keys, kill-switch flags, quota or spend counters) failed or
    did not answer within its deadline. Money guards fail closed, so the request is refused."""

    status = 503
    error_type = "service_unavailable"
    code = "storage_unavailable"
    #: seconds a client should wait before trying again
    retry_after_s = 2

    def __init__(self, message: str, **kwargs) -> None:
        super().__init__(message, **kwargs)
        self.headers.setdefault("retry-after", str(self.retry_after_s))


class UnpricedModelError(TierupError):
    """A per-token model has no ``[pricing.models]`` entry: serving it would bill $0 past every cap.
    Config validation refuses such a config at start-up; this is the request path's last line."""

    status = 503
    code = "model_unpriced"

    def __init__(self, message: str) -> None:
        super().__init__(message, headers={"retry-after": "60"})


class CacheError(TierupError):
    status = 503
    error_type = "cache_error"
    code = "cache_unavailable"


class GpuControlError(TierupError):
    """A Modal control call (autoscaler update, container stats) failed; the policy retries later."""

    code = "gpu_control_failed"


class ProviderError(TierupError):
    status = 502
    error_type = "provider_error"
    code = "provider_error"
    #: a provider error after which another tier may be tried
    retryable = True
    #: the request may have reached the model, which may bill it: never repeat the call
    may_have_generated = False

    def __init__(self, message: str, *, may_have_generated: bool | None = None, **kwargs) -> None:
        super().__init__(message, **kwargs)
        if may_have_generated is not None:
            self.may_have_generated = may_have_generated


class InvalidStructuredOutputError(ProviderError):
    """The model answered, but not with what ``response_format`` (or a strict tool) asked for.

    Never retried on another tier: the model was called (and billed); the client decides."""

    code = "invalid_structured_output"
    retryable = False


class ProviderBadRequestError(ProviderError):
    status = 400
    error_type = "invalid_request_error"
    code = "provider_rejected_request"
    retryable = False


class ProviderAccessDeniedError(ProviderError):
    status = 403
    error_type = "permission_error"
    code = "provider_access_denied"


class ProviderThrottledError(ProviderError):
    status = 429
    error_type = "rate_limit_error"
    code = "provider_throttled"


class ProviderUnavailableError(ProviderError):
    status = 503
    code = "provider_unavailable"


class ProviderTimeoutError(ProviderError):
    status = 504
    code = "provider_timeout"
    #: a timed-out call says nothing of when the provider recovers; clients back off this long first
    retry_after_s = 2

    def __init__(self, message: str, **kwargs) -> None:
        super().__init__(message, **kwargs)
        self.headers.setdefault("retry-after", str(self.retry_after_s))


class ProviderStreamIncompleteError(ProviderError):
    """The upstream's stream stopped (closed or broken off) before its end marker: the answer is
    cut short, so it is an error for the client, never cached, and billed for what was relayed."""

    code = "upstream_stream_incomplete"
    may_have_generated = True
