"""Every number a client sends is bounded before any work is done on it: oversized values are a
400 naming the parameter, sent through the official openai SDK and as raw JSON."""

from __future__ import annotations

import httpx
import openai
import pytest

from ..support import openai_client


def _raw(gateway, path: str, body: dict) -> httpx.Response:
    return httpx.post(f"{gateway.url}{path}", json=body, timeout=30,
                      headers={"authorization": f"Bearer {gateway.key}"})


def test_embedding_dimensions_past_any_model_are_refused_before_anything_is_built(gateway):
    client = openai_client(gateway.url, gateway.key)
    for dimensions in (1_000_000, 10 ** 30):
        with pytest.raises(openai.BadRequestError) as refused:
            client.embeddings.create(model="embed", input="hello", dimensions=dimensions)
        assert refused.value.body["param"] == "dimensions"
    # a size models serve still works
    answer = client.embeddings.create(model="embed", input="hello", dimensions=1024)
    assert len(answer.data[0].embedding) == 1024


def test_inputs_times_dimensions_is_bounded_so_an_answer_stays_small(gateway):
    inputs = ["some text"] * 1024
    response = _raw(gateway, "/v1/embeddings", {"model": "embed", "input": inputs, "dimensions": 1024})
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "dimensions"
    wanted = 512  # 2**19 numbers (MAX_EMBEDDING_VALUES) / 1024 dimensions
    allowed = _raw(gateway, "/v1/embeddings", {"model": "embed", "input": inputs[:wanted], "dimensions": 1024})
    assert allowed.status_code == 200
    assert len(allowed.json()["data"]) == wanted
    too_many = _raw(gateway, "/v1/embeddings", {"model": "embed", "input": ["x"] * 2049})
    assert too_many.status_code == 400 and too_many.json()["error"]["param"] == "input"


def test_an_embedding_input_longer_than_the_route_allows_is_a_400_naming_input(gateway):
    limit = gateway.runtime.config.routes["embed"].max_tokens
    client = openai_client(gateway.url, gateway.key)
    with pytest.raises(openai.BadRequestError) as refused:
        client.embeddings.create(model="embed", input=["short", "word " * (limit + 10)])
    body = refused.value.body
    assert body["param"] == "input" and body["code"] == "prompt_too_large"
    assert "input[1]" in body["message"]


def test_embedding_tokens_over_the_plan_name_input_not_messages(make_runtime, serve):
    from functions.gateway.composition import build_gateway
    from tierup.local_stack import create_key

    runtime = make_runtime({"plans": {"tiny": {"max-prompt-tokens": 50}}})
    client = openai_client(serve(build_gateway(runtime)), create_key(runtime, "small", "tiny"))
    with pytest.raises(openai.BadRequestError) as refused:
        client.embeddings.create(model="embed", input=["word " * 30, "word " * 30])
    assert refused.value.body["param"] == "input"


@pytest.mark.parametrize("field, value", [("max_tokens", 10 ** 30), ("max_completion_tokens", 10 ** 30),
                                          ("temperature", 1e308), ("top_p", 2), ("n", 10 ** 9),
                                          ("max_tokens", -1)])
def test_chat_numbers_out_of_range_are_400_naming_the_field(gateway, field, value):
    body = {"model": "chat", "messages": [{"role": "user", "content": "hi"}], field: value}
    response = _raw(gateway, "/v1/chat/completions", body)
    assert response.status_code == 400
    assert response.json()["error"]["param"] == field
