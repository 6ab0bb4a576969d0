"""The tools-and-schema request of ``gateway_overhead.py`` (modes ``tools-json``, ``tools-stream``).

The request an agent sends: two function tools (``tool_choice: auto``) and a strict
``response_format`` JSON schema, so the gateway's tools and structured-output work is on the
measured path: schema checks (validators kept per schema), tool schemas counted in the token
estimate, the answer validated against the schema before it is returned.

    python bench/tools_schema_mix.py load ARGS...        the shared load generator (load.py), this body
    python bench/tools_schema_mix.py upstream --port N   the shared fake upstream (upstream.py), which
                                                         also answers this body with schema-valid JSON

Both reuse the shared harness (``../shared/bench/gateway_overhead``) as they find it: the load
generator with this request instead of its plain one, the upstream with one middleware in front
that answers requests with a ``response_format`` (every other request reaches its own handler,
unchanged, so direct and gateway see the same upstream).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

HARNESS = Path(__file__).resolve().parents[2] / "shared" / "bench" / "gateway_overhead"

TOOLS = [
    {"type": "function", "function": {
        "name": "get_weather", "description": "Current weather in a city", "strict": True,
        "parameters": {"type": "object", "properties": {"city": {"type": "string"},
                                                        "unit": {"type": "string", "enum": ["c", "f"]}},
                       "required": ["city", "unit"], "additionalProperties": False}}},
    {"type": "function", "function": {
        "name": "search_docs", "description": "Search the product documentation",
        "parameters": {"type": "object", "properties": {"query": {"type": "string"},
                                                        "limit": {"type": "integer", "minimum": 1}},
                       "required": ["query"]}}},
]
SCHEMA = {"type": "object", "properties": {
    "city": {"type": "string"}, "celsius": {"type": "number"},
    "conditions": {"type": "array", "items": {"type": "string"}}},
    "required": ["city", "celsius", "conditions"], "additionalProperties": False}
RESPONSE_FORMAT = {"type": "json_schema", "json_schema": {"name": "weather", "schema": SCHEMA, "strict": True}}
#: what the upstream answers: valid against SCHEMA, about 20 tokens
ANSWER = json.dumps({"city": "Paris", "celsius": 21.5, "conditions": ["sunny", "dry", "light wind"]})


def build_request(url: str, key: str, model: str, stream: bool, max_tokens: int) -> tuple[str, int, bytes]:
    """As load.py's ``build_request``, with the tools-and-schema body."""
    parts = urlsplit(url.rstrip("/") + "/chat/completions")
    body = json.dumps({"model": model, "max_tokens": max_tokens, "stream": stream, "tools": TOOLS,
                       "tool_choice": "auto", "response_format": RESPONSE_FORMAT, "messages": [
                           {"role": "system", "content": "You are a helpful assistant."},
                           {"role": "user", "content": "What is the weather in Paris? Answer as JSON."}]}).encode()
    head = (f"POST {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\nAuthorization: Bearer {key}\r\n"
            f"Content-Type: application/json\r\nAccept: */*\r\nContent-Length: {len(body)}\r\n\r\n")
    return parts.hostname, parts.port or 80, head.encode() + body


def run_load() -> None:
    sys.path.insert(0, str(HARNESS))
    import load

    load.build_request = build_request
    load.main()


def run_upstream() -> None:
    sys.path.insert(0, str(HARNESS))
    import upstream
    from aiohttp import web

    pieces = [ANSWER[i:i + 8] for i in range(0, len(ANSWER), 8)]

    @web.middleware
    async def answer_schema_requests(request, handler):
        if request.method != "POST":
            return await handler(request)
        body = json.loads(await request.read())  # aiohttp keeps the body: the handler reads it again
        if "response_format" not in body:
            return await handler(request)
        base = {"id": "chatcmpl-mix0001", "created": int(time.time()), "model": body.get("model", "m")}
        usage = upstream.usage(60)
        if not body.get("stream"):
            return web.json_response({**base, "object": "chat.completion", "usage": usage, "choices": [
                {"index": 0, "message": {"role": "assistant", "content": ANSWER}, "finish_reason": "stop"}]})
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        await response.prepare(request)

        def event(delta: dict, finish: str | None = None) -> bytes:
            choice = {"index": 0, "delta": delta, "finish_reason": finish}
            return b"data: " + json.dumps({**base, "object": "chat.completion.chunk", "choices": [choice]}).encode() \
                + b"\n\n"

        await response.write(event({"role": "assistant", "content": ""}))
        for piece in pieces:
            await response.write(event({"content": piece}))
        await response.write(event({}, "stop"))
        if (body.get("stream_options") or {}).get("include_usage"):
            await response.write(b"data: " + json.dumps({**base, "choices": [], "usage": usage}).encode() + b"\n\n")
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response

    port = int(sys.argv[sys.argv.index("--port") + 1])
    app = upstream.make_app(0.0, 20, 0.0)
    app.middlewares.append(answer_schema_requests)
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None, backlog=1024)


if __name__ == "__main__":
    role = sys.argv.pop(1)
    run_load() if role == "load" else run_upstream()
