"""Any OpenAI-compatible API (vLLM on Modal, OpenAI, other providers), spoken over aiohttp.

This is the gateway's hot path, so it speaks the wire protocol itself: a JSON body built with
orjson, one pooled keep-alive aiohttp session per provider, the answer parsed with orjson, and
streams split by ``SseDecoder``. ``bench/provider_client.py`` measured the choices (CPU per call
against a fake upstream on loopback, one call at a time / 16 at once):

    client                                   non-streamed     streamed (20 chunks)
    openai SDK, httpx                        2.0 / 1.7 ms     4.7 / 4.9 ms
    openai SDK, aiohttp transport, raw       1.6 / 1.4 ms     4.1 / 3.9 ms
    this module                              0.23 / 0.12 ms   0.45 / 0.28 ms

The SDK's request transform and response models alone cost more than the gateway's whole
per-request budget (1 ms at 1,000 requests/s on one core), whatever its transport. The SDK stays
the client in tests, where it checks that tierup's answers are what OpenAI's clients expect.

Errors are translated here, by HTTP status and aiohttp exception, into tierup's tree, with the
same mapping the SDK's exception classes imply (429 throttled, 401/403 denied, 400/404/422
rejected, 502/503/504 and connection failures unavailable, timeouts 504). The composition root
imports this module (and so aiohttp) only when a tier uses it, not at cold start.

What the upstream does not report is counted here with the tokenizer and marked as estimated
(a usage block that is missing, or a count that is missing or malformed). A stream is complete
only when it reaches ``[DONE]``: one that closes or breaks off before it is a
``ProviderStreamIncompleteError``, whatever it sent. Nothing is retried (aiohttp repeats no POST);
errors after the request may have reached the model say so (``may_have_generated``).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import aclosing

import aiohttp
import orjson

from ..core.chat import Completion, Embeddings, Message, ProviderCall, StreamDelta, ToolCall, ToolCallDelta, Usage
from ..core.chat_params import ALL_PARAMS
from ..core.errors import (ProviderAccessDeniedError, ProviderBadRequestError, ProviderError,
                           ProviderStreamIncompleteError, ProviderThrottledError, ProviderTimeoutError,
                           ProviderUnavailableError)
from ..core.tokens import count_request_tokens, count_tokens
from .sse import SseDecoder

#: connections kept to one upstream at most; requests past it wait for a free one
MAX_CONNECTIONS = 512
#: seconds an idle keep-alive connection is kept (upstreams usually close theirs after 5-75 s)
KEEPALIVE_S = 30.0
_FINISH_REASONS = frozenset(("stop", "length", "content_filter", "tool_calls"))


def status_error(where: str, status: int, body: bytes, headers) -> ProviderError:
    """The tierup error for an upstream's non-2xx answer, with the upstream's own message."""
    message = _error_message(body) or f"HTTP {status}"
    if status == 429:
        retry = headers.get("retry-after")
        return ProviderThrottledError(f"{where} is throttling: {message}",
                                      headers={"retry-after": retry} if retry else None)
    if status in (401, 403):
        return ProviderAccessDeniedError(f"{where} refused the credentials: {message}")
    if status in (400, 404, 409, 413, 422):
        return ProviderBadRequestError(f"{where} rejected the request: {message}")
    if status in (502, 503, 504):
        return ProviderUnavailableError(f"{where} is unavailable ({status}): {message}")
    return ProviderError(f"{where} failed ({status}): {message}")


def _error_message(body: bytes) -> str:
    try:
        error = orjson.loads(body).get("error")
    except (orjson.JSONDecodeError, AttributeError):
        return body[:200].decode("utf-8", "replace").strip()
    if isinstance(error, dict):
        return str(error.get("message") or "")
    return str(error or "")


def _count(value) -> int | None:
    """A token count as reported, or None when it is missing or not a count."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _usage(body, call: ProviderCall, text: str) -> Usage:
    """The usage block; a count missing or malformed is counted here from the prompt and the
    answer, and the usage marked as estimated, so that no answer is billed 0 tokens."""
    body = body if isinstance(body, dict) else {}
    prompt = _count(body.get("prompt_tokens"))
    completion = _count(body.get("completion_tokens"))
    details = body.get("prompt_tokens_details")
    cached = _count(details.get("cached_tokens")) if isinstance(details, dict) else None
    return Usage(
        prompt_tokens=count_request_tokens(call.messages, call.tools, call.response_format) if prompt is None else prompt,
        completion_tokens=count_tokens(text) if completion is None else completion,
        cached_tokens=cached or 0, estimated=prompt is None or completion is None)


def _finish(reason) -> str:
    return reason if isinstance(reason, str) and reason in _FINISH_REASONS else "stop"


def _choice_parts(choice, key: str) -> tuple[str, str | None]:
    """(text, finish_reason) of one choice, ``key`` being ``message`` or ``delta``."""
    body = choice.get(key) or {}
    text = body.get("content") or ""
    if not isinstance(text, str):
        raise TypeError("content is not a string")
    return text, choice.get("finish_reason")


def _message_json(message: Message) -> dict:
    """A message as OpenAI's API takes it. Plain text messages (the hot path) are built by hand;
    images, tool calls and tool results are passed on as the client sent them."""
    body: dict = {"role": message.role}
    content = message.content
    if isinstance(content, list) and any(part.type == "image_url" for part in content):
        body["content"] = [part.model_dump(exclude_none=True) for part in content]
    elif content is None and message.tool_calls:
        body["content"] = None
    else:
        body["content"] = message.text
    if message.tool_calls:
        body["tool_calls"] = [call.model_dump(exclude_none=True) for call in message.tool_calls]
    if message.tool_call_id is not None:
        body["tool_call_id"] = message.tool_call_id
    if message.name is not None:
        body["name"] = message.name
    return body


def _surface_params(call: ProviderCall, params: dict) -> None:
    """Tools, response_format and the other parameters, passed through as the client sent them
    (the upstream, e.g. vLLM's guided decoding, honours them)."""
    if call.tools:  # tool_choice and parallel_tool_calls without tools are refused by OpenAI: left out
        params["tools"] = [tool.model_dump(exclude_none=True, by_alias=True) for tool in call.tools]
        if call.tool_choice is not None:
            params["tool_choice"] = (call.tool_choice if isinstance(call.tool_choice, str)
                                     else call.tool_choice.model_dump())
        if call.parallel_tool_calls is not None:
            params["parallel_tool_calls"] = call.parallel_tool_calls
    if call.response_format is not None:
        params["response_format"] = call.response_format.model_dump(exclude_none=True, by_alias=True)
    params.update(call.passthrough)


def _tool_calls(raw) -> list[ToolCall]:
    """An answer's ``message.tool_calls``."""
    return [ToolCall(id=str(item["id"]), name=str(item["function"]["name"]),
                     arguments=str(item["function"].get("arguments") or ""))
            for item in raw or ()]


def _tool_call_pieces(raw, into: list[ToolCallDelta]) -> None:
    """A stream event's ``delta.tool_calls`` added to ``into``; argument pieces of the call the last
    piece belongs to are joined, so one network read makes one piece per call."""
    for item in raw:
        function = item.get("function") or {}
        piece = ToolCallDelta(index=int(item.get("index") or 0), id=item.get("id"), name=function.get("name"),
                              arguments=function.get("arguments") or "")
        last = into[-1] if into else None
        if last is not None and piece.id is None and piece.name is None and last.index == piece.index:
            last.arguments += piece.arguments
        else:
            into.append(piece)


class OpenAICompatibleProvider:
    #: an OpenAI-compatible API (vLLM, OpenAI) takes every parameter: they are passed through
    supported_params = ALL_PARAMS

    def __init__(self, base_url: str, api_key: str | None, *, timeout_s: float = 120.0,
                 name: str = "upstream", extra_headers: dict[str, str] | None = None) -> None:
        """``extra_headers`` go on every request (Modal's proxy auth token on the GPU tiers)."""
        base = base_url.rstrip("/")
        self._chat_url = f"{base}/chat/completions"
        self._embeddings_url = f"{base}/embeddings"
        self._name = name
        self._timeout_s = timeout_s
        self._headers = {"Authorization": f"Bearer {api_key or 'none'}", "Content-Type": "application/json",
                         "Accept": "application/json", **(extra_headers or {})}
        self._session = None

    def _client(self):
        """The pooled session, made inside the running event loop on first use."""
        if self._session is None:
            # the whole call, to the last byte, takes timeout_s at most (the pipeline holds the same
            # deadline for every provider; this one keeps the adapter honest on its own)
            timeout = aiohttp.ClientTimeout(total=self._timeout_s, connect=self._timeout_s,
                                            sock_read=self._timeout_s)
            connector = aiohttp.TCPConnector(limit=MAX_CONNECTIONS, keepalive_timeout=KEEPALIVE_S,
                                             ttl_dns_cache=300)
            self._session = aiohttp.ClientSession(connector=connector, timeout=timeout, headers=self._headers,
                                                  skip_auto_headers=("User-Agent",), auto_decompress=True,
                                                  raise_for_status=False)
        return self._session

    def _body(self, call: ProviderCall, stream: bool) -> bytes:
        params: dict = {"model": call.model,
                        "messages": [_message_json(m) if m.tool_calls or m.role == "tool" or m.name is not None
                                     or isinstance(m.content, list) else {"role": m.role, "content": m.text}
                                     for m in call.messages],
                        "max_tokens": call.max_tokens}
        if call.temperature is not None:
            params["temperature"] = call.temperature
        if call.top_p is not None:
            params["top_p"] = call.top_p
        if call.stop:
            params["stop"] = call.stop
        if call.tools or call.tool_choice is not None or call.response_format is not None or call.passthrough:
            _surface_params(call, params)
        if stream:
            params["stream"] = True
            params["stream_options"] = {"include_usage": True}
        return orjson.dumps(params)

    async def _post(self, url: str, body: bytes):
        """Send; return the response once its status is 2xx, else raise the translated error."""
        try:
            response = await self._client().post(url, data=body, allow_redirects=False)
        except aiohttp.ConnectionTimeoutError as exc:
            raise ProviderTimeoutError(f"{self._name} did not accept a connection in time") from exc
        except aiohttp.ClientConnectorError as exc:
            raise ProviderUnavailableError(f"{self._name} is unreachable: {exc}") from exc
        except (asyncio.TimeoutError, aiohttp.ServerTimeoutError) as exc:
            # the request was sent: the model may be generating (and billing) still
            raise ProviderTimeoutError(f"{self._name} timed out", may_have_generated=True) from exc
        except aiohttp.ClientError as exc:
            raise ProviderUnavailableError(f"{self._name} broke off the connection: {exc}",
                                           may_have_generated=True) from exc
        if response.status >= 300:
            try:
                error_body = await response.read()
            except (asyncio.TimeoutError, aiohttp.ClientError):
                error_body = b""
            finally:
                response.release()
            raise status_error(self._name, response.status, error_body, response.headers)
        return response

    async def _read_json(self, url: str, body: bytes) -> dict:
        response = await self._post(url, body)
        # From here on the upstream has accepted the request (2xx): every failure may be billed.
        try:
            raw = await response.read()
        except (asyncio.TimeoutError, aiohttp.ServerTimeoutError) as exc:
            raise ProviderTimeoutError(f"{self._name} timed out", may_have_generated=True) from exc
        except aiohttp.ClientError as exc:
            raise ProviderUnavailableError(f"{self._name} broke off its answer: {exc}",
                                           may_have_generated=True) from exc
        finally:
            response.release()
        try:
            answer = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise ProviderError(f"{self._name} answered with something that is not JSON",
                                may_have_generated=True) from exc
        if not isinstance(answer, dict):
            raise ProviderError(f"{self._name} answered with JSON that is not an object", may_have_generated=True)
        return answer

    async def complete(self, call: ProviderCall) -> Completion:
        answer = await self._read_json(self._chat_url, self._body(call, stream=False))
        try:
            choice = answer["choices"][0]
            text, finish = _choice_parts(choice, "message")
            message = choice.get("message") or {}
            tool_calls = _tool_calls(message.get("tool_calls"))
        except (KeyError, IndexError, TypeError, AttributeError, ValueError) as exc:
            raise ProviderError(f"{self._name} answered without a readable choice", may_have_generated=True) from exc
        logprobs = choice.get("logprobs")
        refusal = message.get("refusal")
        return Completion(text=text, finish_reason=_finish(finish), usage=_usage(answer.get("usage"), call, text),
                          model=call.model, tool_calls=tool_calls,
                          logprobs=logprobs if isinstance(logprobs, dict) else None,
                          refusal=refusal if isinstance(refusal, str) else None)

    async def stream(self, call: ProviderCall) -> AsyncIterator[StreamDelta]:
        """One delta per network read: events that arrived together are relayed together, so a
        backlog costs one write to the client instead of one per event; nothing waits to be merged."""
        finish = None
        usage = None
        relayed: list[str] = []
        batches = self._event_batches(await self._post(self._chat_url, self._body(call, stream=True)))
        async with aclosing(batches):  # a consumer that stops early frees the connection at once
            async for events in batches:
                pieces = []
                calls: list[ToolCallDelta] = []
                logprobs: list | None = None
                for event in events:
                    if event.get("usage"):
                        usage = event["usage"]
                    try:
                        for choice in event.get("choices") or ():
                            text, reason = _choice_parts(choice, "delta")
                            if text:
                                pieces.append(text)
                            finish = reason or finish
                            delta_calls = (choice.get("delta") or {}).get("tool_calls")
                            if delta_calls:
                                _tool_call_pieces(delta_calls, calls)
                            if choice.get("logprobs"):
                                logprobs = (logprobs or []) + list(choice["logprobs"].get("content") or ())
                    except (TypeError, AttributeError, KeyError, ValueError) as exc:
                        raise ProviderError(f"{self._name} sent a stream event of unexpected shape",
                                            may_have_generated=True) from exc
                if pieces or calls:
                    text = pieces[0] if len(pieces) == 1 else "".join(pieces)
                    relayed.append(text)
                    relayed.extend(piece.arguments for piece in calls)  # counted too if usage is missing
                    yield StreamDelta(text=text, tool_calls=calls or None, logprobs=logprobs)
        yield StreamDelta(finish_reason=_finish(finish), usage=_usage(usage, call, "".join(relayed)))

    async def _event_batches(self, response) -> AsyncIterator[list[dict]]:
        """The stream's events up to ``[DONE]``, as the network delivered them. The body is read to
        its end even after ``[DONE]``, so that the connection goes back to the pool, not closed.
        A body that ends (or breaks off) before ``[DONE]`` raises ``ProviderStreamIncompleteError``."""
        decoder = SseDecoder()
        done = False
        try:
            async for chunk in response.content.iter_any():
                if not done:
                    events, done, error = self._decode(decoder.feed(chunk))
                    if events:
                        yield events
                    if error is not None:
                        raise error
            if not done:
                events, done, error = self._decode(decoder.close())
                if events:
                    yield events
                if error is not None:
                    raise error
            if not done:
                raise ProviderStreamIncompleteError(f"{self._name} ended its stream before [DONE]")
        except (asyncio.TimeoutError, aiohttp.ServerTimeoutError) as exc:
            raise ProviderTimeoutError(f"{self._name} timed out mid-stream", may_have_generated=True) from exc
        except aiohttp.ClientError as exc:
            raise ProviderStreamIncompleteError(f"{self._name} broke off its stream: {exc}") from exc
        finally:
            response.release()

    def _decode(self, payloads: list[bytes]) -> tuple[list[dict], bool, ProviderError | None]:
        """The events among ``payloads``; whether ``[DONE]`` was among them; the error an event
        reported (the events before it are still returned, so that they reach the client)."""
        events = []
        for data in payloads:
            if data == b"[DONE]":
                return events, True, None
            try:
                events.append(self._event(data))
            except ProviderError as exc:
                return events, True, exc
        return events, False, None

    def _event(self, data: bytes) -> dict:
        try:
            event = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise ProviderError(f"{self._name} sent a stream event that is not JSON", may_have_generated=True) from exc
        if not isinstance(event, dict):
            raise ProviderError(f"{self._name} sent a stream event that is not a JSON object", may_have_generated=True)
        if "error" in event and not event.get("choices"):
            raise ProviderError(f"{self._name} failed mid-stream: {_error_message(data)}", may_have_generated=True)
        return event

    async def embed(self, model: str, inputs: list[str], dimensions: int | None) -> Embeddings:
        params: dict = {"model": model, "input": inputs, "encoding_format": "float"}
        if dimensions:
            params["dimensions"] = dimensions
        answer = await self._read_json(self._embeddings_url, orjson.dumps(params))
        try:
            rows = sorted(answer["data"], key=lambda row: row.get("index", 0))
            vectors = [row["embedding"] for row in rows]
        except (KeyError, TypeError, AttributeError) as exc:
            raise ProviderError(f"{self._name} answered without embeddings", may_have_generated=True) from exc
        usage = answer.get("usage")
        reported = _count(usage.get("prompt_tokens")) if isinstance(usage, dict) else None
        if reported is None:
            return Embeddings(vectors=vectors, model=model, usage=Usage(
                prompt_tokens=sum(count_tokens(text) for text in inputs), estimated=True))
        return Embeddings(vectors=vectors, usage=Usage(prompt_tokens=reported), model=model)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
