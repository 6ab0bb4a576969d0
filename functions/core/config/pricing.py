"""Prices: per-token model prices and per-second GPU prices, with GPU capacity."""

from __future__ import annotations

from pydantic import Field

from ..gpu_capacity import (DEFAULT_CPU_CORES, DEFAULT_DECODE_TOKENS_PER_S, DEFAULT_MAX_CONCURRENT, DEFAULT_MEMORY_GIB,
                            DEFAULT_PREFILL_TOKENS_PER_S)
from ._base import Section

#: Modal's list prices for what a container holds besides its GPU (modal.com/pricing: CPU per
#: physical core, memory per GiB, both per second)
MODAL_CPU_USD_PER_CORE_S = 0.0000131
MODAL_MEMORY_USD_PER_GIB_S = 0.00000222


class ModelPrice(Section):
    """USD per million tokens.

    A model with a prompt cache (Bedrock's Claude and Nova) bills the prompt tokens it reads from
    the cache and those it writes to it at their own rates; unset, each is billed at the input
    rate. The gateway marks cache points only for a model whose two cache rates are both set, so
    a cache write is never billed at a rate tierup does not know.
    """

    input_per_mtok: float = Field(alias="input-per-mtok", ge=0)
    output_per_mtok: float = Field(alias="output-per-mtok", ge=0)
    #: prompt tokens read from the provider's prompt cache (Claude: a tenth of the input rate)
    cache_read_per_mtok: float | None = Field(default=None, alias="cache-read-per-mtok", ge=0)
    #: prompt tokens written to the provider's prompt cache (Claude: 1.25 x the input rate)
    cache_write_per_mtok: float | None = Field(default=None, alias="cache-write-per-mtok", ge=0)

    @property
    def prices_prompt_cache(self) -> bool:
        return self.cache_read_per_mtok is not None and self.cache_write_per_mtok is not None

    @property
    def cache_read_rate(self) -> float:
        return self.input_per_mtok if self.cache_read_per_mtok is None else self.cache_read_per_mtok

    @property
    def cache_write_rate(self) -> float:
        return self.input_per_mtok if self.cache_write_per_mtok is None else self.cache_write_per_mtok

    @property
    def dearest_input_per_mtok(self) -> float:
        """The most one prompt token may cost: before the call, nobody knows it will not be a cache write."""
        return max(self.input_per_mtok, self.cache_read_rate, self.cache_write_rate)

    #: USD per million tokens in a Bedrock batch inference job, for models that offer one (about
    #: half of on-demand: aws.amazon.com/bedrock/pricing, "Batch"); unset: no Bedrock batch
    batch_input_per_mtok: float | None = Field(default=None, alias="batch-input-per-mtok", ge=0)
    batch_output_per_mtok: float | None = Field(default=None, alias="batch-output-per-mtok", ge=0)
    #: the account's Bedrock quota for the model (input plus output tokens per minute); past it
    #: requests are throttled. None: not modelled (``tierup simulate`` then never throttles)
    tokens_per_minute: int | None = Field(default=None, alias="tokens-per-minute", gt=0)


class GpuPrice(Section):
    """A GPU type: its price while a container lives and what one replica can serve."""

    usd_per_second: float = Field(alias="usd-per-second", gt=0)
    #: prompt tokens/s one replica prefills at the route's latency target
    prefill_tokens_per_s: float = Field(default=DEFAULT_PREFILL_TOKENS_PER_S, alias="prefill-tokens-per-s", gt=0)
    #: output tokens/s one replica decodes (all sequences together) at the latency target
    decode_tokens_per_s: float = Field(default=DEFAULT_DECODE_TOKENS_PER_S, alias="decode-tokens-per-s", gt=0)
    #: seconds from ``min_containers`` raised to a replica answering health checks
    warmup_s: float = Field(default=120.0, alias="warmup-s", ge=0)
    #: requests one replica serves at once at the latency target (vLLM ``max_num_seqs``); the
    #: gateway spills a promoted route to its start tier past ``replicas`` times this
    max_concurrent_requests: int = Field(default=DEFAULT_MAX_CONCURRENT, alias="max-concurrent-requests", gt=0)
    #: seconds a scale-to-zero container lingers after its last request (Modal ``scaledown_window``)
    idle_s: float = Field(default=60.0, alias="idle-s", ge=0)
    #: CPU cores and memory the container reserves beside the GPU; Modal bills them too
    cpu_cores: float = Field(default=DEFAULT_CPU_CORES, alias="cpu-cores", gt=0)
    memory_gib: float = Field(default=DEFAULT_MEMORY_GIB, alias="memory-gib", gt=0)


class PricingConfig(Section):
    models: dict[str, ModelPrice] = Field(default_factory=dict)
    gpus: dict[str, GpuPrice] = Field(default_factory=dict)
    #: USD per second of one CPU core and one GiB of memory of a GPU container (Modal's list prices)
    cpu_usd_per_core_s: float = Field(default=MODAL_CPU_USD_PER_CORE_S, alias="cpu-usd-per-core-s", ge=0)
    memory_usd_per_gib_s: float = Field(default=MODAL_MEMORY_USD_PER_GIB_S, alias="memory-usd-per-gib-s", ge=0)

    def model_price(self, model_id: str | None) -> ModelPrice | None:
        return self.models.get(model_id) if model_id else None

    @property
    def prompt_cache_priced_models(self) -> frozenset[str]:
        """Models whose prompt-cache reads and writes both have a price."""
        return frozenset(model for model, price in self.models.items() if price.prices_prompt_cache)
