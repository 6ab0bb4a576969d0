"""The OpenAI-compatible provider against a real aiohttp upstream on 127.0.0.1: the wire format it
sends, answers and streams it reads (events cut at every few bytes), and how each failure maps
onto tierup's error tree. Then the whole path: the openai SDK -> gateway -> provider -> upstream."""

from __future__ import annotations

import asyncio

import openai
import pytest

from functions.adapters.openai_compat import OpenAICompatibleProvider
from functions.core.chat import Message, ProviderCall
from functions.core.errors import (ProviderAccessDeniedError, ProviderBadRequestError, ProviderError,
                                   ProviderStreamIncompleteError, ProviderThrottledError, ProviderTimeoutError,
                                   ProviderUnavailableError)
from functions.core.tokens import count_chat_tokens
from tierup.local_stack import free_port

from ..openai_upstream import ANSWER_PIECES, SLOW_S, ScriptedUpstream
from ..support import openai_client


@pytest.fixture(scope="module")
def upstream():
    server = ScriptedUpstream(chunk_bytes=7).start()
    yield server
    server.stop()


def call(model: str = "ok", **kwargs) -> ProviderCall:
    return ProviderCall(model=model, messages=[Message(role="system", content="be brief"),
                                               Message(role="user", content=[{"type": "text", "text": "hi"}])],
                        max_tokens=16, **kwargs)


def run(coroutine_fn, url: str, timeout_s: float = 10.0):
    """Run ``coroutine_fn(provider)`` on a fresh loop with a fresh provider, closing it after."""
    async def main():
        provider = OpenAICompatibleProvider(url, "sk-test", timeout_s=timeout_s, name="upstream")
        try:
            return await coroutine_fn(provider)
        finally:
            await provider.close()

    return asyncio.run(main())


async def collect(provider, c: ProviderCall) -> list:
    return [delta async for delta in provider.stream(c)]


def test_complete_sends_openai_request_and_reads_answer(upstream):
    completion = run(lambda p: p.complete(call(temperature=0.2, stop=["\n"])), upstream.url)
    assert completion.text == "".join(ANSWER_PIECES)
    assert completion.finish_reason == "length"
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens,
            completion.usage.cached_tokens) == (11, 5, 3)
    sent = upstream.requests[-1]
    assert sent["headers"]["Authorization"] == "Bearer sk-test"
    assert sent["body"] == {"model": "ok", "max_tokens": 16, "temperature": 0.2, "stop": ["\n"],
                            "messages": [{"role": "system", "content": "be brief"},
                                         {"role": "user", "content": "hi"}]}


@pytest.mark.parametrize("chunk_bytes", [1, 3, 7, 64, 4096])
def test_stream_reassembles_events_cut_anywhere(chunk_bytes):
    server = ScriptedUpstream(chunk_bytes=chunk_bytes).start()
    try:
        deltas = run(lambda p: collect(p, call()), server.url)
    finally:
        server.stop()
    # pieces that arrive in one read are relayed as one delta; none is lost, reordered or empty
    assert "".join(d.text for d in deltas[:-1]) == "".join(ANSWER_PIECES)
    assert all(d.text and d.finish_reason is None for d in deltas[:-1])
    last = deltas[-1]
    assert last.finish_reason == "stop" and last.text == ""
    assert (last.usage.prompt_tokens, last.usage.completion_tokens, last.usage.cached_tokens) == (11, 5, 3)
    assert server.requests[-1]["body"]["stream"] is True
    assert server.requests[-1]["body"]["stream_options"] == {"include_usage": True}


def test_streams_reuse_one_connection(upstream):
    async def three_streams(provider):
        for _ in range(3):
            await collect(provider, call())

    before = len(upstream.requests)
    run(three_streams, upstream.url)
    ports = {r["peer_port"] for r in upstream.requests[before:]}
    assert len(ports) == 1, "a finished stream must return its connection to the pool"


def test_stream_abandoned_early_frees_its_connection(upstream):
    async def abandon_then_complete(provider):
        for _ in range(3):
            deltas = provider.stream(call("pause-mid"))  # the upstream is still sending
            assert (await anext(deltas)).text == ANSWER_PIECES[0]
            await deltas.aclose()  # what the gateway does when its client goes away
            # at once, not when the collector gets to it (only aiohttp's pool knows what is out)
            assert not provider._client().connector._acquired
        return await provider.complete(call())

    assert run(abandon_then_complete, upstream.url).text == "".join(ANSWER_PIECES)


@pytest.mark.parametrize("status, error, retry_after", [
    (400, ProviderBadRequestError, None),
    (404, ProviderBadRequestError, None),
    (422, ProviderBadRequestError, None),
    (401, ProviderAccessDeniedError, None),
    (403, ProviderAccessDeniedError, None),
    (429, ProviderThrottledError, "7"),
    (500, ProviderError, None),
    (502, ProviderUnavailableError, None),
    (503, ProviderUnavailableError, None),
    (504, ProviderUnavailableError, None),
])
@pytest.mark.parametrize("streaming", [False, True])
def test_status_errors_map_onto_the_tree(upstream, status, error, retry_after, streaming):
    action = (lambda p: collect(p, call(f"status-{status}"))) if streaming else \
        (lambda p: p.complete(call(f"status-{status}")))
    with pytest.raises(ProviderError) as caught:
        run(action, upstream.url)
    assert type(caught.value) is error
    assert f"scripted {status}" in caught.value.message
    assert caught.value.headers.get("retry-after") == retry_after


def test_timeout_is_a_provider_timeout(upstream):
    with pytest.raises(ProviderTimeoutError):
        run(lambda p: p.complete(call("slow")), upstream.url, timeout_s=SLOW_S / 4)


def test_connection_refused_is_unavailable():
    with pytest.raises(ProviderUnavailableError, match="unreachable"):
        run(lambda p: p.complete(call()), f"http://127.0.0.1:{free_port()}/v1")


@pytest.mark.parametrize("model", ["not-json", "no-choices", "bad-shape"])
def test_unreadable_answers_are_provider_errors(upstream, model):
    with pytest.raises(ProviderError) as caught:
        run(lambda p: p.complete(call(model)), upstream.url)
    assert type(caught.value) is ProviderError


@pytest.mark.parametrize("chunk_bytes", [7, 4096])  # 4096: the pieces and the error in one read
def test_error_event_mid_stream_raises_after_the_pieces_sent(chunk_bytes):
    received = []

    async def consume(provider):
        async for delta in provider.stream(call("error-mid")):
            received.append(delta.text)

    server = ScriptedUpstream(chunk_bytes=chunk_bytes).start()
    try:
        with pytest.raises(ProviderError, match="scripted mid-stream failure"):
            run(consume, server.url)
    finally:
        server.stop()
    assert "".join(received) == "".join(ANSWER_PIECES[:2])


def test_connection_dropped_mid_stream_is_an_incomplete_stream(upstream):
    received = []

    async def consume(provider):
        async for delta in provider.stream(call("drop-mid")):
            received.append(delta.text)

    with pytest.raises(ProviderStreamIncompleteError, match="broke off") as caught:
        run(consume, upstream.url)
    assert caught.value.code == "upstream_stream_incomplete" and caught.value.may_have_generated
    assert "".join(received) == "".join(ANSWER_PIECES[:2])


def test_embeddings_in_input_order(upstream):
    result = run(lambda p: p.embed("emb", ["a", "b", "c"], 2), upstream.url)
    assert result.vectors == [[0.0, 0.5], [1.0, 0.5], [2.0, 0.5]]
    assert result.usage.prompt_tokens == 4
    assert upstream.requests[-1]["body"] == {"model": "emb", "input": ["a", "b", "c"],
                                             "encoding_format": "float", "dimensions": 2}


def test_stream_event_of_unexpected_shape_is_a_provider_error(upstream):
    with pytest.raises(ProviderError, match="unexpected shape") as caught:
        run(lambda p: collect(p, call("bad-shape")), upstream.url)
    assert type(caught.value) is ProviderError


def test_malformed_usage_is_counted_with_the_tokenizer_and_marked_estimated(upstream):
    completion = run(lambda p: p.complete(call("odd-usage")), upstream.url)
    assert completion.text == "fine"
    # "many" prompt tokens is no count: the prompt is counted here; the valid count is kept
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens,
            completion.usage.cached_tokens) == (count_chat_tokens(["be brief", "hi"]), 2, 0)
    assert completion.usage.estimated


# -- the whole path -----------------------------------------------------------------------------


@pytest.fixture
def gateway_on_upstream(upstream, make_runtime, serve):
    from functions.gateway.composition import build_gateway
    from tierup.local_stack import create_key

    def start(serverless_model: str = "ok"):
        runtime = make_runtime({"tiers": {"serverless": {"provider": "openai", "base-url": upstream.url}},
                                "routes": {"chat": {"serverless": serverless_model}},
                                "pricing": {"models": {serverless_model: {"input-per-mtok": 1, "output-per-mtok": 2}}}},
                               environ={"TIERUP_PROVIDER": ""})
        url = serve(build_gateway(runtime))
        return openai_client(url, create_key(runtime, "acme", "pro"))

    return start


MESSAGES = [{"role": "user", "content": "hello"}]


def test_gateway_relays_upstream_answer(gateway_on_upstream, upstream):
    client = gateway_on_upstream()
    raw = client.chat.completions.with_raw_response.create(model="chat", messages=MESSAGES, max_tokens=8)
    completion = raw.parse()
    assert raw.headers["x-tierup-tier"] == "serverless"
    assert "x-tierup-simulated" not in raw.headers
    assert completion.choices[0].message.content == "".join(ANSWER_PIECES)
    assert completion.usage.prompt_tokens == 11 and completion.usage.prompt_tokens_details.cached_tokens == 3
    assert upstream.requests[-1]["body"]["model"] == "ok"


def test_gateway_relays_upstream_stream(gateway_on_upstream):
    client = gateway_on_upstream()
    chunks = list(client.chat.completions.create(model="chat", messages=MESSAGES, stream=True,
                                                 stream_options={"include_usage": True}))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "".join(ANSWER_PIECES)
    assert chunks[-1].usage.completion_tokens == 5


def test_gateway_passes_upstream_throttling_on_as_429(gateway_on_upstream):
    client = gateway_on_upstream("status-429")
    with pytest.raises(openai.RateLimitError) as caught:
        client.chat.completions.create(model="chat", messages=MESSAGES)
    assert caught.value.code == "provider_throttled"
    assert caught.value.response.headers["retry-after"] == "7"
