"""A Lambda function's reserved concurrency: the gateway's hard stop (0) and its release.

Used only by the kill-switch function and the CLI; the gateway never changes its own concurrency.
"""

from __future__ import annotations


class LambdaConcurrency:
    def __init__(self, client_factory) -> None:
        self._client_factory = client_factory

    def reserved_concurrency(self, function: str) -> int | None:
        return self._client_factory().get_function_concurrency(FunctionName=function).get(
            "ReservedConcurrentExecutions")

    def set_reserved_concurrency(self, function: str, value: int | None) -> None:
        client = self._client_factory()
        if value is None:
            client.delete_function_concurrency(FunctionName=function)
        else:
            client.put_function_concurrency(FunctionName=function, ReservedConcurrentExecutions=value)
