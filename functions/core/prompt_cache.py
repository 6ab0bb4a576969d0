"""Bedrock prompt caching: which models cache prompts, and where a request's cache points go.

A cache point ends a prefix of the prompt that Bedrock may keep for five minutes after its last
use (each hit restarts the clock). A later request that starts with the same prefix reads it from
the cache at the model's cache-read rate (a tenth of the input rate on Claude, a quarter on
Nova); the request that first sends it writes it at the cache-write rate (1.25 x input on
Claude, the plain input rate on Nova). The prompt runs tools, then system, then messages, so
the stable prefix is, in that order: the tool definitions, the system prompt, and every message
before the newest one (earlier turns, or a long document sent ahead of the question).

Bedrock keeps a cache point only when the prompt up to it is at least the model's minimum, and
each further point at least that many tokens after the one before; a point short of it is
ignored (the request still succeeds, uncached), so the counts here need only be near.

Which models cache, their minimum tokens per cache point, how many points a request may hold
and whether ``toolConfig`` takes one: Amazon Bedrock User Guide, "Prompt caching for faster model
inference", supported-models table. Llama, Mistral and Titan models do not cache prompts.

No I/O here.
"""

from __future__ import annotations

from dataclasses import dataclass

from .bedrock_models import split_profile


@dataclass(frozen=True, slots=True)
class PromptCacheSupport:
    #: prompt tokens a cache point needs (from the start, or from the cache point before it)
    min_tokens: int
    #: cache points one request may hold
    max_points: int
    #: ``toolConfig.tools`` takes a cache point (Claude); on Nova the tools are cached with the
    #: first cache point in ``system`` or ``messages``
    caches_tools: bool


_CLAUDE_1K = PromptCacheSupport(min_tokens=1024, max_points=4, caches_tools=True)
_CLAUDE_2K = PromptCacheSupport(min_tokens=2048, max_points=4, caches_tools=True)
_CLAUDE_4K = PromptCacheSupport(min_tokens=4096, max_points=4, caches_tools=True)
_NOVA = PromptCacheSupport(min_tokens=1000, max_points=4, caches_tools=False)

#: foundation-model id prefix -> its prompt cache; the longest matching prefix wins
PROMPT_CACHE_MODELS: dict[str, PromptCacheSupport] = {
    "anthropic.claude-3-7-sonnet": _CLAUDE_1K,
    "anthropic.claude-3-5-haiku": _CLAUDE_2K,
    "anthropic.claude-sonnet-4": _CLAUDE_1K,      # Sonnet 4 and 4.5
    "anthropic.claude-opus-4": _CLAUDE_1K,        # Opus 4 and 4.1
    "anthropic.claude-opus-4-5": _CLAUDE_4K,
    "anthropic.claude-haiku-4-5": _CLAUDE_4K,
    "amazon.nova-micro": _NOVA,
    "amazon.nova-lite": _NOVA,
    "amazon.nova-pro": _NOVA,
    "amazon.nova-premier": _NOVA,
}


def prompt_cache_support(model_id: str | None) -> PromptCacheSupport | None:
    """The prompt cache of a Bedrock model id, inference profile id or the ARN of either; None: it
    has none (or the id does not say which model it is, as an application profile's ARN does not)."""
    if not model_id:
        return None
    _, base_model = split_profile(model_id.rsplit("/", 1)[-1])
    matches = [prefix for prefix in PROMPT_CACHE_MODELS if base_model.startswith(prefix)]
    return PROMPT_CACHE_MODELS[max(matches, key=len)] if matches else None


def place_cache_points(segments: list[tuple[int, bool]], support: PromptCacheSupport) -> list[bool]:
    """Which prefix segments end with a cache point.

    ``segments`` are the prompt's stable parts in prompt order, each as (its tokens, whether a
    cache point may follow it); the tokens of a part that may not hold one (Nova's tools) still
    count towards the next. A point goes after a part when the prefix since the last point (or
    the start) reaches the model's minimum, up to the model's most points.
    """
    placed: list[bool] = []
    since_last = 0
    points = 0
    for tokens, may_hold in segments:
        since_last += tokens
        place = may_hold and tokens > 0 and since_last >= support.min_tokens and points < support.max_points
        if place:
            points += 1
            since_last = 0
        placed.append(place)
    return placed
