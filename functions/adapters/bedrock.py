"""The ``serverless`` tier: Amazon Bedrock through Converse / ConverseStream (chat) and Titan v2
through InvokeModel (embeddings), as a ``ChatProvider``.

The boto3 ``bedrock-runtime`` client is passed in by the composition root. boto3 blocks, so
each call runs on a worker thread (``asyncio.to_thread``) and a stream is read on its own thread
(``thread_stream.iterate_in_thread``); the event loop never waits on Bedrock. The shapes are
mapped in ``converse_mapping`` and the errors in ``bedrock_errors``.

It never retries: botocore's retry config (``adapters.aws``) and the gateway's tier fallback
decide that.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

from ..core.chat import Completion, Embeddings, ProviderCall, StreamDelta, Usage
from ..core.errors import ProviderError
from .bedrock_errors import error_from_event, translate_bedrock_error
from .converse_mapping import StreamFold, completion_from, converse_request
from .converse_tools import structured_tool_name
from .thread_stream import iterate_in_thread

#: Titan Text Embeddings v2 takes one text per call; this many calls run at once per request
EMBED_CONCURRENCY = 8
#: ConverseStream events read ahead of a slow client before the reader waits
STREAM_BUFFER_EVENTS = 64


class BedrockProvider:
    #: what Converse can honour; seed, penalties, logprobs, logit_bias and reasoning_effort have no
    #: place in its ``inferenceConfig`` (and n > 1 none anywhere), so they are refused by name
    supported_params = frozenset({"tools", "tool_choice", "parallel_tool_calls", "response_format", "images"})

    def __init__(self, client, *, stream_buffer_events: int = STREAM_BUFFER_EVENTS,
                 embed_concurrency: int = EMBED_CONCURRENCY) -> None:
        self._client = client
        self._stream_buffer_events = stream_buffer_events
        self._embed_concurrency = embed_concurrency

    async def complete(self, call: ProviderCall) -> Completion:
        request = converse_request(call)  # a request it cannot map is the client's 400, not Bedrock's error
        try:
            response = await asyncio.to_thread(self._client.converse, **request)
        except Exception as exc:
            raise translate_bedrock_error(exc) from exc
        return completion_from(response, call)

    async def stream(self, call: ProviderCall) -> AsyncIterator[StreamDelta]:
        request = converse_request(call)
        fold = StreamFold(structured_tool_name(call), single_call=call.parallel_tool_calls is False)
        events = iterate_in_thread(lambda: self._client.converse_stream(**request)["stream"],
                                   close=_close_event_stream, max_buffered=self._stream_buffer_events,
                                   thread_name="bedrock-converse-stream")
        try:
            async for event in events:
                error = error_from_event(event)
                if error is not None:
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
            response = self._client.invoke_model(modelId=model, body=json.dumps(body),
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
