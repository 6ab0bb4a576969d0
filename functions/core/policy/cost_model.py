"""What a route costs per second on each tier, and what one reserved replica can absorb.

The model, in one place so that the online policy, the simulator and the hindsight optimum all
price a schedule identically:

* **Demand** is three rates: requests/s, prompt tokens/s, completion tokens/s.
* **Load** is demand in replica units: ``prompt_tps / prefill_capacity + completion_tps /
  decode_capacity`` — the share of one replica's time the demand would keep busy (prefill and
  decode share the GPU, so their fractions add up).
* **Reserved capacity** of ``n`` replicas is ``n * target_utilisation`` load units; the rest is
  headroom for bursts. Demand beyond it **spills** to the serverless tier and is paid there.
* **Reserved cost** is ``n * gpu usd/s`` whenever ``n`` replicas are wanted, warming included
  (a GPU is billed from the moment its container starts); ``gpu usd/s`` is the whole container:
  the GPU plus the CPU cores and memory Modal bills beside it. A released replica is billed on
  through ``release_tail_s`` (the executor's drain grace, then Modal's scale-down window).
* **Serverless cost** is per token at the route's Bedrock price, or, for a route that starts on
  ``serverless-gpu``, GPU-seconds of a scale-to-zero function: busy time plus the idle window and
  the cold start each burst pays.

Pure arithmetic on floats and numpy arrays; no I/O and no clock here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..config import RouteConfig, TierupConfig
from ..errors import ConfigError
from ..gpu_capacity import DEFAULT_MAX_CONCURRENT, ReplicaCapacity

@dataclass(frozen=True)
class RouteEconomics:
    """Everything the cost model needs about one route, resolved from the config."""

    #: USD per prompt / completion token on the serverless tier (0 when it is GPU-priced)
    serverless_usd_per_prompt_token: float
    serverless_usd_per_completion_token: float
    #: USD per second of one GPU container of the route's type
    gpu_usd_per_s: float
    #: prompt / completion tokens per second one replica handles at 100 % busy
    prefill_tokens_per_s: float
    decode_tokens_per_s: float
    #: share of a replica's capacity the policy plans to use; the rest absorbs bursts
    target_utilisation: float
    warmup_s: float
    max_replicas: int
    #: True when the route's serverless tier is a scale-to-zero GPU function, not Bedrock
    serverless_is_gpu: bool = False
    #: seconds a scale-to-zero container lingers after its last request
    gpu_idle_s: float = 60.0
    #: of ``gpu_usd_per_s``, the CPU and memory billed beside the GPU
    container_usd_per_s: float = 0.0
    #: requests one replica serves at once (past replicas x this the gateway spills)
    max_concurrent: int = DEFAULT_MAX_CONCURRENT
    #: seconds a released replica is still billed: drain grace plus Modal's scale-down window
    release_tail_s: float = 0.0
    #: the serverless model's tokens-per-minute quota (None: not modelled)
    serverless_tokens_per_minute: float | None = None

    @property
    def capacity(self) -> ReplicaCapacity:
        """One replica's concurrency and throughput, with the context-length model."""
        return ReplicaCapacity(self.prefill_tokens_per_s, self.decode_tokens_per_s, self.max_concurrent)

    @property
    def can_promote(self) -> bool:
        return self.max_replicas > 0 and self.gpu_usd_per_s > 0

    def load(self, prompt_tps, completion_tps):
        """Demand in replica units (works on floats and numpy arrays alike)."""
        return prompt_tps / self.prefill_tokens_per_s + completion_tps / self.decode_tokens_per_s

    def serverless_usd_per_s(self, rps, prompt_tps, completion_tps):
        """USD/s of serving this demand entirely on the serverless tier."""
        if not self.serverless_is_gpu:
            return (prompt_tps * self.serverless_usd_per_prompt_token
                    + completion_tps * self.serverless_usd_per_completion_token)
        busy = self.load(prompt_tps, completion_tps) / self.target_utilisation
        # A scale-to-zero container lives through each request's idle window and cold start, so a
        # trickle of requests keeps one container alive for a large share of the time.
        lingering = np.minimum(1.0, np.asarray(rps) * (self.gpu_idle_s + self.warmup_s))
        return self.gpu_usd_per_s * np.maximum(busy, lingering)


def economics_for(route_name: str, route: RouteConfig, config: TierupConfig) -> RouteEconomics:
    """Resolve a route's prices and capacities from ``[pricing]`` and ``[policy]``.

    Raises ``ConfigError`` naming the key when the route's serverless model has no price.
    A route without a GPU model (or whose GPU type is unpriced) gets ``max_replicas = 0``: it
    never promotes.
    """
    policy = config.policy
    gpu = config.pricing.gpus.get(route.gpu) if route.serverless_gpu else None
    serverless_is_gpu = route.start_tier == "serverless-gpu"
    price = config.pricing.model_price(route.serverless)
    if not serverless_is_gpu and price is None:
        raise ConfigError(f"pricing.models.{route.serverless}",
                          f"route {route_name!r} starts on serverless but its model has no price")
    quota = price.tokens_per_minute if price and not serverless_is_gpu else None
    if gpu is None:
        return RouteEconomics(
            serverless_usd_per_prompt_token=price.input_per_mtok / 1e6 if price else 0.0,
            serverless_usd_per_completion_token=price.output_per_mtok / 1e6 if price else 0.0,
            gpu_usd_per_s=0.0, prefill_tokens_per_s=1.0, decode_tokens_per_s=1.0,
            target_utilisation=policy.target_utilisation, warmup_s=0.0, max_replicas=0,
            serverless_tokens_per_minute=quota)
    container = gpu.cpu_cores * config.pricing.cpu_usd_per_core_s + gpu.memory_gib * config.pricing.memory_usd_per_gib_s
    return RouteEconomics(
        serverless_usd_per_prompt_token=price.input_per_mtok / 1e6 if price and not serverless_is_gpu else 0.0,
        serverless_usd_per_completion_token=price.output_per_mtok / 1e6 if price and not serverless_is_gpu else 0.0,
        gpu_usd_per_s=gpu.usd_per_second + container,
        prefill_tokens_per_s=gpu.prefill_tokens_per_s,
        decode_tokens_per_s=gpu.decode_tokens_per_s,
        target_utilisation=policy.target_utilisation,
        warmup_s=gpu.warmup_s,
        max_replicas=route.max_replicas,
        serverless_is_gpu=serverless_is_gpu,
        gpu_idle_s=gpu.idle_s,
        container_usd_per_s=container,
        max_concurrent=gpu.max_concurrent_requests,
        release_tail_s=policy.drain_grace_s + gpu.idle_s,
        serverless_tokens_per_minute=quota,
    )


def spill_fraction(replicas, load, target_utilisation: float):
    """Share of the demand that ``replicas`` cannot absorb (0 when there is no demand)."""
    load = np.asarray(load, dtype=float)
    capacity = np.asarray(replicas, dtype=float) * target_utilisation
    with np.errstate(divide="ignore", invalid="ignore"):
        spilled = np.where(load > 0, np.maximum(load - capacity, 0.0) / np.where(load > 0, load, 1.0), 0.0)
    return spilled


def usd_per_s(econ: RouteEconomics, replicas, rps, prompt_tps, completion_tps, *, ready=None):
    """USD/s of a route with ``replicas`` paid for, ``ready`` of them serving (default: all).

    Demand the ready replicas cannot absorb is paid at the serverless price for its share.
    """
    ready = replicas if ready is None else ready
    load = econ.load(prompt_tps, completion_tps)
    spilled = spill_fraction(ready, load, econ.target_utilisation)
    serverless = econ.serverless_usd_per_s(rps, prompt_tps, completion_tps)
    return np.asarray(replicas, dtype=float) * econ.gpu_usd_per_s + spilled * serverless
