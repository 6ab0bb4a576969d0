"""What Bedrock prompt caching saves on a workload: every request priced with and without it.

The cache is modelled as Bedrock runs it and as the gateway uses it:

- Cache points where the gateway puts them: after the shared prefix (system prompt and tools)
  and after the history (every message before the newest), each only where the prefix since
  the last point reaches the model's minimum (``place_cache_points``, the gateway's own rule).
- A cached prefix lives ``TTL_S`` (five minutes) after its last use; each hit restarts the clock.
- A request reads the longest prefix still cached (its conversation's latest history point, else
  its app's shared prefix), writes everything from there to its last cache point, and sends the
  rest as plain input. Reads, writes and plain input are billed at the model's three rates
  (``usage_cost_usd``, the gateway's own pricing).
- A prefix is readable from the arrival of the request that writes it (requests in flight at
  the same moment are not told apart), and one cache serves all requests (Bedrock keeps it per
  account and region).

``trace_requests`` reads a per-request trace without conversation ids (the Azure LLM inference
trace) under a stated assumption: every prompt longer than ``shared_tokens`` starts with the
same ``shared_tokens``-token system prompt, shorter prompts share nothing, and no request
resends another's history. That understates what a real multi-turn app saves.

No I/O here beyond reading the trace file.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

from functions.core.chat import Usage
from functions.core.config import ModelPrice, PricingConfig
from functions.core.pricing import usage_cost_usd
from functions.core.prompt_cache import PromptCacheSupport, place_cache_points, prompt_cache_support

from .conversation_workload import PromptRequest

#: seconds a cached prefix lives after its last use (Bedrock's default cache point)
TTL_S = 300.0


@dataclass(frozen=True, slots=True)
class CachingEstimate:
    requests: int
    prompt_tokens: int
    read_tokens: int
    written_tokens: int
    output_tokens: int
    usd_without: float
    usd_with: float
    input_usd_without: float
    input_usd_with: float

    @property
    def saving(self) -> float:
        """Share of the whole bill (prompt and answer) that caching saves; negative: it costs more."""
        return 1.0 - self.usd_with / self.usd_without if self.usd_without else 0.0

    @property
    def input_saving(self) -> float:
        return 1.0 - self.input_usd_with / self.input_usd_without if self.input_usd_without else 0.0

    def as_dict(self) -> dict:
        return {**asdict(self), "saving": self.saving, "input_saving": self.input_saving}


def cache_use(requests: Iterable[PromptRequest], support: PromptCacheSupport | None,
              ttl_s: float = TTL_S) -> tuple[int, int, int, int, int]:
    """(requests, prompt tokens, tokens read from the cache, tokens written to it, output tokens)."""
    shared_until: dict[str, float] = {}                       # prefix id -> expiry
    history_at: dict[str, tuple[int, float]] = {}             # conversation -> (prefix length, expiry)
    count = prompt = read_total = written_total = output = 0
    for request in requests:
        count += 1
        prompt += request.prompt_tokens
        output += request.output_tokens
        if support is None:
            continue
        shared, history, now = request.shared_tokens, request.history_tokens, request.at_s
        at_shared, at_history = place_cache_points([(shared, True), (history, history > 0)], support)
        points = [length for length, placed in ((shared, at_shared), (shared + history, at_history)) if placed]
        if not points:
            continue
        read = 0
        cached_history = history_at.get(request.conversation_id)
        if at_history and cached_history and cached_history[1] >= now and cached_history[0] <= points[-1]:
            read = cached_history[0]
        elif at_shared and shared_until.get(request.prefix_id, -1.0) >= now:
            read = shared
        read_total += read
        written_total += max(0, points[-1] - read)
        if at_shared:
            shared_until[request.prefix_id] = now + ttl_s
        if at_history:
            history_at[request.conversation_id] = (shared + history, now + ttl_s)
    return count, prompt, read_total, written_total, output


def estimate_prompt_caching(requests: Iterable[PromptRequest], price: ModelPrice,
                            support: PromptCacheSupport | None, ttl_s: float = TTL_S) -> CachingEstimate:
    """The workload's bill at ``price`` without prompt caching and with the gateway's cache points."""
    count, prompt, read, written, output = cache_use(requests, support, ttl_s)
    plain = Usage(prompt_tokens=prompt, completion_tokens=output)
    cached = Usage(prompt_tokens=prompt, completion_tokens=output, cached_tokens=read, cache_write_tokens=written)
    answers = output * price.output_per_mtok / 1_000_000
    without, with_cache = usage_cost_usd(price, plain), usage_cost_usd(price, cached)
    return CachingEstimate(requests=count, prompt_tokens=prompt, read_tokens=read, written_tokens=written,
                           output_tokens=output, usd_without=without, usd_with=with_cache,
                           input_usd_without=without - answers, input_usd_with=with_cache - answers)


def saving_rows(workload: str, requests: list[PromptRequest], pricing: PricingConfig,
                models: Iterable[str]) -> list[dict]:
    """One row per model (each priced in ``pricing``) of what caching saves on ``requests``: for a
    report such as ``bench/prompt_caching.py``'s table."""
    return [{"workload": workload, "model": model,
             **estimate_prompt_caching(requests, pricing.models[model], prompt_cache_support(model)).as_dict()}
            for model in models]


def trace_requests(path: str | Path, shared_tokens: int) -> list[PromptRequest]:
    """A ``TIMESTAMP,ContextTokens,GeneratedTokens`` trace as requests, under the module
    docstring's assumption: prompts longer than ``shared_tokens`` start with one shared prefix."""
    requests: list[PromptRequest] = []
    start: datetime | None = None
    with open(path, newline="") as file:
        for number, row in enumerate(csv.DictReader(file)):
            at = datetime.fromisoformat(row["TIMESTAMP"][:26])
            start = start or at
            context = int(row["ContextTokens"])
            shared = shared_tokens if context > shared_tokens else 0
            requests.append(PromptRequest(at_s=(at - start).total_seconds(), prefix_id="app",
                                          conversation_id=f"r{number}", shared_tokens=shared, history_tokens=0,
                                          new_tokens=context - shared, output_tokens=int(row["GeneratedTokens"])))
    requests.sort(key=lambda request: request.at_s)
    return requests
