"""Every chat answer says which tier served it (``x-tierup-tier``), as the README promises: a
cache hit says ``cache``, an error says the tier that failed or ``none`` when no tier was chosen.
The openai SDK against the gateway on moto server."""

from __future__ import annotations

import httpx
import openai
import pytest

from tierup.local_stack import create_key

from ..support import openai_client

MESSAGES = [{"role": "user", "content": "How do I reset my password?"}]


@pytest.fixture
def cached_gateway(make_runtime, serve):
    from functions.gateway.composition import build_gateway

    runtime = make_runtime({"routes": {"chat": {"cache": {"exact": True}}}})
    url = serve(build_gateway(runtime))
    return type("Gateway", (), {"url": url, "client": openai_client(url, create_key(runtime, "acme", "pro"))})


def test_a_cache_hit_says_it_came_from_the_cache(cached_gateway):
    first = cached_gateway.client.chat.completions.with_raw_response.create(
        model="chat", messages=MESSAGES, temperature=0)
    assert (first.headers["x-tierup-cache"], first.headers["x-tierup-tier"]) == ("miss", "serverless")
    second = cached_gateway.client.chat.completions.with_raw_response.create(
        model="chat", messages=MESSAGES, temperature=0)
    assert (second.headers["x-tierup-cache"], second.headers["x-tierup-tier"]) == ("hit-exact", "cache")
    with cached_gateway.client.chat.completions.with_streaming_response.create(
            model="chat", messages=MESSAGES, temperature=0, stream=True) as streamed:
        assert streamed.headers["x-tierup-tier"] == "cache"


def test_refusals_before_any_tier_say_none(cached_gateway):
    with pytest.raises(openai.NotFoundError) as unknown_route:
        cached_gateway.client.chat.completions.create(model="no-such-route", messages=MESSAGES)
    assert unknown_route.value.response.headers["x-tierup-tier"] == "none"
    with pytest.raises(openai.BadRequestError) as too_long:
        cached_gateway.client.chat.completions.create(model="chat", messages=MESSAGES, max_tokens=10**6)
    assert too_long.value.response.headers["x-tierup-tier"] == "none"
    unauthenticated = httpx.post(f"{cached_gateway.url}/v1/chat/completions", json={"model": "chat"})
    assert unauthenticated.status_code == 401 and unauthenticated.headers["x-tierup-tier"] == "none"


def test_a_failed_tier_is_named_on_its_error(make_runtime, serve):
    from functions.gateway.composition import build_gateway
    from tierup.local_stack import free_port

    runtime = make_runtime({"tiers": {"serverless": {"provider": "openai",
                                                     "base-url": f"http://127.0.0.1:{free_port()}/v1"}}},
                           environ={"TIERUP_PROVIDER": ""})  # nothing listens there
    client = openai_client(serve(build_gateway(runtime)), create_key(runtime, "acme", "pro"))
    with pytest.raises(openai.APIStatusError) as failed:
        client.with_options(max_retries=0).chat.completions.create(model="chat", messages=MESSAGES)
    assert failed.value.status_code == 503
    assert failed.value.response.headers["x-tierup-tier"] == "serverless"
