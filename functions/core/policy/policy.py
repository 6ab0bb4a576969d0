"""The online traffic-volume policy: how many reserved replicas a route should have now.

Each run (every minute) it forecasts the route's demand over the horizon that a decision commits
to — starting one GPU warm-up from now, lasting the minimum hold — prices every replica count
with the cost model, and moves toward the cheapest with hysteresis:

* **promote / scale up** at once when the cheapest count saves at least ``hysteresis`` of the
  current projected cost (warm-up is the executor's job: it warms first, then flips traffic);
* **demote / scale down** only after fewer replicas have been cheaper by that margin for the
  whole ``cooldown-s``, and never within ``min-hold-s`` of the last increase; it then keeps the
  most replicas any run of the low period wanted;
* **no change while warming**: a raise is applied atomically, so the next change waits until
  the replicas had their warm-up time.

Uses only the history it is given (past minutes): the simulator replays traces through this very
function. Pure: no I/O, no clock (``now_s`` is an argument).
"""

from __future__ import annotations

import math

import numpy as np

from ..config import PolicyConfig, RouteConfig, TierupConfig
from ..ports import MinuteUsage
from .cost_model import RouteEconomics, economics_for, spill_fraction
from .decision import RouteDecision, RoutePolicyState
from .signals import LiveSignals
from .forecast import MINUTES_PER_DAY, DemandForecast, forecast_demand, series_from_history


def decide(route: str, route_config: RouteConfig, history: list[MinuteUsage], state: RoutePolicyState,
           now_s: float, config: TierupConfig, live: LiveSignals | None = None,
           ) -> tuple[RouteDecision, RoutePolicyState]:
    """Decide ``route``'s reserved replicas from its usage ``history`` (oldest first) and, when the
    runner has them, its ``live`` signals.

    A disabled policy (``[policy] enabled = false``) releases all reserved capacity.
    """
    econ = economics_for(route, route_config, config)
    return decide_with_economics(route, econ, history, state, now_s, config.policy, live)


def expected_usd_per_s(econ: RouteEconomics, replicas: np.ndarray, forecast: DemandForecast) -> np.ndarray:
    """Projected USD/s for each candidate replica count, averaged over the burst scenarios."""
    burst = forecast.burst_factors
    prompt, completion = forecast.prompt_tps * burst, forecast.completion_tps * burst
    load = econ.load(prompt, completion)
    serverless = econ.serverless_usd_per_s(forecast.rps * burst, prompt, completion)
    spilled = spill_fraction(replicas[:, None], load[None, :], econ.target_utilisation)
    return replicas * econ.gpu_usd_per_s + (spilled * serverless[None, :]).mean(axis=1)


def horizon_minutes(policy: PolicyConfig) -> int:
    """How far ahead a decision is priced: the minimum hold it commits to (at least 5 minutes)."""
    return max(5, math.ceil(policy.min_hold_s / 60))


def decide_with_economics(route: str, econ: RouteEconomics, history: list[MinuteUsage],
                          state: RoutePolicyState, now_s: float, policy: PolicyConfig,
                          live: LiveSignals | None = None) -> tuple[RouteDecision, RoutePolicyState]:
    """``decide`` with the route's economics already resolved (the simulator resolves them once)."""
    current = state.replicas
    now_minute = int(now_s // 60)
    lead = math.ceil(econ.warmup_s / 60)
    horizon = horizon_minutes(policy)
    recent = series_from_history(history, now_minute - policy.recent_minutes, now_minute)
    yesterday = None
    day_start = now_minute - MINUTES_PER_DAY - policy.recent_minutes
    if history and history[0].minute <= day_start + policy.recent_minutes:
        yesterday = series_from_history(history, day_start, day_start + policy.recent_minutes + lead + horizon)
    forecast = forecast_demand(recent, yesterday, horizon, lead)

    ceiling = econ.max_replicas if (econ.can_promote and policy.enabled) else 0
    candidates = np.arange(ceiling + 1, dtype=float)
    costs = expected_usd_per_s(econ, candidates, forecast) if ceiling else expected_usd_per_s(
        econ, np.zeros(1), forecast)
    best = int(np.argmin(costs))
    cost_now = float(costs[min(current, ceiling)])
    cost_best = float(costs[best])
    # A change must beat the hysteresis plus the forecast's own noise (two standard errors, ~95 %):
    # a level read off ten noisy minutes must not flip the route back and forth.
    # Relative to the replicas that would change hands, not the route's whole bill, so that a big
    # route still adds or sheds its marginal replica when that pays.
    changed_usd = max(abs(best - min(current, ceiling)), 1) * econ.gpu_usd_per_s
    margin = (policy.hysteresis + 2 * forecast.uncertainty) * min(cost_now, changed_usd)

    def verdict(target: int, reason: str, new_state: RoutePolicyState) -> tuple[RouteDecision, RoutePolicyState]:
        target_cost = float(costs[min(target, ceiling)])
        decision = RouteDecision(
            route=route, replicas=target, previous_replicas=current, reason=reason,
            projected_savings_usd_per_hour=(cost_now - target_cost) * 3600 if target != current else 0.0,
            forecast_rps=forecast.rps, forecast_prompt_tps=forecast.prompt_tps,
            forecast_completion_tps=forecast.completion_tps,
            projected_cost_usd_per_hour=target_cost * 3600,
            serverless_cost_usd_per_hour=float(costs[0]) * 3600)
        return decision, new_state

    demand = f"{forecast.rps:.2f} req/s forecast ({forecast.method})"
    if ceiling == 0:
        why = "the policy is disabled" if not policy.enabled else "the route has no priced GPU tier"
        return verdict(0, f"Serverless only: {why}.", RoutePolicyState())

    warming_until = (state.promoted_at_s or -math.inf) + econ.warmup_s
    if current > ceiling:
        return verdict(ceiling, f"Capped at max-replicas {ceiling}.",
                       RoutePolicyState(replicas=ceiling, promoted_at_s=state.promoted_at_s))
    if now_s < warming_until:
        return verdict(current, f"Holding {current} replicas while they warm up.", state)

    if best > current and cost_now - cost_best >= margin:
        return verdict(best, f"Raising reserved replicas {current}->{best}: {demand} makes them "
                             f"{(1 - cost_best / cost_now):.0%} cheaper than now.",
                       RoutePolicyState(replicas=best, promoted_at_s=now_s))

    lower_is_cheaper = best < current and cost_now - cost_best >= margin
    if not lower_is_cheaper:
        return verdict(current, f"Keeping {current} reserved replicas: {demand}; no cheaper count "
                                f"by the {margin / cost_now if cost_now else 0:.0%} margin.",
                       RoutePolicyState(replicas=current, promoted_at_s=state.promoted_at_s))

    low_since = state.low_since_s if state.low_since_s is not None else now_s
    low_target = max(best, state.low_target) if state.low_since_s is not None else best
    held_for = now_s - (state.promoted_at_s if state.promoted_at_s is not None else -math.inf)
    low_for = now_s - low_since
    if low_for >= policy.cooldown_s and held_for >= policy.min_hold_s:
        return verdict(low_target, f"Lowering reserved replicas {current}->{low_target}: fewer have "
                                   f"been cheaper for {low_for / 60:.0f} min; {demand}.",
                       RoutePolicyState(replicas=low_target, promoted_at_s=state.promoted_at_s))
    return verdict(current, f"Keeping {current} replicas through the cooldown: {best} would be cheaper "
                            f"for {low_for / 60:.0f} of {policy.cooldown_s / 60:.0f} min; {demand}.",
                   RoutePolicyState(replicas=current, promoted_at_s=state.promoted_at_s,
                                    low_since_s=low_since, low_target=low_target))
