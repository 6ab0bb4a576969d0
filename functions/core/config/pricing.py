"""Prices: per-token model prices and per-second GPU prices, with GPU capacity."""

from __future__ import annotations

from pydantic import Field

from ._base import Section


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


class GpuPrice(Section):
    """A GPU type: its price while a container lives and what one replica can serve."""

    usd_per_second: float = Field(alias="usd-per-second", gt=0)
    #: prompt tokens/s one replica prefills at the route's latency target
    prefill_tokens_per_s: float = Field(default=20000.0, alias="prefill-tokens-per-s", gt=0)
    #: output tokens/s one replica decodes (all sequences together) at the latency target
    decode_tokens_per_s: float = Field(default=2500.0, alias="decode-tokens-per-s", gt=0)
    #: seconds from ``min_containers`` raised to a replica answering health checks
    warmup_s: float = Field(default=120.0, alias="warmup-s", ge=0)
    #: requests one replica serves at once at the latency target (vLLM ``max_num_seqs``); the
    #: gateway spills a promoted route to its start tier past ``replicas`` times this
    max_concurrent_requests: int = Field(default=64, alias="max-concurrent-requests", gt=0)
    #: seconds a scale-to-zero container lingers after its last request (Modal ``scaledown_window``)
    idle_s: float = Field(default=60.0, alias="idle-s", ge=0)


class PricingConfig(Section):
    models: dict[str, ModelPrice] = Field(default_factory=dict)
    gpus: dict[str, GpuPrice] = Field(default_factory=dict)

    def model_price(self, model_id: str | None) -> ModelPrice | None:
        return self.models.get(model_id) if model_id else None

    @property
    def prompt_cache_priced_models(self) -> frozenset[str]:
        """Models whose prompt-cache reads and writes both have a price."""
        return frozenset(model for model, price in self.models.items() if price.prices_prompt_cache)
