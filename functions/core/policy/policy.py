"""The online traffic-volume policy: how many reserved replicas a route should have now.

Each run (every ``interval-s``) it forecasts the route's demand over the horizon that a decision
commits to — starting one GPU warm-up from now, lasting the minimum hold — raised to what the
live signals show when they show a burst, with scenarios as bursty as the recent minutes' 10-second
buckets, prices every replica count with the cost model, and moves toward the cheapest with
hysteresis:

* **raise** straight to the cheapest count, in one step, when it saves at least ``hysteresis``
  of the current projected cost; also while earlier replicas still warm (warm-up is the
  executor's job: it warms first, then flips traffic). Added replicas are paid through their
  warm-up and release tail: a raise that one minimum hold does not earn that back waits until
  the higher count has been wanted long enough (ski rental again, ``_raise_wait``);
* **promote** (from serverless) only when the promotion pays: the ski-rental rule of
  ``episodes`` waits until the current episode (reserved cheaper) has lasted long enough, judged
  by the route's own past episodes, so a spike shorter than break-even stays serverless;
* **headroom, not a cap**: counts are priced with each replica absorbing ``target-utilisation`` of
  its capacity, except when the demand exceeds the whole fleet at full capacity: then the router
  fills every replica, and every count is priced at full capacity (``_priced_counts``);
* **demote / scale down** only after fewer replicas have been cheaper by that margin for the
  whole ``cooldown-s``, and never within ``min-hold-s`` of the last increase nor while replicas
  warm; it then keeps the most replicas any run of the low period wanted.

Uses only the history it is given (past minutes): the simulator replays traces through this very
function. Pure: no I/O, no clock (``now_s`` is an argument).
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from ..config import PolicyConfig, RouteConfig, TierupConfig
from ..ports import MinuteUsage
from .backlog import BatchBacklog, backlog_pays, backlog_usd_per_s, material
from .cost_model import RouteEconomics, economics_for, spill_fraction
from .decision import RouteDecision, RoutePolicyState
from .episodes import break_even_s, buy_after_s, predicted_length_s, remember
from .forecast import (MINUTES_PER_DAY, DemandForecast, MinuteSeries, activity_start, forecast_demand,
                       series_from_history, since_level_shift, with_intra_minute_shape,
                       with_live_signals)
from .signals import LiveSignals


def decide(route: str, route_config: RouteConfig, history: list[MinuteUsage], state: RoutePolicyState,
           now_s: float, config: TierupConfig, live: LiveSignals | None = None,
           backlog: BatchBacklog | None = None) -> tuple[RouteDecision, RoutePolicyState]:
    """Decide ``route``'s reserved replicas from its usage ``history`` (oldest first) and, when the
    runner has them, its ``live`` signals and its queued batch work (``backlog``).

    A disabled policy (``[policy] enabled = false``) releases all reserved capacity.
    """
    econ = economics_for(route, route_config, config)
    return decide_with_economics(route, econ, history, state, now_s, config.policy, live, backlog)


def expected_usd_per_s(econ: RouteEconomics, replicas: np.ndarray, forecast: DemandForecast,
                       beyond_fleet: bool = False) -> np.ndarray:
    """Projected USD/s for each candidate replica count, averaged over the burst scenarios;
    ``beyond_fleet``: the demand exceeds what the whole fleet holds (``_priced_counts``)."""
    burst = forecast.burst_factors
    prompt, completion = forecast.prompt_tps * burst, forecast.completion_tps * burst
    load = econ.load(prompt, completion)
    serverless = np.broadcast_to(econ.serverless_usd_per_s(forecast.rps * burst, prompt, completion), load.shape)
    return _priced_counts(econ, replicas, load, serverless, np.asarray(beyond_fleet), average=True)[:, 0]


def _priced_counts(econ: RouteEconomics, replicas: np.ndarray, load: np.ndarray, serverless: np.ndarray,
                   beyond_fleet: np.ndarray, average: bool) -> np.ndarray:
    """USD/s of each count in ``replicas`` (0, 1, ..., ceiling) for each ``load`` (replica units) and its
    ``serverless`` USD/s: one column per load, or their mean (``average``, the burst scenarios).

    The target utilisation is headroom for choosing how many replicas a demand needs, so each
    replica is priced as absorbing only its target share. A demand beyond what the whole fleet
    holds at full capacity (``beyond_fleet``) leaves no headroom to buy: whichever count is chosen,
    the router fills every replica to its full capacity (``tierup.simulate.engine.served_share``)
    and spills the rest. Priced at the target share there, a fleet that pays when full (a route
    that needs 7 replicas of 4) would look as if it saved less than it costs, and the route would
    stay on serverless; so every count is priced at full capacity plus the spill.
    """
    counts = np.asarray(replicas, dtype=float)[:, None]
    capacity = counts * np.where(beyond_fleet, 1.0, econ.target_utilisation)
    costs = counts * econ.gpu_usd_per_s + spill_fraction(capacity, load[None, :], 1.0) * serverless[None, :]
    return costs.mean(axis=1, keepdims=True) if average else costs


def horizon_minutes(policy: PolicyConfig) -> int:
    """How far ahead a decision is priced: the minimum hold it commits to (at least 5 minutes)."""
    return max(5, math.ceil(policy.min_hold_s / 60))


def decide_with_economics(route: str, econ: RouteEconomics, history: list[MinuteUsage],
                          state: RoutePolicyState, now_s: float, policy: PolicyConfig,
                          live: LiveSignals | None = None, backlog: BatchBacklog | None = None,
                          ) -> tuple[RouteDecision, RoutePolicyState]:
    """``decide`` with the route's economics already resolved (the simulator resolves them once)."""
    current = state.replicas
    now_minute = int(now_s // 60)
    lead = math.ceil(econ.warmup_s / 60)
    horizon = horizon_minutes(policy)
    window_start = now_minute - policy.recent_minutes
    recent, first_minute_only = _recent_series(history, window_start, now_minute, policy.recent_minutes)
    yesterday = None
    day_start = now_minute - MINUTES_PER_DAY - policy.recent_minutes
    if history and history[0].minute <= day_start + policy.recent_minutes:
        yesterday = series_from_history(history, day_start, day_start + policy.recent_minutes + lead + horizon)
    minutes_forecast = with_intra_minute_shape(forecast_demand(recent, yesterday, horizon, lead), history,
                                               recent.start_minute, recent.start_minute + len(recent))
    forecast = with_live_signals(minutes_forecast, live)
    live_burst = forecast is not minutes_forecast

    ceiling = econ.max_replicas if (econ.can_promote and policy.enabled) else 0
    candidates = np.arange(ceiling + 1, dtype=float)
    # Whether the demand exceeds the whole fleet is read from the minutes, not a live burst: seconds
    # beyond it say nothing of the hold a decision commits to, and priced at full capacity a raise
    # on them would pay at once.
    beyond_fleet = bool(ceiling) and econ.load(minutes_forecast.prompt_tps, minutes_forecast.completion_tps) > ceiling
    costs = expected_usd_per_s(econ, candidates, forecast, beyond_fleet) if ceiling else expected_usd_per_s(
        econ, np.zeros(1), forecast)
    interactive_best = int(np.argmin(costs))
    batch_usd = 0.0
    if backlog is not None:  # queued batch work, on its other paths or missed
        # added replicas drain nothing while they warm; what the replicas the interactive traffic
        # holds anyway will drain is no reason to hold more
        warming = state.promoted_at_s is not None and now_s < state.promoted_at_s + econ.warmup_s
        ready = 0 if warming else min(current, ceiling)
        batch_usd = backlog_usd_per_s(econ, candidates if ceiling else np.zeros(1), forecast, backlog, now_s,
                                      horizon * 60.0, ready=ready, held=min(ready, interactive_best))
        batch_usd = material(batch_usd, min(current, ceiling),
                             (policy.hysteresis + 2 * forecast.uncertainty) * econ.gpu_usd_per_s)
    costs = costs + batch_usd
    best = int(np.argmin(costs))
    cost_now = float(costs[min(current, ceiling)])
    cost_best = float(costs[best])
    # A change must beat the hysteresis plus the forecast's own noise (two standard errors, ~95 %):
    # a level read off ten noisy minutes must not flip the route back and forth.
    # Relative to the replicas that would change hands, not the route's whole bill, so that a big
    # route still adds or sheds its marginal replica when that pays.
    changed_usd = max(abs(best - min(current, ceiling)), 1) * econ.gpu_usd_per_s
    margin = (policy.hysteresis + 2 * forecast.uncertainty) * min(cost_now, changed_usd)
    # The episode is what the traffic does, not what the forecast still remembers: it goes on while
    # the latest minute (or the live window) alone would be cheaper on reserved.
    hot_minutes = _trailing_hot_minutes(econ, series_from_history(history, window_start, now_minute), ceiling)
    # The episodes remembered are the interactive traffic's: a backlog starts one only when it alone pays.
    hot = (interactive_best > 0 and (hot_minutes > 0 or live_burst)) or (
        backlog is not None and best > 0 and backlog_pays(econ, batch_usd))
    episode = _track_episode(state, hot, now_s, policy, hot_minutes)
    # A raise on top of serving replicas must also earn back what the added ones cost without
    # serving (their warm-up and release tail): at once when one hold earns it, else once the higher
    # count has been wanted, run after run, for as long as renting costs what buying would lose.
    wants_raise = best > current and cost_now - cost_best >= margin
    raise_since = (state.raise_since_s if state.raise_since_s is not None else now_s) if (
        wants_raise and current > 0) else None
    raise_wait = _raise_wait(econ, policy, best - current, cost_now - cost_best, now_s - raise_since) if (
        raise_since is not None) else None

    def verdict(target: int, reason: str, new_state: RoutePolicyState) -> tuple[RouteDecision, RoutePolicyState]:
        target_cost = float(costs[min(target, ceiling)])
        decision = RouteDecision(
            route=route, replicas=target, previous_replicas=current, reason=reason,
            projected_savings_usd_per_hour=(cost_now - target_cost) * 3600 if target != current else 0.0,
            forecast_rps=forecast.rps, forecast_prompt_tps=forecast.prompt_tps,
            forecast_completion_tps=forecast.completion_tps,
            projected_cost_usd_per_hour=target_cost * 3600,
            serverless_cost_usd_per_hour=float(costs[0]) * 3600)
        return decision, replace(new_state, **episode,
                                 raise_since_s=raise_since if new_state.replicas == current else None)

    demand = f"{forecast.rps:.2f} req/s forecast ({forecast.method})"
    if ceiling == 0:
        why = "the policy is disabled" if not policy.enabled else "the route has no priced GPU tier"
        return verdict(0, f"Serverless only: {why}.", RoutePolicyState())

    if current > ceiling:
        return verdict(ceiling, f"Capped at max-replicas {ceiling}.",
                       RoutePolicyState(replicas=ceiling, promoted_at_s=state.promoted_at_s))

    # Straight to the count the forecast needs, in one step, even while earlier replicas warm: a
    # burst is met by one warm-up, not one per replica.
    if wants_raise and raise_wait is None:
        if current == 0 and first_minute_only and not live_burst:
            return verdict(0, f"Staying serverless: traffic began within the last minute, which reads "
                              f"only part of it; {demand}.", RoutePolicyState())
        if current == 0 and not hot:
            return verdict(0, f"Staying serverless: the traffic that made reserved cheaper has passed; {demand}.",
                           RoutePolicyState())
        if current == 0:
            wait = _promotion_wait(econ, policy, best, cost_now - cost_best, episode, now_s)
            if wait is not None:
                return verdict(0, f"Staying serverless: {wait}; {demand}.", RoutePolicyState())
        return verdict(best, f"Raising reserved replicas {current}->{best}: {demand} makes them "
                             f"{(1 - cost_best / cost_now):.0%} cheaper than now.",
                       RoutePolicyState(replicas=best, promoted_at_s=now_s))

    if raise_wait is not None:
        return verdict(current, f"Keeping {current} replicas: {best} would be {1 - cost_best / cost_now:.0%} "
                                f"cheaper, but {raise_wait}; {demand}.",
                       RoutePolicyState(replicas=current, promoted_at_s=state.promoted_at_s))

    warming_until = (state.promoted_at_s or -math.inf) + econ.warmup_s
    if now_s < warming_until:  # never lower what is still warming: it has not served yet
        return verdict(current, f"Holding {current} replicas while they warm up.",
                       RoutePolicyState(replicas=current, promoted_at_s=state.promoted_at_s))

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


def _recent_series(history: list[MinuteUsage], window_start: int, now_minute: int,
                   idle_minutes: int) -> tuple[MinuteSeries, bool]:
    """The minutes that set the forecast, and whether they are only a first, partial minute.

    From cold, only the minutes since the traffic began (``activity_start``); after a step up, only
    those since the step (``since_level_shift``). Traffic after an idle spell begins part-way
    through its first minute: that minute reads low, and as the start of a ramp. It is left out
    once a whole minute follows; before that it is read for the share of the minute it filled
    when the gateways' 10-second buckets tell, and otherwise flagged (no promotion from it alone).
    """
    start = activity_start(history, window_start, now_minute, idle_minutes)
    first_minute_only = start > window_start and now_minute - start == 1
    if start > window_start and not first_minute_only:
        start += 1
    recent = since_level_shift(series_from_history(history, start, now_minute))
    if first_minute_only and history[-1].minute == start and (share := _active_share(history[-1])) is not None:
        recent = MinuteSeries(recent.start_minute, recent.requests / share, recent.prompt_tokens / share,
                              recent.completion_tokens / share)
        first_minute_only = False
    return recent, first_minute_only


def _active_share(row: MinuteUsage) -> float | None:
    """The share of its minute a route's first minute of traffic filled, from the first of its
    10-second buckets with arrivals to the minute's end (None without buckets)."""
    active = [tenth for tenth, counts in (row.by_10s or {}).items() if counts[0]]
    return (6 - min(active)) / 6 if active else None


def _trailing_hot_minutes(econ: RouteEconomics, recent: MinuteSeries, ceiling: int) -> int:
    """How many of the latest recent minutes, in a row, would each have been served cheaper with
    some reserved replicas: where an episode the policy only now notices really began."""
    if ceiling == 0 or len(recent) == 0:
        return 0
    prompt, completion = recent.prompt_tokens / 60.0, recent.completion_tokens / 60.0
    serverless = np.asarray(econ.serverless_usd_per_s(recent.requests / 60.0, prompt, completion), dtype=float)
    load = econ.load(prompt, completion)
    costs = _priced_counts(econ, np.arange(ceiling + 1), load, serverless, load > ceiling, average=False)
    hot = costs[1:].min(axis=0) < serverless
    cold = np.flatnonzero(~hot)
    return len(hot) if len(cold) == 0 else len(hot) - 1 - int(cold[-1])


def _track_episode(state: RoutePolicyState, hot: bool, now_s: float, policy: PolicyConfig,
                   hot_minutes: int) -> dict:
    """The episode fields of the next state: an episode starts when reserved becomes cheaper (back
    to the first of the recent minutes in a row that already were), and ends, its length
    remembered, once it has not been for a whole cooldown, so that a lull of a minute or two does
    not split one episode into two short ones."""
    since, until, episodes = state.hot_since_s, state.hot_until_s, state.episodes
    if hot:
        began = now_s - 60.0 * hot_minutes if since is None else since
        return {"hot_since_s": began, "hot_until_s": now_s, "episodes": episodes}
    if since is not None and until is not None and now_s - until >= policy.cooldown_s:
        return {"hot_since_s": None, "hot_until_s": None, "episodes": remember(episodes, until - since)}
    return {"hot_since_s": since, "hot_until_s": until, "episodes": episodes}


def _promotion_wait(econ: RouteEconomics, policy: PolicyConfig, replicas: int, saving_usd_per_s: float,
                    episode: dict, now_s: float) -> str | None:
    """Why a promotion should wait (the ski-rental rule of ``episodes``), or None when it pays.

    Buying costs the replicas' warm-up (paid, not serving), and after the episode the cooldown they
    are kept for and their release tail (drain grace, then Modal's scale-down window: billed all the
    same); renting costs the saving forgone each second.
    """
    overhead = replicas * econ.gpu_usd_per_s * (econ.warmup_s + policy.cooldown_s + econ.release_tail_s)
    break_even = break_even_s(overhead, saving_usd_per_s)
    elapsed = now_s - episode["hot_since_s"]
    expected = predicted_length_s(episode["episodes"], elapsed, policy.episode_prior_s)
    wait = buy_after_s(break_even, expected, policy.episode_trust)
    if elapsed >= wait:
        return None
    return (f"reserved has been cheaper for {elapsed / 60:.1f} min, a promotion pays after "
            f"{break_even / 60:.1f} min and episodes of this route last {expected / 60:.1f} min, "
            f"so it promotes after {wait / 60:.1f} min")


def _raise_wait(econ: RouteEconomics, policy: PolicyConfig, added: int, saving_usd_per_s: float,
                wanted_for_s: float) -> str | None:
    """Why adding ``added`` replicas to serving ones should wait, or None when it pays.

    They are paid through their warm-up before serving and through their release tail after (the
    drain grace and Modal's scale-down window), and save ``saving_usd_per_s`` from ready until the
    minimum hold lets them go. When that hold does not earn the overhead back, the raise is a
    ski-rental purchase: it waits until the higher count has been wanted as long as the shortfall
    takes to earn (2-competitive), so a marginal raise on forecast noise does not flap up and
    down, paying a warm-up and a tail each time, while a lasting higher level still gets it."""
    serving_s = max(policy.min_hold_s - econ.warmup_s, 0.0)
    overhead = added * econ.gpu_usd_per_s * (econ.warmup_s + econ.release_tail_s)
    wait = break_even_s(overhead, saving_usd_per_s) - serving_s
    if wanted_for_s >= wait:
        return None
    return (f"the added replicas' warm-up and release tail pay only once the need has lasted "
            f"{wait / 60:.1f} min ({wanted_for_s / 60:.1f} so far)")
