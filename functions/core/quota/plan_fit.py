"""Requests that can never fit the tenant's plan: refused with 400, never 429 (waiting would not
help), and the output ceiling a request runs with under the plan.

No I/O here.
"""

from __future__ import annotations

from ..config import PlanConfig
from ..errors import PromptTooLargeError, RequestError


def output_ceiling(plan: PlanConfig, asked: int | None, current: int) -> int:
    """The request's ``max_tokens`` under the plan: an explicit ask over the plan's maximum is a
    400; no ask is clamped to the plan's maximum."""
    limit = plan.max_output_tokens
    if limit is None:
        return current
    if asked is not None and asked > limit:
        raise RequestError(f"max_tokens {asked} is over your plan's max-output-tokens of {limit}",
                           param="max_tokens", code="max_tokens_too_large")
    return min(current, limit)


def check_embedding_inputs(route: str, max_tokens: int, input_tokens: list[int]) -> None:
    """Each input of an embeddings request within the route's ``max-tokens`` (the model's input
    limit): a longer one could never be embedded whole."""
    for index, tokens in enumerate(input_tokens):
        if tokens > max_tokens:
            raise PromptTooLargeError(f"input[{index}] has {tokens} tokens; route {route!r} embeds at most "
                                      f"{max_tokens} tokens per input (max-tokens)", param="input")


def check_fits(plan: PlanConfig, prompt_tokens: int, max_output_tokens: int, *,
               prompt_param: str = "messages") -> None:
    """Raise when no amount of waiting could admit the request."""
    if plan.max_prompt_tokens is not None and prompt_tokens > plan.max_prompt_tokens:
        raise PromptTooLargeError(f"the prompt has {prompt_tokens} tokens; your plan allows at most "
                                  f"{plan.max_prompt_tokens} (max-prompt-tokens)", param=prompt_param)
    needed = prompt_tokens + max_output_tokens
    for name, limit in (("tokens-per-minute", plan.tokens_per_minute), ("tokens-per-day", plan.tokens_per_day)):
        if limit is not None and needed > limit:
            raise PromptTooLargeError(
                f"the prompt ({prompt_tokens} tokens) plus max_tokens ({max_output_tokens}) is "
                f"{needed} tokens, over your plan's {name} of {limit}: lower max_tokens or the prompt",
                param="max_tokens")
