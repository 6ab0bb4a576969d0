"""When a promotion pays: the ski-rental rule, with each route's own episodes as its prediction.

A route's *episode* is a stretch of time in which its demand makes reserved replicas cheaper
than serverless. Staying serverless through an episode is **renting**: it costs the savings
forgone, ``saving_usd_per_s`` for every second of the episode. Promoting is **buying**: it costs
a fixed overhead, ``overhead_usd``, whatever the episode's length — the replicas are paid while
they warm (traffic still on serverless), and after the episode ends through the cooldown and the
drain grace before they are released. The *break-even* is ``overhead / saving`` seconds: an
episode shorter than that is cheaper left on serverless.

The episode's length is unknown when it starts. The rule (learning-augmented ski rental, Purohit,
Svitkina & Kumar, NeurIPS 2018, deterministic variant) takes a prediction ``y`` of the episode's
length and a trust ``λ`` in (0, 1], and promotes once the episode has lasted

* ``λ · break_even`` when ``y >= break_even`` (a long episode is predicted: buy early),
* ``break_even / λ`` otherwise (a short one is predicted: rent on, buy only if proven wrong).

**Bound.** Whatever the episode's length ``L`` and however wrong ``y`` is, a rule that buys at any
time ``t`` in ``[λ b, b / λ]`` (``b`` the break-even) costs at most ``(1 + 1/λ)`` times the offline
optimum ``min(L, b)`` (in units of the saving rate): if ``L < t`` it paid ``L``, which is the
optimum when ``L <= b`` and below ``t / b <= 1/λ`` times it otherwise; if ``L >= t`` it paid
``t + b`` against at least ``min(t, b)``, at most ``1 + 1/λ`` times. With a correct prediction it
is at most ``1 + λ`` times the optimum. ``λ = 1`` is the classic break-even rule (2-competitive,
ignores the prediction). The bound holds for a constant saving rate and overhead; the policy re-prices both every run.

The prediction is learned per route: the lengths of its last ``MAX_EPISODES`` episodes (kept in
the policy state), read as "how long do episodes last that have lasted this long": the median of
the past episodes longer than the current one so far. Before any history it is a prior
(``[policy] episode-prior-s``). The prediction may change from run to run; the buy time stays in
``[λ b, b / λ]``, so the bound holds all the same.

Pure functions on floats; no I/O and no clock here.
"""

from __future__ import annotations

import math
import statistics

#: completed episode lengths a route remembers (its policy state stays small)
MAX_EPISODES = 16


def break_even_s(overhead_usd: float, saving_usd_per_s: float) -> float:
    """Seconds of episode after which promoting has paid for its overhead (inf without saving)."""
    if saving_usd_per_s <= 0:
        return math.inf
    return max(0.0, overhead_usd) / saving_usd_per_s


def predicted_length_s(episodes: tuple[float, ...], elapsed_s: float, prior_s: float) -> float:
    """The episode's expected total length given it has lasted ``elapsed_s``: the median of the
    route's past episodes that lasted longer; ``prior_s`` before any history; ``elapsed_s``
    itself (no evidence it goes on) when every past episode was shorter."""
    if not episodes:
        return max(prior_s, elapsed_s)
    longer = [length for length in episodes if length > elapsed_s]
    return statistics.median(longer) if longer else elapsed_s


def buy_after_s(break_even: float, predicted_s: float, trust: float) -> float:
    """How long an episode must have lasted before promoting: ``λ b`` or ``b / λ``."""
    if not 0 < trust <= 1:
        raise ValueError("trust must be in (0, 1]")
    return trust * break_even if predicted_s >= break_even else break_even / trust


def competitive_bound(trust: float) -> float:
    """The worst-case ratio to the offline optimum of any buy time in ``[λ b, b / λ]``."""
    return 1.0 + 1.0 / trust


def episode_cost(length_s: float, buy_at_s: float, break_even: float) -> float:
    """Cost of one episode (in seconds of savings forgone) when promoting at ``buy_at_s``."""
    return length_s if length_s < buy_at_s else buy_at_s + break_even


def remember(episodes: tuple[float, ...], length_s: float) -> tuple[float, ...]:
    """The route's episode history with ``length_s`` added, the oldest dropped past the bound."""
    return (tuple(episodes) + (float(length_s),))[-MAX_EPISODES:]
