"""How each GPU route's Modal function is sized, derived from tierup.toml alone, so that what
Modal and vLLM run is what the cost model prices:

    pricing.gpus.GPU.max-concurrent-requests -> @modal.concurrent(max_inputs), vLLM --max-num-seqs
    pricing.gpus.GPU.idle-s                  -> Modal scaledown_window
    pricing.gpus.GPU.cpu-cores, memory-gib   -> Modal cpu, memory (reserved, so billed as priced)
    routes.R.gpu-context-tokens              -> vLLM --max-model-len; by default the largest
                                                plan's max-prompt-tokens plus the route's max-tokens

``gpu_tier/app.py`` declares the functions from these; nothing here talks to Modal.

No I/O here.
"""

from __future__ import annotations

from dataclasses import dataclass

from .config import TierupConfig
from .gpu_capacity import DEFAULT_CPU_CORES, DEFAULT_MEMORY_GIB
from .errors import ConfigError

#: Modal accepts a scaledown_window of 2 to 3600 seconds
MIN_SCALEDOWN_WINDOW_S = 2
MAX_SCALEDOWN_WINDOW_S = 3600


@dataclass(frozen=True)
class GpuServing:
    """One route's serving settings."""

    #: requests one container takes at once (Modal routes no more to it; vLLM batches them all)
    max_inputs: int
    #: seconds an idle container above min_containers lingers
    scaledown_window_s: int
    #: the longest prompt plus answer, in tokens, vLLM reserves KV cache for
    max_model_len: int
    #: physical CPU cores and MiB of memory reserved beside the GPU (Modal bills the reservation)
    cpu_cores: float = DEFAULT_CPU_CORES
    memory_mib: int = round(DEFAULT_MEMORY_GIB * 1024)


def context_tokens(config: TierupConfig, route_name: str) -> int:
    """The route's GPU context: ``gpu-context-tokens``, or the largest plan prompt plus max-tokens."""
    route = config.routes[route_name]
    if route.gpu_context_tokens is not None:
        return route.gpu_context_tokens
    prompts = [plan.max_prompt_tokens for plan in config.plans.values()]
    if not prompts or None in prompts:
        raise ConfigError(f"routes.{route_name}.gpu-context-tokens",
                          "set it: a plan without max-prompt-tokens allows prompts of any length, so the "
                          "GPU context cannot be derived from the plans")
    return max(prompts) + route.max_tokens


def gpu_serving(config: TierupConfig, route_name: str) -> GpuServing:
    """The settings of the route's GPU function; ``ConfigError`` names the key that cannot work."""
    route = config.routes[route_name]
    price = config.pricing.gpus.get(route.gpu)
    if price is None:
        raise ConfigError(f"routes.{route_name}.gpu", f"{route.gpu!r} has no [pricing.gpus] entry")
    window = round(price.idle_s)
    if not MIN_SCALEDOWN_WINDOW_S <= window <= MAX_SCALEDOWN_WINDOW_S:
        raise ConfigError(f"pricing.gpus.{route.gpu}.idle-s",
                          f"Modal's scaledown_window takes {MIN_SCALEDOWN_WINDOW_S} to {MAX_SCALEDOWN_WINDOW_S} s")
    return GpuServing(max_inputs=price.max_concurrent_requests, scaledown_window_s=window,
                      max_model_len=context_tokens(config, route_name), cpu_cores=price.cpu_cores,
                      memory_mib=round(price.memory_gib * 1024))
