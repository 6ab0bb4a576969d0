"""The gateway as a client sees it: the official openai SDK against uvicorn on moto server."""

from __future__ import annotations

import time

import openai
import pytest

from ..support import openai_client

MESSAGES = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hello"}]


def test_chat_completion(gateway):
    client = openai_client(gateway.url, gateway.key)
    raw = client.chat.completions.with_raw_response.create(model="chat", messages=MESSAGES, max_tokens=8)
    completion = raw.parse()
    assert raw.headers["x-request-id"]
    assert raw.headers["x-tierup-tier"] == "serverless"
    assert raw.headers["x-tierup-simulated"] == "true"
    assert completion.system_fingerprint == "tierup-simulated"
    assert completion.model == "chat"
    assert completion.choices[0].message.content.startswith("[simulated]")
    assert completion.choices[0].finish_reason == "length"
    assert completion.usage.completion_tokens > 0
    assert completion.usage.prompt_tokens > 0


def test_chat_is_deterministic(gateway):
    client = openai_client(gateway.url, gateway.key)
    first = client.chat.completions.create(model="chat", messages=MESSAGES)
    second = client.chat.completions.create(model="chat", messages=MESSAGES)
    assert first.choices[0].message.content == second.choices[0].message.content


def test_stream_with_usage(gateway):
    client = openai_client(gateway.url, gateway.key)
    chunks = list(client.chat.completions.create(model="chat", messages=MESSAGES, stream=True,
                                                 stream_options={"include_usage": True}))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.startswith("[simulated]")
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == ["stop"]
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens > 0


def test_stream_arrives_incrementally(make_runtime, serve):
    from functions.gateway.composition import build_gateway
    from tierup.local_stack import create_key

    runtime = make_runtime({"simulated": {"ttft-ms": 0, "tokens-per-s": 40, "answer-tokens": 8}}, fast=False)
    url = serve(build_gateway(runtime))
    client = openai_client(url, create_key(runtime, "acme", "pro"))
    arrivals = []
    for chunk in client.chat.completions.create(model="chat", messages=MESSAGES, stream=True):
        if chunk.choices and chunk.choices[0].delta.content:
            arrivals.append(time.monotonic())
    assert len(arrivals) == 8
    # 8 tokens at 40 tokens/s: the last arrives ~175 ms after the first, not all at once.
    assert arrivals[-1] - arrivals[0] > 0.1


def test_models_list(gateway):
    models = openai_client(gateway.url, gateway.key).models.list()
    assert {m.id for m in models} == {"chat", "summarize", "embed"}


def test_embeddings(gateway):
    result = openai_client(gateway.url, gateway.key).embeddings.create(model="embed", input=["a", "b"])
    assert len(result.data) == 2 and len(result.data[0].embedding) > 0
    assert result.usage.prompt_tokens > 0


@pytest.mark.parametrize("kwargs, status, param", [
    ({"model": "nope", "messages": MESSAGES}, 404, "model"),
    ({"model": "chat", "messages": []}, 400, "messages"),
    ({"model": "chat", "messages": [{"role": "robot", "content": "x"}]}, 400, "messages[0].role"),
    ({"model": "chat", "messages": MESSAGES, "max_tokens": 10**6}, 400, "max_tokens"),
    ({"model": "chat", "messages": MESSAGES, "temperature": "hot"}, 400, "temperature"),
    ({"model": "embed", "messages": MESSAGES}, 400, "model"),
])
def test_bad_requests(gateway, kwargs, status, param):
    client = openai_client(gateway.url, gateway.key)
    with pytest.raises(openai.APIStatusError) as caught:
        client.chat.completions.create(**kwargs)
    assert caught.value.status_code == status
    assert caught.value.body["param"] == param
    assert caught.value.response.headers["x-request-id"]


def test_unknown_key_is_401(gateway):
    with pytest.raises(openai.AuthenticationError):
        openai_client(gateway.url, "tu-not-a-key").chat.completions.create(model="chat", messages=MESSAGES)
