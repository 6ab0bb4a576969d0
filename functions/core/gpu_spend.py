"""GPU time as spend, minute by minute, as plain data: what a route's GPU containers cost over an
interval, and which spend counters the cost goes to.

Per UTC minute ``m`` of the interval a route's GPU containers are billed

    seconds(m) = max(reserved x 60, traffic(m))

* **reserved**: the route's ``min_containers`` (the route table's ``target_replicas``, as stored
  when the interval began: the executor only changes it when the policy runs, so it held through
  the interval). Modal bills them whether or not they serve, warming included. Exact, up to when
  in its minute the policy changed it (at most one minute per change, either way).
* **traffic** (scale-to-zero ``serverless-gpu``): *estimated*. Modal's stats say how many
  containers live at one instant, which a sample a minute apart would miss, so it is derived from
  the route's usage aggregates instead: a minute with requests served on ``serverless-gpu`` keeps
  the containers that work needs at the GPU type's prefill and decode rates busy (at least one)
  for the whole minute, and one container lingers ``idle-s`` after the last such minute (Modal's
  scale-down window). Cold starts are in the minute of their request. Such charges are marked
  ``estimated``.

The cost counts against the caps of the whole gateway and of the route (monthly and daily), in
the period of the minute it was spent in, and in the route's per-minute usage aggregates.

No I/O here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .config import GpuPrice, TierupConfig
from .ports import MinuteUsage
from .spend_caps import caps_for_scope

#: minutes one charge covers at most: one DynamoDB transaction holds the billing cursor, the
#: caps' counters and one usage row per minute (at most 100 items)
MINUTES_PER_CHARGE = 60


@dataclass(frozen=True, slots=True)
class MinuteCharge:
    minute: int
    #: container-seconds billed in this minute
    gpu_seconds: float
    usd: float


@dataclass(frozen=True, slots=True)
class GpuCharge:
    """A route's GPU time over the minutes ``[from_minute, to_minute)``."""

    route: str
    gpu: str
    from_minute: int
    to_minute: int
    #: minutes that cost something (the others cost nothing and are left out)
    minutes: tuple[MinuteCharge, ...]
    #: some of it was estimated from traffic (scale-to-zero containers), not from min_containers
    estimated: bool = False

    @property
    def usd(self) -> float:
        return sum(minute.usd for minute in self.minutes)

    @property
    def gpu_seconds(self) -> float:
        return sum(minute.gpu_seconds for minute in self.minutes)


def gpu_scopes(route: str) -> tuple[str, str]:
    """The spend scopes GPU time counts against: the whole gateway and the route (no tenant)."""
    return ("global", f"route:{route}")


def busy_containers(row: MinuteUsage | None, gpu: GpuPrice) -> int:
    """Containers the route's ``serverless-gpu`` requests of one minute kept busy (0 if none)."""
    served = (row.by_tier or {}).get("serverless-gpu", 0) if row is not None else 0
    if not served:
        return 0
    share = served / max(row.requests, served)  # tokens are per route, not per tier
    work_s = share * (row.prompt_tokens / gpu.prefill_tokens_per_s + row.completion_tokens / gpu.decode_tokens_per_s)
    return max(1, math.ceil(work_s / 60.0))


def charge_for(route: str, gpu_name: str, gpu: GpuPrice, reserved: int, from_minute: int, to_minute: int,
               traffic: dict[int, MinuteUsage]) -> GpuCharge:
    """The GPU time of ``[from_minute, to_minute)``; ``traffic`` holds the route's usage rows by
    minute (from ``idle-s`` before ``from_minute`` on, so an idle tail carries into the interval)."""
    idle_minutes = math.ceil(gpu.idle_s / 60.0)
    last_busy: int | None = None
    for minute in range(from_minute - idle_minutes, from_minute):
        if busy_containers(traffic.get(minute), gpu):
            last_busy = minute
    minutes: list[MinuteCharge] = []
    estimated = False
    for minute in range(from_minute, to_minute):
        busy = busy_containers(traffic.get(minute), gpu)
        if busy:
            last_busy = minute
            by_traffic = busy * 60.0
        elif last_busy is not None:  # one container lingers idle-s after the last request
            by_traffic = min(60.0, max(0.0, gpu.idle_s - 60.0 * (minute - last_busy - 1)))
        else:
            by_traffic = 0.0
        seconds = max(reserved * 60.0, by_traffic)
        estimated = estimated or by_traffic > reserved * 60.0
        if seconds > 0:
            minutes.append(MinuteCharge(minute, seconds, seconds * gpu.usd_per_second))
    return GpuCharge(route, gpu_name, from_minute, to_minute, tuple(minutes), estimated)


def counter_amounts(config: TierupConfig, charge: GpuCharge) -> dict[str, tuple[float, int]]:
    """USD per spend counter (``spend#SCOPE#PERIOD``) and the counter's expiry: each minute's cost
    goes to the caps of the period it was spent in."""
    amounts: dict[str, tuple[float, int]] = {}
    for minute in charge.minutes:
        for scope in gpu_scopes(charge.route):
            for cap in caps_for_scope(config, scope, minute.minute * 60.0):
                total, _ = amounts.get(cap.counter_key, (0.0, 0))
                amounts[cap.counter_key] = (total + minute.usd, cap.expires_at)
    return amounts
