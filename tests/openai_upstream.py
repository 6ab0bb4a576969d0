"""A scripted OpenAI-compatible upstream: a real aiohttp server on 127.0.0.1, in its own thread.

The request's ``model`` picks the behaviour, so one server serves every test case:

    ok              a JSON answer (or an SSE stream) with usage, cached tokens included
    status-NNN      HTTP NNN with OpenAI's error JSON (429 also sends retry-after: 7)
    slow            answers after SLOW_S seconds (longer than the tests' provider timeout)
    not-json        200 with a body that is not JSON
    no-choices      200 with JSON that has no choices
    error-mid       a stream that sends two pieces, then an error event
    drop-mid        a stream that stops without [DONE] (the server closes the connection)
    pause-mid       a stream that sends one piece, then waits SLOW_S seconds before the rest
    bad-shape       a choice that is not an object (JSON), or such an event after one piece (stream)
    odd-usage       a normal answer whose usage block has a string count and a list for details
    tools           two tool calls (streamed as OpenAI streams them: id and name, then arguments
                    in pieces), finish_reason tool_calls
    json            the answer {"city": "Oslo", "celsius": 4.5}
    prose           the usual answer, but finished ("stop") rather than cut short ("length")

A request with ``logprobs: true`` gets a ``logprobs`` block with one entry per piece.

Streams are written in pieces of ``chunk_bytes`` so that events and lines straddle reads.
What each request carried is kept in ``requests`` (headers, JSON body, peer port).

Fault injection, with a count of what was actually served: a request whose messages carry a
``[fault:NAME]`` tag (any model) gets a real answer of ``FAULT_PIECES``, spoiled as NAME says,
streamed or not as asked:

    none            a correct answer; usage counted with the tokenizer, as a model would report it
    drop-usage      a complete answer without usage (no usage chunk; no usage field)
    no-done         half the answer, then the stream ends cleanly without finish, usage or [DONE]
                    (not streamed: half the body, then the connection closes)
    reset           half the answer, then the connection is dropped (not streamed: dropped
                    before any byte of the answer)
    trickle         one piece every TRICKLE_S, so no gap between reads is long but the whole is
                    (not streamed: the JSON body in slices, one every TRICKLE_S)
    status-429      429 (retry-after: 7) / 500 with OpenAI's error JSON, before any generation
    status-500
    bad-json        half the answer, then an event that is not JSON (not streamed: 200 with HTML)

``served`` (a ``ServedCounter``) keeps one ``Served`` per tagged request: its prompt tokens,
counted once the request is accepted for generation (every fault but status-NNN), and its
completion tokens: for a stream, those of the pieces written before anything went wrong; for
a whole answer, all of them once the whole body was written, else none. Counts use the gateway's
tokenizer (cl100k), so they are what a model with that tokenizer would bill.

``start_fault_upstream()`` starts one on 127.0.0.1 and returns ``(url, served, stop)``, for
tests and benchmarks alike.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from aiohttp import web

from functions.core.tokens import count_chat_tokens, count_tokens
from tierup.local_stack import free_port

ANSWER_PIECES = ["Hello", ", wor", "ld — ", "naïve ☃", "!"]
SLOW_S = 2.0


def _event(body: dict) -> bytes:
    return b"data: " + json.dumps(body, ensure_ascii=False).encode() + b"\r\n\r\n"


def _chunk(delta: dict, finish: str | None = None) -> dict:
    return {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 0, "model": "m",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


TOOL_CALLS = [{"id": "call_a", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}},
              {"id": "call_b", "type": "function", "function": {"name": "get_time", "arguments": '{"zone": "CET"}'}}]
JSON_ANSWER = '{"city": "Oslo", "celsius": 4.5}'


def _logprob(piece: str) -> dict:
    return {"token": piece, "logprob": -0.25, "bytes": list(piece.encode()), "top_logprobs": []}


USAGE = {"prompt_tokens": 11, "completion_tokens": 5, "total_tokens": 16,
         "prompt_tokens_details": {"cached_tokens": 3}}


FAULTS = ("none", "drop-usage", "no-done", "reset", "trickle", "status-429", "status-500", "bad-json")
#: the answer every fault request gets (or starts to get): one stream event per piece
FAULT_PIECES = [" Budgets", " hold", " when", " tiers", " fail", ";", " every", " token", " is", " counted",
                " once", "."]
#: seconds between pieces in ``trickle``
TRICKLE_S = 1.0
_FAULT_TAG = re.compile(r"\[fault:([a-z0-9-]+)\]")


def fault_tag(fault: str) -> str:
    """The text that asks the upstream for ``fault``; put it in any message."""
    assert fault in FAULTS, fault
    return f"[fault:{fault}]"


@dataclass
class Served:
    """What the upstream served one request: tokens a provider would bill for it."""

    fault: str
    stream: bool
    prompt_tokens: int = 0
    completion_text: str = ""
    finished: bool = False

    @property
    def completion_tokens(self) -> int:
        return count_tokens(self.completion_text)


@dataclass
class ServedCounter:
    """Every fault request the upstream received, safe to read from any thread."""

    _served: list[Served] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, served: Served) -> Served:
        with self._lock:
            self._served.append(served)
        return served

    @property
    def requests(self) -> list[Served]:
        with self._lock:
            return list(self._served)

    @property
    def prompt_tokens(self) -> int:
        return sum(s.prompt_tokens for s in self.requests)

    @property
    def completion_tokens(self) -> int:
        return sum(s.completion_tokens for s in self.requests)


class ScriptedUpstream:
    def __init__(self, chunk_bytes: int = 7) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self.chunk_bytes = chunk_bytes
        self.requests: list[dict] = []
        self.served = ServedCounter()
        self._loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True, name="upstream")

    # -- handlers -----------------------------------------------------------------------------

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.requests.append({"headers": dict(request.headers), "body": body,
                              "peer_port": request.transport.get_extra_info("peername")[1]})
        fault = _fault_of(body)
        if fault is not None:
            return await self._fault(request, fault, body)
        model = body.get("model", "")
        if model.startswith("status-"):
            status = int(model.removeprefix("status-"))
            headers = {"retry-after": "7"} if status == 429 else {}
            return web.json_response({"error": {"message": f"scripted {status}", "type": "x"}},
                                     status=status, headers=headers)
        if model == "slow":
            await asyncio.sleep(SLOW_S)
        if model == "not-json":
            return web.Response(text="<html>oops</html>", content_type="text/html")
        if model == "no-choices":
            return web.json_response({"id": "x", "choices": []})
        if model == "bad-shape" and not body.get("stream"):
            return web.json_response({"id": "x", "choices": [{"message": "oops"}]})
        if model == "odd-usage":
            return web.json_response({"choices": [{"message": {"content": "fine"}, "finish_reason": "stop"}],
                                      "usage": {"prompt_tokens": "many", "completion_tokens": 2,
                                                "prompt_tokens_details": []}})
        if body.get("stream"):
            return await self._stream(request, model, body)
        if model == "tools":
            message = {"role": "assistant", "content": None, "tool_calls": TOOL_CALLS}
            finish = "tool_calls"
        else:
            message = {"role": "assistant", "content": JSON_ANSWER if model == "json" else "".join(ANSWER_PIECES)}
            finish = "stop" if model in ("json", "prose") else "length"
        choice = {"index": 0, "finish_reason": finish, "message": message}
        if body.get("logprobs"):
            choice["logprobs"] = {"content": [_logprob(piece) for piece in ANSWER_PIECES]}
        return web.json_response({"id": "chatcmpl-1", "object": "chat.completion", "model": "m",
                                  "choices": [choice], "usage": USAGE})

    async def _stream(self, request: web.Request, model: str, body: dict) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        data = _event(_chunk({"role": "assistant", "content": ""})) + b": keep-alive comment\r\n\r\n"
        pieces = ANSWER_PIECES[:2] if model in ("error-mid", "drop-mid") else ANSWER_PIECES
        if model == "tools":
            pieces = []
            for index, call in enumerate(TOOL_CALLS):
                data += _event(_chunk({"tool_calls": [{"index": index, "id": call["id"], "type": "function",
                                                       "function": {"name": call["function"]["name"], "arguments": ""}}]}))
                arguments = call["function"]["arguments"]
                for start in range(0, len(arguments), 5):
                    data += _event(_chunk({"tool_calls": [{"index": index,
                                                           "function": {"arguments": arguments[start:start + 5]}}]}))
        for piece in pieces:
            event = _chunk({"content": piece})
            if body.get("logprobs"):
                event["choices"][0]["logprobs"] = {"content": [_logprob(piece)]}
            data += _event(event)
        if model == "bad-shape":
            data += _event({"id": "chatcmpl-1", "choices": ["oops"]})
        if model == "error-mid":
            data += _event({"error": {"message": "scripted mid-stream failure"}})
        elif model != "drop-mid":
            data += _event(_chunk({}, "tool_calls" if model == "tools" else "stop"))
            if (body.get("stream_options") or {}).get("include_usage"):
                data += _event({"id": "chatcmpl-1", "choices": [], "usage": USAGE})
            data += b"data: [DONE]\r\n\r\n"
        if model == "pause-mid":
            first = data.index(b"\r\n\r\n", data.index(ANSWER_PIECES[0].encode())) + 4
            await response.write(data[:first])
            await asyncio.sleep(SLOW_S)
            data = data[first:]
        for start in range(0, len(data), self.chunk_bytes):
            await response.write(data[start:start + self.chunk_bytes])
        if model == "drop-mid":
            request.transport.close()
            return response
        await response.write_eof()
        return response

    # -- faults -------------------------------------------------------------------------------

    async def _fault(self, request: web.Request, fault: str, body: dict) -> web.StreamResponse:
        served = self.served.add(Served(fault, bool(body.get("stream"))))
        if fault.startswith("status-"):
            status = int(fault.removeprefix("status-"))
            return web.json_response({"error": {"message": f"scripted {status}", "type": "x"}}, status=status,
                                     headers={"retry-after": "7"} if status == 429 else {})
        served.prompt_tokens = count_chat_tokens(m.get("content") or "" for m in body.get("messages", []))
        if served.stream:
            return await self._fault_stream(request, fault, body, served)
        return await self._fault_answer(request, fault, served)

    async def _fault_stream(self, request: web.Request, fault: str, body: dict, served: Served):
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        await response.write(_event(_chunk({"role": "assistant", "content": ""})))
        half = fault in ("no-done", "reset", "bad-json")
        for piece in FAULT_PIECES[:len(FAULT_PIECES) // 2] if half else FAULT_PIECES:
            if fault == "trickle":
                await asyncio.sleep(TRICKLE_S)
            try:
                await response.write(_event(_chunk({"content": piece})))
            except ConnectionError:  # the gateway gave up on us: this piece was never served
                return response
            served.completion_text += piece
        if fault == "reset":
            await _drop(request)
            return response
        if fault == "bad-json":
            await response.write(b"data: {\"choices\": [oops\r\n\r\n")
        elif fault != "no-done":
            tail = _event(_chunk({}, "stop"))
            if fault != "drop-usage" and (body.get("stream_options") or {}).get("include_usage"):
                tail += _event({"id": "chatcmpl-1", "choices": [], "usage": _usage_of(served)})
            await response.write(tail + b"data: [DONE]\r\n\r\n")
            served.finished = True
        await response.write_eof()
        return response

    async def _fault_answer(self, request: web.Request, fault: str, served: Served):
        text = "".join(FAULT_PIECES)
        if fault == "reset":
            await _drop(request)
            return web.Response()
        if fault == "bad-json":
            return web.Response(text="<html>upstream hiccup</html>", content_type="text/html")
        answer = {"id": "chatcmpl-1", "object": "chat.completion", "model": "m",
                  "choices": [{"index": 0, "finish_reason": "stop",
                               "message": {"role": "assistant", "content": text}}]}
        if fault != "drop-usage":
            answer["usage"] = _usage_of(Served(fault, False, served.prompt_tokens, text))
        data = json.dumps(answer).encode()
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        response.content_length = len(data)
        await response.prepare(request)
        end = len(data) // 2 if fault == "no-done" else len(data)
        step = -(-end // 8) if fault == "trickle" else end
        for start in range(0, end, step):
            if fault == "trickle":
                await asyncio.sleep(TRICKLE_S)
            try:
                await response.write(data[start:min(start + step, end)])
            except ConnectionError:
                return response
        if fault == "no-done":
            await _drop(request)
            return response
        await response.write_eof()
        served.completion_text, served.finished = text, True
        return response

    async def _embeddings(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.requests.append({"headers": dict(request.headers), "body": body})
        inputs = body["input"]
        rows = [{"object": "embedding", "index": i, "embedding": [float(i), 0.5]} for i in range(len(inputs))]
        return web.json_response({"object": "list", "data": rows[::-1], "model": body["model"],
                                  "usage": {"prompt_tokens": 4, "total_tokens": 4}})

    # -- life cycle ---------------------------------------------------------------------------

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_post("/v1/embeddings", self._embeddings)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    def start(self) -> "ScriptedUpstream":
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(timeout=10)
        return self

    def stop(self) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)


def _fault_of(body: dict) -> str | None:
    for message in body.get("messages") or ():
        content = message.get("content") if isinstance(message, dict) else None
        found = _FAULT_TAG.search(content) if isinstance(content, str) else None  # parts carry no tag
        if found and found.group(1) in FAULTS:
            return found.group(1)
    return None


def _usage_of(served: Served) -> dict:
    return {"prompt_tokens": served.prompt_tokens, "completion_tokens": served.completion_tokens,
            "total_tokens": served.prompt_tokens + served.completion_tokens}


async def _drop(request: web.Request) -> None:
    """Drop the connection once what was written has left: the peer reads it, then a broken body."""
    transport = request.transport
    if transport is None:
        return
    for _ in range(1000):
        if transport.get_write_buffer_size() == 0:
            break
        await asyncio.sleep(0.001)
    transport.abort()


def start_fault_upstream(chunk_bytes: int = 4096) -> tuple[str, ServedCounter, Callable[[], None]]:
    """Start a scripted upstream on 127.0.0.1: its base URL, its count of what it served, and a
    function that stops it."""
    server = ScriptedUpstream(chunk_bytes=chunk_bytes).start()
    return server.url, server.served, server.stop
