"""Amazon Titan Text Embeddings v2 through Bedrock ``InvokeModel``: the semantic cache's embedder on AWS.

Titan v2 embeds one text per call and returns a unit vector when ``normalize`` is set, which is
what the cache's cosine and LSH expect. A small in-process memo avoids re-embedding a question
the same instance saw moments ago. Botocore errors become ``CacheError`` here; the cache turns
those into a miss, so an embedding outage never fails a request.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict

from ..core.errors import CacheError

#: Titan v2 accepts up to 8,192 tokens (about 50,000 characters); longer questions are cut
MAX_INPUT_CHARS = 50_000
MEMO_ENTRIES = 4096


class TitanEmbedder:
    """The ``Embedder`` port on ``amazon.titan-embed-text-v2:0``."""

    def __init__(self, client=None, model_id: str = "amazon.titan-embed-text-v2:0", dimensions: int = 512, *,
                 client_factory=None) -> None:
        self._client = client
        #: makes the Bedrock client in ``load`` (a start-up hook), not while the app module imports:
        #: importing boto3 and building a client costs about 0.3 s of cold start
        self._client_factory = client_factory
        self.name = model_id
        self.dimensions = dimensions
        self._memo: OrderedDict[str, list[float]] = OrderedDict()
        self._lock = threading.Lock()

    def load(self) -> None:
        if self._client is None and self._client_factory is not None:
            self._client = self._client_factory()

    def _embed_one(self, text: str) -> list[float]:
        if self._client is None:
            self.load()
        with self._lock:
            if text in self._memo:
                self._memo.move_to_end(text)
                return self._memo[text]
        body = json.dumps({"inputText": text[:MAX_INPUT_CHARS], "dimensions": self.dimensions,
                           "normalize": True})
        try:
            response = self._client.invoke_model(modelId=self.name, body=body, accept="application/json",
                                                 contentType="application/json")
            vector = json.loads(response["body"].read())["embedding"]
        except Exception as exc:  # botocore's errors are many classes; all mean "no vector now"
            raise CacheError(f"Titan embedding failed: {exc}") from exc
        if len(vector) != self.dimensions:
            raise CacheError(f"Titan returned {len(vector)} dimensions, expected {self.dimensions}")
        with self._lock:
            self._memo[text] = vector
            while len(self._memo) > MEMO_ENTRIES:
                self._memo.popitem(last=False)
        return vector

    def embed(self, texts: list[str]) -> list[list[float]]:
        return [self._embed_one(text) for text in texts]
