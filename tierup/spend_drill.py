"""A spend drill: many concurrent clients (the official openai SDK) drive a route past its cap on
running gateways, and the outcome is measured as a client sees it.

    spent         actual cost of every answered request (usage x the price of the tier that served it)
    overspend     spent - cap (negative: the cap stopped spend before it was fully used)
    stop_s        from the first refusal to the last request still answered after it (every instance
                  refusing: leases spent, flags re-read)

Times are when the client got each answer: under load a request may queue in the gateway long
after it was sent, and a refusal or an instant (simulated) answer is decided just before it ends.
    bound_usd     what the reservations in flight can add at most: clients x the largest estimate

Used by the functional test of the budget guardrails and by ``bench/kill_switch.py``.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from functions.core.chat import Usage
from functions.core.config import TierupConfig
from functions.core.pricing import token_cost_usd

MESSAGES = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "say something"}]


@dataclass(frozen=True, slots=True)
class Shot:
    start: float
    end: float
    status: int
    cost: float
    error: dict | None = None


@dataclass(frozen=True, slots=True)
class DrillResult:
    clients: int
    requests: int
    answered: int
    refused: int
    cap_usd: float
    spent_usd: float
    bound_usd: float
    stop_s: float | None

    @property
    def overspend_usd(self) -> float:
        return self.spent_usd - self.cap_usd


async def _client(index: int, urls: list[str], key: str, route: str, max_tokens: int, config: TierupConfig,
                  shots: list[Shot], state: dict, linger_s: float, deadline: float) -> None:
    from openai import APIStatusError, AsyncOpenAI

    client = AsyncOpenAI(base_url=f"{urls[index % len(urls)]}/v1", api_key=key, max_retries=0, timeout=30)
    try:
        while time.monotonic() < deadline:
            first_refusal = state.get("first_refusal")
            if first_refusal is not None and time.monotonic() > first_refusal + linger_s:
                return
            start = time.monotonic()
            try:
                raw = await client.chat.completions.with_raw_response.create(
                    model=route, messages=MESSAGES, max_tokens=max_tokens)
            except APIStatusError as exc:
                shots.append(Shot(start, time.monotonic(), exc.status_code, 0.0, exc.body))
                if exc.status_code == 503:
                    state.setdefault("first_refusal", start)
                continue
            completion = raw.parse()
            tier = raw.headers.get("x-tierup-tier", "serverless")
            model = config.routes[route].model_for(tier)
            usage = Usage(completion.usage.prompt_tokens, completion.usage.completion_tokens)
            cached = raw.headers.get("x-tierup-cache", "").startswith("hit")  # a cached answer costs nothing
            cost = 0.0 if cached else token_cost_usd(config.pricing, tier, model, usage)
            shots.append(Shot(start, time.monotonic(), 200, cost))
    finally:
        await client.close()


async def drive(urls: list[str], key: str, route: str, clients: int, config: TierupConfig, *,
                max_tokens: int = 8, linger_s: float = 3.0, timeout_s: float = 120.0) -> list[Shot]:
    """Send requests from ``clients`` concurrent clients until ``linger_s`` after the first refusal."""
    shots: list[Shot] = []
    state: dict = {}
    deadline = time.monotonic() + timeout_s
    await asyncio.gather(*(_client(i, urls, key, route, max_tokens, config, shots, state, linger_s, deadline)
                           for i in range(clients)))
    return shots


def analyse(shots: list[Shot], clients: int, cap_usd: float, max_estimate_usd: float) -> DrillResult:
    refusals = [s for s in shots if s.status == 503]
    answered = [s for s in shots if s.status == 200]
    stop_s = None
    if refusals:
        first = min(s.end for s in refusals)
        late = [s.end for s in answered if s.end > first]
        stop_s = max(late) - first if late else 0.0
    return DrillResult(clients=clients, requests=len(shots), answered=len(answered), refused=len(refusals),
                       cap_usd=cap_usd, spent_usd=sum(s.cost for s in answered),
                       bound_usd=clients * max_estimate_usd, stop_s=stop_s)
