"""What a client is told about its limits: OpenAI's ``x-ratelimit-*`` headers, ``Retry-After``,
and the 429 that names the limit it hit.

No I/O here.
"""

from __future__ import annotations

import math

from ..errors import RateLimitError
from .counters import MAX_CONCURRENT, MONTHLY_BUDGET_USD, REQUESTS_PER_MINUTE, TOKENS_PER_MINUTE, QuotaCounter

#: retry hint for a concurrency refusal (a slot frees when any request of the tenant ends)
CONCURRENCY_RETRY_S = 1.0


def format_reset(seconds: float) -> str:
    """OpenAI's duration format: ``20ms``, ``1.5s``, ``6m0s``."""
    if seconds < 1:
        return f"{max(0, round(seconds * 1000))}ms"
    if seconds < 60:
        return f"{seconds:.3g}s" if seconds < 10 else f"{round(seconds)}s"
    minutes, rest = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{rest}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes}m{rest}s"


def rate_limit_headers(counter: QuotaCounter, remaining: float, now: float) -> dict[str, str]:
    """The ``x-ratelimit-*`` headers for the per-minute request and token limits."""
    kind = {REQUESTS_PER_MINUTE: "requests", TOKENS_PER_MINUTE: "tokens"}.get(counter.name)
    if kind is None:
        return {}
    return {f"x-ratelimit-limit-{kind}": str(int(counter.limit)),
            f"x-ratelimit-remaining-{kind}": str(max(0, math.floor(remaining))),
            f"x-ratelimit-reset-{kind}": format_reset(counter.reset_in(now))}


def retry_after_s(counter: QuotaCounter, now: float) -> int:
    if counter.name == MAX_CONCURRENT:
        return math.ceil(CONCURRENCY_RETRY_S)
    return max(1, math.ceil(counter.reset_in(now)))


def quota_refusal(counter: QuotaCounter, needed: float, now: float) -> RateLimitError:
    """429 naming the limit, how much the request needed, and when to retry."""
    if counter.name == MAX_CONCURRENT:
        message = (f"too many concurrent requests: your plan allows {int(counter.limit)} at once "
                   f"(max-concurrent); retry when one finishes")
        code = "concurrency_limit_exceeded"
    elif counter.name == MONTHLY_BUDGET_USD:
        message = (f"monthly budget reached: this request may cost ${needed:.6f} and your plan's "
                   f"monthly-budget-usd of ${counter.limit:,.2f} has no room for it until {counter.window} ends")
        code = "monthly_budget_exceeded"
    else:
        unit = "request" if counter.name == REQUESTS_PER_MINUTE else f"{int(needed)} tokens"
        message = (f"rate limit reached for {counter.name}: your plan allows {int(counter.limit)}, and "
                   f"this {unit} would go over it; retry in {format_reset(counter.reset_in(now))}")
        code = f"{counter.name.replace('-', '_')}_exceeded"
    return RateLimitError(message, code=code, headers={"retry-after": str(retry_after_s(counter, now))})
