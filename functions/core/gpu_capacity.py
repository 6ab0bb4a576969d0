"""What one GPU replica of a route can serve: concurrency, throughput, and what context length costs.

One module, shared by the config's defaults, the Modal app's sizing (``gpu_serving``: vLLM's
``--max-num-seqs`` and ``@modal.concurrent(max_inputs)`` are ``max-concurrent-requests``), the
cost model and the simulator, so that what is priced is what runs.

The model (Llama 3.1 8B in BF16 on vLLM; other dense models scale by their sizes):

* **Prefill** is compute-bound: a prompt token costs ``2 * params`` FLOPs for the weights plus
  ``2 * layers * d_model * L`` for attention over a prompt of ``L`` tokens (quadratic in ``L``
  over the whole prompt), at ``PREFILL_MFU`` of the GPU's dense BF16 peak.
* **Decode** is memory-bound: each step reads the weights once for the whole batch and every
  sequence's KV cache (``kv_bytes_per_token * context``), at ``DECODE_BANDWIDTH_EFFICIENCY`` of
  the GPU's memory bandwidth. So a long context slows every token it decodes, and a full batch
  decodes more tokens per second in all but each one more slowly.
* A replica admits at most ``max-concurrent-requests`` at once; past that the gateway spills.

Calibration, from published vLLM measurements of Llama 3.1 8B Instruct (no GPU was measured
for these figures; each is the conservative end of what the sources support):

* A40 48 GB, vLLM, 50 concurrent requests of 100 input / 600 output tokens: 1,017 output
  tokens/s (databasemart.com/blog/vllm-gpu-benchmark-a40). With the model below that fixes
  ``DECODE_BANDWIDTH_EFFICIENCY`` = 0.55 (a full batch, prefills interleaved).
* A100 40 GB, vLLM 0.23, 1,024 in / 128 out: about 75 tokens/s at one request (77 % of the
  bandwidth roofline) and 6.6x that at 8 concurrent (johnmusgrave.com/p/vllm-throughput-latency-
  sweep-on): the model at 0.55 is below both, as intended.
* H100 (Azure ND-H100-v5 and Ori's H100 SXM runs, techcommunity.microsoft.com "Performance of
  Llama 3.1 8B AI Inference using vLLM on ND-H100-v5"; blog.ori.co "Benchmarking Llama 3.1 8B
  Instruct on Nvidia H100 and A100"): used only as a sanity bound on the H100 row.
* ``PREFILL_MFU`` = 0.35 of dense BF16 peak: vLLM's chunked prefill on an 8B model reaches
  roughly 40-60 % on A100/H100-class parts; 0.35 leaves room for the decode steps it shares the
  GPU with. An L40S then prefills about 7,800 tokens/s, not the 20,000 once assumed.

Peak figures are NVIDIA's datasheets (dense, without sparsity). Measure your own with
``vllm bench serve`` and set ``[pricing.gpus.X]`` from it: the config always wins.

No I/O here.
"""

from __future__ import annotations

from dataclasses import dataclass

#: requests one replica serves at once unless the config says otherwise (the Modal app reads the
#: config, so this is what it admits by default)
DEFAULT_MAX_CONCURRENT = 32
#: one L40S replica at 32 requests and the reference context (``nominal_throughput``, rounded down):
#: the config's defaults, as the default route GPU is an L40S
DEFAULT_PREFILL_TOKENS_PER_S = 7700.0
DEFAULT_DECODE_TOKENS_PER_S = 750.0
#: share of memory bandwidth a full decode batch achieves (A40 calibration above)
DECODE_BANDWIDTH_EFFICIENCY = 0.55
#: share of dense BF16 peak a prefill achieves (conservative; see above)
PREFILL_MFU = 0.35
#: the context the config's throughput figures are quoted at (prompt plus half the answer)
REFERENCE_CONTEXT_TOKENS = 1000
#: CPU cores and memory a vLLM container holds besides its GPU (engine, API server, tokenizer,
#: the weights staged through host memory); the Modal app reserves them, so they are billed
DEFAULT_CPU_CORES = 2.0
DEFAULT_MEMORY_GIB = 16.0


@dataclass(frozen=True)
class GpuSpec:
    """A GPU's datasheet figures."""

    memory_gib: float
    bandwidth_gb_s: float
    bf16_dense_tflops: float


@dataclass(frozen=True)
class ModelSpec:
    """A dense decoder's sizes."""

    params: float
    layers: int
    d_model: int
    #: K and V of every layer for one token (8 KV heads x 128 x 2 bytes x 2 x layers for Llama 3.1 8B)
    kv_bytes_per_token: float

    @property
    def weight_bytes(self) -> float:
        return 2.0 * self.params  # BF16


GPUS = {
    "L4": GpuSpec(memory_gib=24, bandwidth_gb_s=300, bf16_dense_tflops=121),
    "A10G": GpuSpec(memory_gib=24, bandwidth_gb_s=600, bf16_dense_tflops=70),
    "L40S": GpuSpec(memory_gib=48, bandwidth_gb_s=864, bf16_dense_tflops=362),
    "A100": GpuSpec(memory_gib=40, bandwidth_gb_s=1555, bf16_dense_tflops=312),
    "H100": GpuSpec(memory_gib=80, bandwidth_gb_s=3350, bf16_dense_tflops=989),
}
LLAMA_3_1_8B = ModelSpec(params=8.03e9, layers=32, d_model=4096, kv_bytes_per_token=131072)


def prefill_s_per_token(gpu: GpuSpec, prompt_tokens, model: ModelSpec = LLAMA_3_1_8B):
    """Seconds of a whole replica per prompt token, for prompts of ``prompt_tokens``."""
    flops = 2.0 * model.params + 2.0 * model.layers * model.d_model * _array(prompt_tokens)
    return flops / (gpu.bf16_dense_tflops * 1e12 * PREFILL_MFU)


def decode_s_per_step(gpu: GpuSpec, batch: float, context_tokens, model: ModelSpec = LLAMA_3_1_8B):
    """Seconds of one decode step of ``batch`` sequences, each ``context_tokens`` long."""
    read = model.weight_bytes + batch * model.kv_bytes_per_token * _array(context_tokens)
    return read / (gpu.bandwidth_gb_s * 1e9 * DECODE_BANDWIDTH_EFFICIENCY)


def nominal_throughput(gpu: GpuSpec, max_concurrent: int = DEFAULT_MAX_CONCURRENT,
                       model: ModelSpec = LLAMA_3_1_8B) -> tuple[float, float]:
    """(prefill tokens/s, decode tokens/s) of a full replica at the reference context: the
    figures ``[pricing.gpus.X]`` quotes."""
    prefill = 1.0 / float(prefill_s_per_token(gpu, REFERENCE_CONTEXT_TOKENS, model))
    decode = max_concurrent / float(decode_s_per_step(gpu, max_concurrent, REFERENCE_CONTEXT_TOKENS, model))
    return prefill, decode


@dataclass(frozen=True)
class ReplicaCapacity:
    """What one replica serves, from the config's figures, with the context model above."""

    prefill_tokens_per_s: float  # at the reference context
    decode_tokens_per_s: float  # all sequences together, full batch, reference context
    max_concurrent: int
    #: KV bytes per token over the bytes of weights a step reads per sequence at a full batch:
    #: how fast a longer context slows decode (0 disables the context model)
    context_weight: float = 1.0
    model: ModelSpec = LLAMA_3_1_8B

    def _prefill_factor(self, prompt):
        reference = prefill_s_per_token(_UNIT_GPU, REFERENCE_CONTEXT_TOKENS, self.model)
        return 1.0 + self.context_weight * (prefill_s_per_token(_UNIT_GPU, prompt, self.model) / reference - 1.0)

    def _decode_factor(self, context):
        batch = self.max_concurrent
        reference = decode_s_per_step(_UNIT_GPU, batch, REFERENCE_CONTEXT_TOKENS, self.model)
        return 1.0 + self.context_weight * (decode_s_per_step(_UNIT_GPU, batch, context, self.model) / reference - 1.0)

    def work_s(self, prompt, completion):
        """Seconds of a whole replica each request keeps busy (prefill plus its share of decode)."""
        prompt = _array(prompt)
        completion = _array(completion)
        context = prompt + completion / 2.0
        return (prompt * self._prefill_factor(prompt) / self.prefill_tokens_per_s
                + completion * self._decode_factor(context) / self.decode_tokens_per_s)

    def duration_s(self, prompt, completion):
        """Seconds each request stays in flight on a full replica: its prefill, then one token per
        decode step of the whole batch (conservative: the batch is assumed full)."""
        prompt = _array(prompt)
        completion = _array(completion)
        step = self.max_concurrent / self.decode_tokens_per_s
        return (prompt * self._prefill_factor(prompt) / self.prefill_tokens_per_s
                + completion * step * self._decode_factor(prompt + completion / 2.0))


def _array(values):
    # imported here: the defaults above are read by the config, which the gateway's bundle loads
    # without numpy; only the policy and the simulator compute with these functions
    import numpy as np

    return np.asarray(values, dtype=float)


#: ratios only need the model's shape: any GPU gives the same relative factors
_UNIT_GPU = GpuSpec(memory_gib=1, bandwidth_gb_s=1, bf16_dense_tflops=1)
