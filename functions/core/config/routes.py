"""Routes: what clients name in the OpenAI ``model`` field, and the model each tier runs for it."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from ._base import Section
from .cache import RouteCacheConfig
from .images import RouteImagesConfig

Tier = Literal["serverless", "serverless-gpu", "reserved", "overflow"]
TIERS: tuple[Tier, ...] = ("serverless", "serverless-gpu", "reserved", "overflow")
#: tiers billed per token, at ``[pricing.models]``; the GPU tiers are billed per second, at
#: ``[pricing.gpus]``, by the traffic policy (``functions/promotion/gpu_spend.py``)
PER_TOKEN_TIERS: tuple[Tier, ...] = ("serverless", "overflow")


class RouteConfig(Section):
    """One client-facing route; ``[routes.NAME]`` in tierup.toml."""

    kind: Literal["chat", "embedding"] = "chat"
    #: Bedrock model id (the ``serverless`` tier), e.g. ``meta.llama3-1-8b-instruct-v1:0``
    serverless: str | None = None
    #: Hugging Face model served by vLLM on Modal (``serverless-gpu`` and ``reserved`` tiers)
    serverless_gpu: str | None = Field(default=None, alias="serverless-gpu")
    #: Hugging Face revision (commit hash) of ``serverless-gpu`` that gpu_tier pins its weights to
    serverless_gpu_revision: str | None = Field(default=None, alias="serverless-gpu-revision")
    #: model name at the optional overflow provider (any OpenAI-compatible API)
    overflow: str | None = None
    #: tier new traffic starts on; the policy may promote the route to ``reserved``
    start_tier: Literal["serverless", "serverless-gpu"] = Field(default="serverless", alias="start-tier")
    #: hard ceiling on ``max_tokens`` a client may ask for
    max_tokens: int = Field(default=4096, alias="max-tokens", gt=0)
    #: used when the client sends no ``max_tokens``
    default_max_tokens: int = Field(default=512, alias="default-max-tokens", gt=0)
    #: Modal GPU type for this route's GPU function (a key of ``[pricing.gpus]``)
    gpu: str = "L40S"
    #: most GPU containers the route may ever run (Modal ``max_containers``)
    max_replicas: int = Field(default=4, alias="max-replicas", ge=1)
    #: prompt plus answer tokens the GPU tiers hold per request (vLLM ``--max-model-len``); by
    #: default the largest plan's ``max-prompt-tokens`` plus ``max-tokens`` (core/gpu_serving.py)
    gpu_context_tokens: int | None = Field(default=None, alias="gpu-context-tokens", gt=0)
    #: mark the prompt's stable prefix (tools, system prompt, earlier turns) for the serverless
    #: model's prompt cache, where the model has one and its cache rates are priced
    #: (``functions/core/prompt_cache.py``); off: every prompt token is billed at the input rate
    prompt_caching: bool = Field(default=True, alias="prompt-caching")
    cache: RouteCacheConfig = Field(default_factory=RouteCacheConfig)
    images: RouteImagesConfig = Field(default_factory=RouteImagesConfig)

    @model_validator(mode="after")
    def _context_holds_an_answer(self) -> "RouteConfig":
        if self.gpu_context_tokens is not None and self.gpu_context_tokens <= self.max_tokens:
            raise ValueError("gpu-context-tokens must exceed max-tokens, or no prompt fits beside an answer")
        return self

    def model_for(self, tier: Tier) -> str | None:
        """The provider model id this route uses on ``tier`` (reserved runs the GPU model)."""
        if tier == "serverless":
            return self.serverless
        if tier in ("serverless-gpu", "reserved"):
            return self.serverless_gpu
        return self.overflow
