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
"""

from __future__ import annotations

import asyncio
import json
import threading

from aiohttp import web

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


class ScriptedUpstream:
    def __init__(self, chunk_bytes: int = 7) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self.chunk_bytes = chunk_bytes
        self.requests: list[dict] = []
        self._loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True, name="upstream")

    # -- handlers -----------------------------------------------------------------------------

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.requests.append({"headers": dict(request.headers), "body": body,
                              "peer_port": request.transport.get_extra_info("peername")[1]})
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
