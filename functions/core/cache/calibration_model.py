"""A model of the wrong rate across similarities: ``calibration-method = "model"``.

The exact test (calibration.py) uses only the observations at or above a threshold, so proving 1%
takes about 450 clean ones there. Most observations lie lower, where candidates are misses anyway
and checking them is free. vCache (Schroeder et al., ICLR 2026) learns a sigmoid of P(correct |
similarity) online and serves where it keeps a user-set error bound; this module does the same per
route: it fits ``P(wrong | s) = 1 / (1 + exp(-(a + b * (s - centre))))`` by maximum likelihood
(Newton on the binned counts, plain Python: the gateway bundle carries no numpy) to every
observation at or above ``calibration-floor``, and serves at the lowest threshold t whose upper
confidence bound on the hit-weighted wrong rate above t,

    W(t) = sum over bins i >= t of n_i * P(wrong | s_i) / sum over bins i >= t of n_i

(n_i: the candidates observed in bin i, standing in for the hits served there), is within the
bound. The upper bound is the profile likelihood's: the largest W(t) over the parameters whose
log-likelihood is within z^2 / 2 of the maximum (``confidence_edge``). A symmetric (delta-method)
bound is simpler but extrapolates the tail too confidently: on synthetic logistic streams it broke
the bound five times as often as its risk allowed.

Repeated looks. The fit is re-done when the observations reach 200, then each time they have grown
1.5-fold (``look_of``; the caller holds the threshold in between: ``ThresholdHold``), and look k
spends risk ``RISK / ((k + 1) (k + 2))`` of the 5% (the spends sum to 5%). Within a look the
thresholds are tested from the top down, each at that look's level, and the first that fails ends
the search (a fixed sequence, as in the exact test).

The guarantee, stated precisely: IF the wrong rate of guarded candidates is a logistic function of
similarity (the model family is right) and traffic is exchangeable, then, up to the chi-square
approximation of the likelihood ratio, the chance that the route ever serves at a threshold whose
hit-weighted wrong rate exceeds the bound is at most 5% over its life, counting one look per
1.5-fold growth (several gateway instances each look once per growth; their looks see nearly the
same data, which the spending does not charge for). Measured rather than assumed: on synthetic
logistic streams 4% of routes (8 of 200) ever served above a 2% bound, and the first look, on the
fewest observations, used more than its share of the risk (200 routes of 3,200 observations,
the truth in tests/unit/test_cache_calibration_model.py).
Nothing is promised when the curve is another shape. So the family is checked at every look: a
fit needs ``MIN_EVENTS`` wrong and right observations, the fitted wrong rate must fall with
similarity, and a Hosmer-Lemeshow test on the binned counts (bins grouped to expect at least
``GROUP_EXPECTED`` wrong and right answers) must not reject it at ``GOF_LEVEL``; otherwise the
route falls back to the exact test, which assumes nothing about the shape.

``calibration-method = "estimate"`` (``estimate_threshold``) asks the curve another question, the
one vCache asks per prompt: is this candidate's own chance of being wrong within the bound? The
point estimate by default (``calibration-confidence`` 0.5), or the upper end of the profile
interval at a stated level. Every hit is then served at or above the similarity where the curve
meets the bound, and most lie well above it, so the mix is wrong less often than the bound without
an interval's width to pay for; the price is that no chance of failure is stated. On the synthetic
logistic streams below, at a 1% bound, the hits it chose at any look were wrong 0.3% of the time
(median), and 4 routes of 150 ever served above 1%.

No I/O here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

#: fewest observations (at or above the floor) for a first fit
FIRST_LOOK = 200
#: the next look comes when the observations have grown by this factor
LOOK_GROWTH = 1.5
#: fewest wrong and fewest right observations a fit needs (the usual ten events per parameter):
#: with fewer, the normal approximation of the estimate is too rough to bound a tail on
MIN_EVENTS = 10
#: a fit is rejected (and the exact test used) when the goodness-of-fit p-value is below this
GOF_LEVEL = 0.05
#: Hosmer-Lemeshow groups hold at least this many expected wrong and expected right answers
GROUP_EXPECTED = 5.0


@dataclass(frozen=True, slots=True)
class Fit:
    """Maximum-likelihood logistic fit of the wrong rate on similarity, centred at ``centre``."""

    a: float
    b: float
    centre: float
    #: inverse Fisher information of (a, b): var a, cov ab, var b
    var_a: float
    cov_ab: float
    var_b: float

    def wrong_rate(self, similarity: float) -> float:
        return _sigmoid(self.a + self.b * (similarity - self.centre))


def _sigmoid(x: float) -> float:
    if x >= 0:
        return 1 / (1 + math.exp(-x))
    e = math.exp(x)
    return e / (1 + e)


def look_of(samples: float) -> int | None:
    """Which look a route with ``samples`` observations is at (None before the first)."""
    if samples < FIRST_LOOK:
        return None
    return int(math.floor(math.log(samples / FIRST_LOOK) / math.log(LOOK_GROWTH) + 1e-12))


def risk_at(look: int, risk: float) -> float:
    """Risk spent at look ``look`` (0, 1, ...): the spends sum to ``risk``."""
    return risk / ((look + 1) * (look + 2))


def normal_quantile(p: float) -> float:
    """z with P(Z <= z) = p, by bisection on math.erfc (p in (0, 1))."""
    low, high = -40.0, 40.0
    for _ in range(200):
        middle = (low + high) / 2
        if 0.5 * math.erfc(-middle / math.sqrt(2)) < p:
            low = middle
        else:
            high = middle
    return (low + high) / 2


def chi2_survival(statistic: float, df: int) -> float:
    """P(X >= statistic) for X chi-square with ``df`` degrees of freedom (Wilson-Hilferty's cube
    root normal approximation: within ~0.01 of the exact value from 2 degrees of freedom up)."""
    if df <= 0:
        return 1.0
    if statistic <= 0:
        return 1.0
    z = ((statistic / df) ** (1 / 3) - (1 - 2 / (9 * df))) / math.sqrt(2 / (9 * df))
    return 0.5 * math.erfc(z / math.sqrt(2))


def fit(points: list[tuple[float, float, float]], iterations: int = 50) -> Fit | None:
    """MLE of the logistic wrong rate from ``points`` (similarity, wrong, total); None when it does
    not exist (no wrong or no right answers: the likelihood has no maximum) or does not converge."""
    total = sum(n for _, _, n in points)
    wrong = sum(w for _, w, _ in points)
    if total <= 0 or wrong <= 0 or wrong >= total:
        return None
    centre = sum(s * n for s, _, n in points) / total
    rate = wrong / total
    a, b = math.log(rate / (1 - rate)), 0.0
    for _ in range(iterations):
        ga = gb = haa = hab = hbb = 0.0
        for s, w, n in points:
            x = s - centre
            p = _sigmoid(a + b * x)
            residual = w - n * p
            weight = n * p * (1 - p)
            ga += residual
            gb += residual * x
            haa += weight
            hab += weight * x
            hbb += weight * x * x
        det = haa * hbb - hab * hab
        if det <= 0:
            return None
        step_a = (hbb * ga - hab * gb) / det
        step_b = (haa * gb - hab * ga) / det
        a, b = a + step_a, b + step_b
        if abs(a) > 50 or abs(b) > 1e4:
            return None  # separation: the estimate runs off to infinity
        if abs(step_a) < 1e-10 and abs(step_b) < 1e-8:
            return Fit(a, b, centre, hbb / det, -hab / det, haa / det)
    return None


def goodness_of_fit(model: Fit, points: list[tuple[float, float, float]]) -> float:
    """Hosmer-Lemeshow p-value: consecutive bins grouped until each group expects at least
    GROUP_EXPECTED wrong and right answers, Pearson's statistic on g groups, g - 2 degrees of freedom.
    1.0 when there are too few groups to test (three or fewer)."""
    groups: list[list[float]] = []
    observed = expected = count = 0.0
    for s, w, n in sorted(points):
        p = model.wrong_rate(s)
        observed, expected, count = observed + w, expected + n * p, count + n
        if expected >= GROUP_EXPECTED and count - expected >= GROUP_EXPECTED:
            groups.append([observed, expected, count])
            observed = expected = count = 0.0
    if count and groups:  # a short last group joins the one before it
        groups[-1] = [groups[-1][0] + observed, groups[-1][1] + expected, groups[-1][2] + count]
    if len(groups) <= 3:
        return 1.0
    statistic = sum((o - e) ** 2 / (e * (1 - e / c)) for o, e, c in groups if 0 < e < c)
    return chi2_survival(statistic, len(groups) - 2)


def log_likelihood(a: float, b: float, centre: float, points: list[tuple[float, float, float]]) -> float:
    total = 0.0
    for s, w, n in points:
        x = a + b * (s - centre)
        # log p = -log(1 + e^-x), log(1 - p) = -log(1 + e^x), computed without overflow
        total -= w * _softplus(-x) + (n - w) * _softplus(x)
    return total


def _softplus(x: float) -> float:
    return x + math.log1p(math.exp(-x)) if x > 0 else math.log1p(math.exp(x))


def confidence_edge(model: Fit, points: list[tuple[float, float, float]], z: float,
                    steps: int = 24) -> list[tuple[float, float]]:
    """The upper edge (in a) of the profile-likelihood confidence region {log L >= max - z^2 / 2},
    at ``steps`` + 1 slopes b across it. The wrong rate grows with a at any similarity, so the
    largest hit-weighted wrong rate the region allows lies on this edge."""
    floor = log_likelihood(model.a, model.b, model.centre, points) - z * z / 2
    sd_a, sd_b = math.sqrt(model.var_a), math.sqrt(model.var_b)
    edge = []
    for k in range(steps + 1):
        b = model.b + (2 * k / steps - 1) * 1.5 * z * sd_b
        a = model.a + model.cov_ab / model.var_b * (b - model.b)  # the likelihood's ridge, nearly
        if log_likelihood(a, b, model.centre, points) < floor:
            continue
        low, high = a, a + 4 * z * sd_a + 1.0
        while log_likelihood(high, b, model.centre, points) >= floor:
            low, high = high, high + 4 * z * sd_a + 1.0
        for _ in range(30):  # to within 2^-30 of the bracket: far below the estimate's spread
            middle = (low + high) / 2
            low, high = (middle, high) if log_likelihood(middle, b, model.centre, points) >= floor else (low, middle)
        edge.append((low, b))
    return edge


def profile_upper_bound(model: Fit, edge: list[tuple[float, float]], points: list[tuple[float, float, float]]) -> float:
    """Profile-likelihood upper bound of the hit-weighted wrong rate over ``points``: its largest
    value over the confidence region's upper edge (``confidence_edge``)."""
    total = sum(n for _, _, n in points)
    if total <= 0 or not edge:
        return 1.0
    return max(sum(n * _sigmoid(a + b * (s - model.centre)) for s, _, n in points) / total for a, b in edge)


@dataclass(frozen=True, slots=True)
class ModelChoice:
    """What one look concluded: the threshold (None: nothing proven), or ``fallback`` when the
    model cannot be trusted (the caller uses the exact test then)."""

    threshold: float | None
    fallback: bool
    gof_p: float | None = None


def _trusted_fit(points: list[tuple[float, float, float]]) -> tuple[Fit, float] | ModelChoice:
    """The fitted curve and its goodness-of-fit p-value, or the fallback when it cannot be trusted:
    too few wrong or right observations, a curve that does not fall with similarity, a poor fit."""
    wrong = sum(w for _, w, _ in points)
    if min(wrong, sum(n for _, _, n in points) - wrong) < MIN_EVENTS:
        return ModelChoice(None, True)
    model = fit(points)
    if model is None or model.b >= 0:
        return ModelChoice(None, True)
    gof_p = goodness_of_fit(model, points)
    if gof_p < GOF_LEVEL:
        return ModelChoice(None, True, gof_p)
    return model, gof_p


def model_threshold(points: list[tuple[float, float, float]], bound: float, look: int,
                    risk: float) -> ModelChoice:
    """The lowest bin start whose upper bound is within ``bound``, from ``points`` (bin start,
    wrong, total; only bins at or above the floor), tested from the top down at look ``look``'s level."""
    trusted = _trusted_fit(points)
    if isinstance(trusted, ModelChoice):
        return trusted
    model, gof_p = trusted
    z = normal_quantile(1 - risk_at(look, risk))
    edge = confidence_edge(model, points, z)
    chosen = None
    above: list[tuple[float, float, float]] = []
    for point in sorted(points, reverse=True):
        above.append(point)
        if profile_upper_bound(model, edge, above) > bound:
            break
        chosen = point[0]
    return ModelChoice(chosen, False, gof_p)


def estimate_threshold(points: list[tuple[float, float, float]], bound: float, confidence: float,
                       half_width: float) -> ModelChoice:
    """``calibration-method = "estimate"``: the lowest bin start at which a candidate's own estimated
    chance of being wrong is within ``bound``, tested from the top down. The estimate is the fitted
    curve's at ``confidence`` 0.5 (the point estimate), else the upper end of the profile-likelihood
    interval at that one-sided level. Every hit served is then estimated wrong at most the bound at
    the lowest similarity served, and less above it, so the mix of hits is wrong less often than the
    bound; what is not promised is a chance of failure: the estimate is one look's, not an interval
    kept for the route's life. ``points`` are bin centres (similarity, wrong, total), ``half_width``
    half a bin. The same checks as ``model_threshold`` decide whether the curve is trusted
    (otherwise ``fallback``)."""
    trusted = _trusted_fit(points)
    if isinstance(trusted, ModelChoice):
        return trusted
    model, gof_p = trusted
    edge = [(model.a, model.b)] if confidence <= 0.5 else \
        confidence_edge(model, points, normal_quantile(confidence))
    chosen = None
    for centre, _, _ in sorted(points, reverse=True):
        start = centre - half_width  # a candidate may sit at the bin's lower edge, where the curve is highest
        if max(_sigmoid(a + b * (start - model.centre)) for a, b in edge) > bound:
            break
        chosen = centre
    return ModelChoice(chosen, False, gof_p)
