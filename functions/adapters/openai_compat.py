"""Any OpenAI-compatible API (vLLM on Modal, OpenAI, other providers) through the ``openai`` SDK.

The SDK is imported when the first provider is built, not when this module is imported.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import contextmanager

from ..core.chat import Completion, Embeddings, ProviderCall, StreamDelta, Usage
from ..core.errors import (ProviderAccessDeniedError, ProviderBadRequestError, ProviderError,
                           ProviderThrottledError, ProviderTimeoutError, ProviderUnavailableError)


@contextmanager
def translated_errors(where: str):
    """Translate the SDK's errors into tierup's tree (``raise ... from``)."""
    import openai

    try:
        yield
    except openai.APITimeoutError as exc:
        raise ProviderTimeoutError(f"{where} timed out") from exc
    except openai.APIConnectionError as exc:
        raise ProviderUnavailableError(f"{where} is unreachable: {exc}") from exc
    except openai.RateLimitError as exc:
        raise ProviderThrottledError(f"{where} is throttling: {exc.message}") from exc
    except (openai.AuthenticationError, openai.PermissionDeniedError) as exc:
        raise ProviderAccessDeniedError(f"{where} refused the credentials: {exc.message}") from exc
    except (openai.BadRequestError, openai.UnprocessableEntityError, openai.NotFoundError) as exc:
        raise ProviderBadRequestError(f"{where} rejected the request: {exc.message}") from exc
    except openai.APIStatusError as exc:
        if exc.status_code in (502, 503, 504):
            raise ProviderUnavailableError(f"{where} is unavailable ({exc.status_code})") from exc
        raise ProviderError(f"{where} failed ({exc.status_code}): {exc.message}") from exc


def _messages(call: ProviderCall) -> list[dict]:
    return [{"role": m.role, "content": m.text} for m in call.messages]


def _usage(usage) -> Usage:
    if usage is None:
        return Usage()
    details = getattr(usage, "prompt_tokens_details", None)
    return Usage(prompt_tokens=usage.prompt_tokens or 0, completion_tokens=usage.completion_tokens or 0,
                 cached_tokens=(getattr(details, "cached_tokens", 0) or 0) if details else 0)


class OpenAICompatibleProvider:
    def __init__(self, base_url: str, api_key: str | None, *, timeout_s: float = 120.0,
                 name: str = "upstream") -> None:
        from openai import AsyncOpenAI

        self._name = name
        self._client = AsyncOpenAI(base_url=base_url, api_key=api_key or "none", timeout=timeout_s,
                                   max_retries=0)

    def _params(self, call: ProviderCall) -> dict:
        params: dict = {"model": call.model, "messages": _messages(call), "max_tokens": call.max_tokens}
        if call.temperature is not None:
            params["temperature"] = call.temperature
        if call.top_p is not None:
            params["top_p"] = call.top_p
        if call.stop:
            params["stop"] = call.stop
        return params

    async def complete(self, call: ProviderCall) -> Completion:
        with translated_errors(self._name):
            response = await self._client.chat.completions.create(**self._params(call))
        choice = response.choices[0]
        return Completion(text=choice.message.content or "", finish_reason=choice.finish_reason or "stop",
                          usage=_usage(response.usage), model=call.model)

    async def stream(self, call: ProviderCall) -> AsyncIterator[StreamDelta]:
        finish = None
        usage = None
        with translated_errors(self._name):
            stream = await self._client.chat.completions.create(
                **self._params(call), stream=True, stream_options={"include_usage": True})
            async for chunk in stream:
                if chunk.usage is not None:
                    usage = _usage(chunk.usage)
                for choice in chunk.choices:
                    if choice.delta and choice.delta.content:
                        yield StreamDelta(text=choice.delta.content)
                    if choice.finish_reason:
                        finish = choice.finish_reason
        yield StreamDelta(finish_reason=finish or "stop", usage=usage or Usage())

    async def embed(self, model: str, inputs: list[str], dimensions: int | None) -> Embeddings:
        params: dict = {"model": model, "input": inputs}
        if dimensions:
            params["dimensions"] = dimensions
        with translated_errors(self._name):
            response = await self._client.embeddings.create(**params)
        return Embeddings(vectors=[d.embedding for d in response.data],
                          usage=Usage(prompt_tokens=response.usage.prompt_tokens), model=model)

    async def close(self) -> None:
        await self._client.close()
