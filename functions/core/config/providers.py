"""Where each tier's traffic goes (``[tiers.NAME]``)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from ._base import Section


class TierEndpoint(Section):
    """One tier's provider.

    ``provider = "bedrock"`` calls Amazon Bedrock Converse in ``region``; ``"openai"`` calls any
    OpenAI-compatible API at ``base_url`` (``{route}`` is replaced with the route name, which
    is how each route reaches its own Modal function); ``"simulated"`` answers locally.
    """

    provider: Literal["bedrock", "openai", "simulated"]
    region: str | None = None
    base_url: str | None = Field(default=None, alias="base-url")
    #: environment variable holding the API key (never the key itself)
    api_key_env: str | None = Field(default=None, alias="api-key-env")
    #: environment variable holding a Modal Proxy Auth Token as ``TOKEN_ID:TOKEN_SECRET``, sent as
    #: the ``Modal-Key`` / ``Modal-Secret`` headers (the GPU endpoints require it)
    proxy_auth_env: str | None = Field(default=None, alias="proxy-auth-env")
    enabled: bool = True


class SimulatedConfig(Section):
    """The simulated provider: deterministic text at a configurable speed."""

    ttft_ms: float = Field(default=150.0, alias="ttft-ms", ge=0)
    tokens_per_s: float = Field(default=80.0, alias="tokens-per-s", gt=0)
    #: length of an answer when max_tokens allows it
    answer_tokens: int = Field(default=48, alias="answer-tokens", gt=0)
