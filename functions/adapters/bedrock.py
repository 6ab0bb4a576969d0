"""The ``serverless`` tier: Amazon Bedrock through Converse / ConverseStream (chat) and Titan v2
through InvokeModel (embeddings), as a ``ChatProvider``.

The boto3 ``bedrock-runtime`` client is passed in by the composition root. boto3 blocks, so
each call runs on a worker thread (``asyncio.to_thread``) and a stream is read on its own thread
(``thread_stream.iterate_in_thread``); the event loop never waits on Bedrock. The shapes are
mapped in ``converse_mapping`` and the errors in ``bedrock_errors``.

botocore makes each call once (``adapters.aws``): a retried generation would be billed twice.
This provider retries only a call that provably never reached the model (no connection, or
throttled on arrival), a few times with a short back-off; the gateway's deadline bounds it all.
A stream that ends before Bedrock's ``messageStop`` is incomplete (an error, never cached), and
an answer without usage is counted with the tokenizer (marked as estimated).
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import AsyncIterator, Callable
from typing import TypeVar

from ..core.chat import Completion, Embeddings, ProviderCall, StreamDelta, Usage
from ..core.errors import ProviderError, ProviderStreamIncompleteError
from .bedrock_errors import error_from_event, reached_no_model, translate_bedrock_error
from .converse_mapping import StreamFold, completion_from, converse_request
from .converse_tools import structured_tool_name
from .thread_stream import iterate_in_thread

#: Titan Text Embeddings v2 takes one text per call; this many calls run at once per request
EMBED_CONCURRENCY = 8
#: ConverseStream events read ahead of a slow client before the reader waits
STREAM_BUFFER_EVENTS = 64
#: attempts for a call that never reached the model (refused connection, throttled on arrival)
PRE_GENERATION_ATTEMPTS = 3
#: back-off before the second attempt, doubled for each later one (with full jitter)
PRE_GENERATION_BACKOFF_S = 0.1

R = TypeVar("R")


def call_before_generation(call: Callable[..., R], /, **params) -> R:
    """``call(**params)``, repeated only after an error that proves the model never saw it.
    Blocking (it runs on a worker thread)."""
    for attempt in range(1, PRE_GENERATION_ATTEMPTS + 1):
        try:
            return call(**params)
        except Exception as exc:
            if attempt == PRE_GENERATION_ATTEMPTS or not reached_no_model(exc):
                raise
            time.sleep(random.uniform(0, PRE_GENERATION_BACKOFF_S * 2 ** (attempt - 1)))
    raise AssertionError("unreachable")


class BedrockProvider:
    #: what Converse can honour; seed, penalties, logprobs, logit_bias and reasoning_effort have no
    #: place in its ``inferenceConfig`` (and n > 1 none anywhere), so they are refused by name
    supported_params = frozenset({"tools", "tool_choice", "parallel_tool_calls", "response_format", "images"})

    def __init__(self, client, *, stream_buffer_events: int = STREAM_BUFFER_EVENTS,
                 embed_concurrency: int = EMBED_CONCURRENCY,
                 cache_priced_models: frozenset[str] = frozenset()) -> None:
        self._client = client
        self._stream_buffer_events = stream_buffer_events
        self._embed_concurrency = embed_concurrency
        #: models whose cache-read and cache-write rates are priced: only their prompts get
        #: cache points, so a cache write is never billed at a rate tierup does not know
        self._cache_priced_models = cache_priced_models

    def _request(self, call: ProviderCall) -> dict:
        """A request it cannot map is the client's 400, raised here, not Bedrock's error."""
        return converse_request(call, prompt_cache=call.prompt_cache and call.model in self._cache_priced_models)

    async def complete(self, call: ProviderCall) -> Completion:
        request = self._request(call)
        try:
            response = await asyncio.to_thread(call_before_generation, self._client.converse, **request)
        except Exception as exc:
            raise translate_bedrock_error(exc) from exc
        return completion_from(response, call)

    async def stream(self, call: ProviderCall) -> AsyncIterator[StreamDelta]:
        request = self._request(call)
        fold = StreamFold(structured_tool_name(call), single_call=call.parallel_tool_calls is False)
        events = iterate_in_thread(
            lambda: call_before_generation(self._client.converse_stream, **request)["stream"],
            close=_close_event_stream, max_buffered=self._stream_buffer_events, thread_name="bedrock-converse-stream")
        try:
            async for event in events:
                error = error_from_event(event)
                if error is not None:
                    error.may_have_generated = True  # the stream had begun
                    raise error
                delta = fold.delta(event)
                if delta is not None:
                    yield delta
        except ProviderError:
            raise
        except Exception as exc:
            raise translate_bedrock_error(exc) from exc
        finally:
            # Leaving early (the client went away) must stop the reader thread now, not at GC.
            await events.aclose()
        if fold.stop_reason is None:
            raise ProviderStreamIncompleteError("Bedrock ended its stream before messageStop")
        yield fold.final()

    async def embed(self, model: str, inputs: list[str], dimensions: int | None) -> Embeddings:
        limit = asyncio.Semaphore(self._embed_concurrency)

        async def embed_one(text: str) -> tuple[list[float], int]:
            async with limit:
                return await asyncio.to_thread(self._invoke_titan, model, text, dimensions)

        results = await asyncio.gather(*(embed_one(text) for text in inputs))
        return Embeddings(vectors=[vector for vector, _ in results],
                          usage=Usage(prompt_tokens=sum(tokens for _, tokens in results)), model=model)

    def _invoke_titan(self, model: str, text: str, dimensions: int | None) -> tuple[list[float], int]:
        body: dict = {"inputText": text, "normalize": True}
        if dimensions:
            body["dimensions"] = dimensions
        try:
            response = call_before_generation(self._client.invoke_model, modelId=model, body=json.dumps(body),
                                              contentType="application/json", accept="application/json")
            answer = json.loads(response["body"].read())
        except Exception as exc:
            raise translate_bedrock_error(exc) from exc
        return answer["embedding"], int(answer.get("inputTextTokenCount") or 0)

    async def close(self) -> None:
        return None  # the boto3 client belongs to the composition root's AwsClients


def _close_event_stream(stream) -> None:
    """Close a botocore ``EventStream``: it frees the HTTP connection and wakes a blocked reader."""
    stream.close()
