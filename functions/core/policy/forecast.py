"""Forecast a route's demand over the next minutes from its per-minute usage.

Leading indicators only: request and token rates, their trend, and (once a day of history
exists) the time-of-day shape of yesterday. GPU utilisation is never an input: it lags.

The forecast is a *level* (mean rates over the horizon) and a set of *scenarios*: the recent
minutes' loads rescaled to that level, so that the cost model prices burstiness (a bursty route
spills more at the same mean) without assuming a distribution.

Pure: numpy arrays in, numbers out. No I/O, no clock (``now_minute`` is an argument).
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass, replace

import numpy as np

from ..ports import MinuteUsage
from .signals import LiveSignals

MINUTES_PER_DAY = 1440
#: yesterday's shape may at most double or halve today's level: a one-off event yesterday must not
#: make today's decision extreme
_SEASONAL_RATIO_BOUNDS = (0.5, 2.0)


@dataclass(frozen=True)
class MinuteSeries:
    """Dense per-minute totals for minutes ``[start_minute, start_minute + len)``, oldest first."""

    start_minute: int
    requests: np.ndarray
    prompt_tokens: np.ndarray
    completion_tokens: np.ndarray

    def __len__(self) -> int:
        return len(self.requests)


def series_from_history(history: list[MinuteUsage], start_minute: int, end_minute: int) -> MinuteSeries:
    """Lay ``history`` (sorted by minute, gaps = no traffic) on the dense range [start, end).

    Only the entries in range are touched (bisection), so a long history costs little.
    """
    length = max(0, end_minute - start_minute)
    requests = np.zeros(length)
    prompt = np.zeros(length)
    completion = np.zeros(length)
    first = bisect_left(history, start_minute, key=lambda usage: usage.minute)
    for usage in history[first:]:
        offset = usage.minute - start_minute
        if offset >= length:
            break
        requests[offset] += usage.requests
        prompt[offset] += usage.prompt_tokens
        completion[offset] += usage.completion_tokens
    return MinuteSeries(start_minute, requests, prompt, completion)


@dataclass(frozen=True)
class DemandForecast:
    """Mean rates expected over the horizon, and per-minute scenarios around them."""

    rps: float
    prompt_tps: float
    completion_tps: float
    #: multipliers of the mean: each is one plausible minute (mean 1 over the scenarios)
    burst_factors: np.ndarray
    #: how the level was reached, for the decision's reason
    method: str
    #: relative standard error of the level (0 = certain): noisy minutes widen the hysteresis
    uncertainty: float = 0.0


def activity_start(history: list[MinuteUsage], window_start: int, now_minute: int, idle_minutes: int) -> int:
    """Where the recent series should start: ``window_start``, or later when the route's traffic
    began inside the window after at least ``idle_minutes`` without any.

    A route that has served for 3 minutes has 3 minutes of history, not 7 minutes of zero traffic
    before them: padding would forecast a third of its rate, and its first raise would come late.
    """
    first = bisect_left(history, window_start, key=lambda usage: usage.minute)
    if first >= len(history) or history[first].minute >= now_minute:
        return window_start
    began = history[first].minute
    before = history[first - 1].minute if first > 0 else None
    return began if before is None or before < began - idle_minutes else window_start


#: minutes in a row that must all exceed everything before them by ``LIVE_BURST_RATIO`` to count as
#: a new level (one such minute is a spike)
LEVEL_SHIFT_MINUTES = 2


def since_level_shift(recent: MinuteSeries) -> MinuteSeries:
    """The recent minutes from the latest step up in traffic on: when the last minutes all exceed
    every earlier one by ``LIVE_BURST_RATIO``, the earlier ones describe a route that is gone, and
    averaging them in would meet a burst with a fraction of what it needs."""
    requests = recent.requests
    shift = None
    for start in range(1, len(requests) - LEVEL_SHIFT_MINUTES + 1):
        if requests[start:].min() > LIVE_BURST_RATIO * requests[:start].max():
            shift = start
            break
    if shift is None:
        return recent
    return MinuteSeries(recent.start_minute + shift, requests[shift:], recent.prompt_tokens[shift:],
                        recent.completion_tokens[shift:])


def _level(values: np.ndarray) -> float:
    """Mean of the recent minutes with the highest clipped to the second highest: one spike
    minute is not a level. The latest minute is never clipped: a peak still building is the
    forecast's signal (and a spike that promotes is the episode rule's to refuse)."""
    if len(values) <= 2 or values[-1] >= values.max():
        return float(values.mean()) if len(values) else 0.0
    top_two = np.partition(values, -2)[-2:]
    return float((values.sum() - top_two[1] + top_two[0]) / len(values))


def _trend_per_minute(values: np.ndarray) -> float:
    """Least-squares slope of the recent minutes (units per minute)."""
    if len(values) < 3:
        return 0.0
    x = np.arange(len(values), dtype=float)
    x -= x.mean()
    return float((x * (values - values.mean())).sum() / (x * x).sum())


def _significant_trend(values: np.ndarray) -> float:
    """The least-squares slope when it stands out of the minutes' noise (over two standard
    errors), else 0: extrapolated over the warm-up, the slope of a few noisy minutes would buy a
    replica that nothing needs."""
    slope = _trend_per_minute(values)
    if slope == 0.0 or len(values) < 4:
        return 0.0
    x = np.arange(len(values), dtype=float)
    x -= x.mean()
    residuals = values - values.mean() - slope * x
    standard_error = np.sqrt((residuals ** 2).sum() / (len(values) - 2) / (x * x).sum())
    return slope if abs(slope) > 2 * standard_error else 0.0


def forecast_demand(recent: MinuteSeries, yesterday: MinuteSeries | None, horizon_minutes: int,
                    lead_minutes: int) -> DemandForecast:
    """Mean rates over the ``horizon_minutes`` that start ``lead_minutes`` from now.

    ``recent`` ends at the current minute; ``yesterday`` (optional) covers the same span a day
    earlier plus the horizon ahead, i.e. ``len(recent) + lead_minutes + horizon_minutes`` minutes.
    """
    n = len(recent)
    if n == 0:
        return DemandForecast(0.0, 0.0, 0.0, np.ones(1), "no history")
    level = _level(recent.requests)
    # Extrapolate the trend only to when a replica asked for now would serve (the warm-up): further
    # out a ramp is a guess, and overshooting it pays for replicas through the whole hold.
    reach = lead_minutes + n / 2
    slope = _significant_trend(recent.requests)
    trended = max(0.0, level + slope * reach)
    # Never trust a falling trend to below half the level, nor a rising one beyond double.
    trended = min(max(trended, 0.5 * level), 2.0 * level) if level > 0 else trended
    method = "recent level and trend"
    expected = trended
    per_request = _tokens_per_request(recent.requests, recent.prompt_tokens, recent.completion_tokens)
    if yesterday is not None and len(yesterday) >= n + lead_minutes + horizon_minutes:
        ahead = slice(n + lead_minutes, n + lead_minutes + horizon_minutes)
        then, later = yesterday.requests[:n].mean(), yesterday.requests[ahead].mean()
        if then > 0 and later > 0:
            # Yesterday's change from now to the horizon, applied to today's level: a multiplier,
            # so a day unlike yesterday (idle now, or busy then) does not borrow its volume.
            ratio = float(np.clip(later / then, *_SEASONAL_RATIO_BOUNDS))
            expected = 0.5 * trended + 0.5 * level * ratio
            method = "recent level, trend and yesterday's shape"
    if per_request is None:
        return DemandForecast(0.0, 0.0, 0.0, np.ones(1), method)
    prompt_per_request, completion_per_request = per_request
    return DemandForecast(expected / 60.0, expected * prompt_per_request / 60.0,
                          expected * completion_per_request / 60.0, _burst_factors(recent), method,
                          _uncertainty(recent))


def _uncertainty(recent: MinuteSeries) -> float:
    """Standard error of the recent mean token volume, relative to it (capped at 1)."""
    tokens = recent.prompt_tokens + recent.completion_tokens
    mean = tokens.mean()
    if mean <= 0 or len(tokens) < 2:
        return 0.0
    return float(min(1.0, tokens.std(ddof=1) / mean / np.sqrt(len(tokens))))


def _tokens_per_request(requests: np.ndarray, prompt: np.ndarray,
                        completion: np.ndarray) -> tuple[float, float] | None:
    total = requests.sum()
    if total <= 0:
        return None
    return float(prompt.sum() / total), float(completion.sum() / total)


def _burst_factors(recent: MinuteSeries) -> np.ndarray:
    """Each recent minute's token volume relative to the recent straight-line fit (mean 1).

    Relative to the fit, not the mean, so that a ramp is not mistaken for burstiness.
    """
    tokens = recent.prompt_tokens + recent.completion_tokens
    if tokens.mean() <= 0:
        return np.ones(1)
    x = np.arange(len(tokens), dtype=float)
    fitted = tokens.mean() + _trend_per_minute(tokens) * (x - x.mean())
    floor = 0.1 * tokens.mean()  # where the fit nears zero a ratio means nothing
    factors = tokens / np.maximum(fitted, floor)
    return factors / factors.mean()


#: the gateways' live buckets per minute (``MinuteUsage.by_10s``)
TENTHS_PER_MINUTE = 6


def with_intra_minute_shape(forecast: DemandForecast, history: list[MinuteUsage], start_minute: int,
                            end_minute: int) -> DemandForecast:
    """The forecast's scenarios at the 10-second resolution the replicas are loaded at.

    A minute's mean hides its bursts: 300 requests in one minute that arrive in two 10-second
    bursts overflow a replica that their minute's average fits. Where the recent minutes' rows
    carry the gateways' 10-second buckets, each minute's scenario is split into its six buckets
    (each bucket's share of the minute's tokens, times six), so the cost model prices the spill
    of the bursts the route really has; minutes without buckets stay whole.
    """
    factors = forecast.burst_factors
    if len(factors) != end_minute - start_minute or not any(row.by_10s for row in history[-len(factors):]):
        return forecast
    shares = np.ones((len(factors), TENTHS_PER_MINUTE))
    first = bisect_left(history, start_minute, key=lambda usage: usage.minute)
    for row in history[first:]:
        if row.minute >= end_minute:
            break
        if not row.by_10s:
            continue
        tokens = np.zeros(TENTHS_PER_MINUTE)
        for tenth, counts in row.by_10s.items():
            if 0 <= int(tenth) < TENTHS_PER_MINUTE:
                tokens[int(tenth)] = float(counts[1]) + float(counts[2]) if len(counts) > 2 else float(counts[0])
        if tokens.sum() > 0:
            shares[row.minute - start_minute] = tokens * TENTHS_PER_MINUTE / tokens.sum()
    scenarios = (factors[:, None] * shares).ravel()
    if scenarios.mean() <= 0:
        return forecast
    return replace(forecast, burst_factors=scenarios / scenarios.mean())


#: a live rate must exceed the forecast by this factor to count as a burst: the last seconds of a
#: steady route scatter around its minute rate, and must not move the forecast
LIVE_BURST_RATIO = 1.5
#: standard deviations of the expected count the live window must exceed
LIVE_BURST_DEVIATIONS = 4.0
#: requests the live window must hold before its rate is trusted (a Poisson count of 8 is
#: within about 35 % of its mean); a queue is evidence enough on its own
LIVE_MIN_REQUESTS = 8


def with_live_signals(forecast: DemandForecast, live: LiveSignals | None) -> DemandForecast:
    """The forecast raised to what the live signals show, when they show a burst.

    Demand now is the last seconds' arrivals plus the queue, drained over the same window
    (queued requests arrived but were not served: the capacity must also absorb them). The live
    rate only raises the forecast: a quiet few seconds say nothing about the minutes ahead, and
    lowering is the cooldown's job.
    """
    if live is None or live.recent_window_s <= 0:
        return forecast
    requests = live.recent_requests + live.queued
    if live.recent_requests < LIVE_MIN_REQUESTS and live.queued <= 0:
        return forecast
    rps = requests / live.recent_window_s
    expected = forecast.rps * live.recent_window_s
    # well outside a Poisson count's scatter too (4 standard deviations): run every few seconds,
    # a 1.5 x test alone would fire on a quiet route's noise several times an hour
    scatter = LIVE_BURST_DEVIATIONS * np.sqrt(max(expected, 1.0))
    if rps <= LIVE_BURST_RATIO * forecast.rps or requests - expected <= scatter:
        return forecast
    if live.recent_requests > 0 and live.recent_prompt_tokens + live.recent_completion_tokens > 0:
        prompt_per_request = live.recent_prompt_tokens / live.recent_requests
        completion_per_request = live.recent_completion_tokens / live.recent_requests
    elif forecast.rps > 0:
        prompt_per_request = forecast.prompt_tps / forecast.rps
        completion_per_request = forecast.completion_tps / forecast.rps
    else:
        return forecast  # no token sizes known yet: the next minute's aggregates will tell
    return DemandForecast(rps, rps * prompt_per_request, rps * completion_per_request, forecast.burst_factors,
                          f"live burst: {requests} requests in the last {live.recent_window_s:.0f} s",
                          float(min(1.0, 1.0 / np.sqrt(max(requests, 1)))))
