"""A promised share of wrong semantic hits per route (``max-wrong-hit-rate``), learnt online.

A static similarity threshold promises nothing: how often a paraphrase at cosine 0.95 has the same
answer depends on the embedder, the route's questions and its answers. So a bounded route keeps
*observations* instead: for a candidate at similarity s (the best one the near-miss guards let
through), the model's own answer is compared with the cached one (``answers_agree``), and the
outcome is counted in s's similarity bin. The route then serves semantic hits at or above the
lowest threshold t whose pooled observations prove, at 95%, that hits at t or above are wrong at
most the bound: the most hits the observations allow while keeping the promise.

The proof must hold however often it is asked for. The route re-tests after every observation and
keeps the first threshold that passes; a fixed-sample bound (Wilson's, say) tested that way passes
by luck far more often than 5% of the time: the more looks, the likelier one lucky stretch. So each
threshold is tested with a test martingale (``log_evidence``): the likelihood ratio of "wrong at a rate
q below the bound" against "wrong at the bound", averaged over q on a grid in (0, bound). While
hits at t or above are wrong at the bound or more, each observation multiplies it by at most 1 on
average, so by Ville's inequality it ever reaches 1/0.05 = 20 with probability at most 5%, at
whatever moment it is looked at. Thresholds are tested from the top down and the first that fails
ends the search (a fixed sequence: the best of forty thresholds, each at 95%, would promise far
less). The guarantee, stated plainly: if the candidates at or above a threshold are wrong with a
fixed chance p (exchangeable traffic), the chance that the route ever serves at a threshold with
p above its bound is at most 5%, for the whole life of the route. (Thresholds with too few
observations to pass even with none wrong are skipped rather than failed; strictly the 5% is per
threshold tested, and it holds for the search as a whole when wrong answers grow rarer with
similarity, the usual case.) The price is about 1.7x the clean observations a one-look Wilson
bound needs (450 at 1%, 88 at 5%, 43 at 10%).

That is ``calibration-method = "exact"`` (the default), which assumes nothing about how the wrong
rate varies with similarity. ``calibration-method = "model"`` (calibration_model.py) fits a
logistic curve to every observation instead and needs far fewer, at the price of a promise that
holds only while the curve's shape is right (it is checked at every fit, and this test decides
when it fails). ``calibration-method = "estimate"`` fits the same curve and serves a candidate when
its own estimated chance of being wrong is within the bound (``estimate_threshold``): the hits
served lie at or above that similarity, so their mix is wrong less often than the bound, but no
chance of failure is stated.

Observations cost little. A candidate below t is a miss whatever happens, so the model is called
anyway and comparing its answer costs no tokens. Above t, a small share of would-be hits
(``calibration-share``) goes to the model instead of being served: those calls are what the
promise costs, and the ledger marks them ``calibration``. Without observations nothing is proven
and nothing is served, the prior that is safe with no data. vCache (Schroeder et al., ICLR 2026)
learns a threshold per cached entry; a route's entries here are rarely asked twice, so the curve
is learnt per route (pooled across tenants: it describes the embedder on the route's traffic,
never anyone's data), and an entry seen answering a paraphrase wrongly is not served again at that
similarity or below (``CachedAnswer.wrong_at``). The counts hold no question or answer, so
``tierup cache purge`` leaves them.

No I/O here.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field

import orjson

from ..chat import Completion
from .calibration_model import ModelChoice, estimate_threshold, look_of, model_threshold

#: similarity bins are this wide: fine enough to place a threshold, coarse enough to fill
BIN_WIDTH = 0.005
#: the promise may fail with at most this chance, over the whole life of the route
RISK = 0.05
#: the alternatives the test averages over, as fractions of the bound (a uniform grid on (0, 1))
_ALTERNATIVES = tuple((j + 0.5) / 20 for j in range(20))
#: reported intervals are two-sided 95%
REPORT_Z = 1.96
#: answers of at most this many words are compared exactly (labels, numbers, yes/no, short facts)
SHORT_ANSWER_WORDS = 12

_NOT_WORD = re.compile(r"[^\w]+")


def bin_of(similarity: float) -> int:
    # a hair of tolerance: 0.955 in float is 0.95499..., which belongs to the bin starting at 0.955
    return int(math.floor(similarity / BIN_WIDTH + 1e-9))


def bin_start(index: int) -> float:
    return round(index * BIN_WIDTH, 6)


def wilson(wrong: float, n: float, z: float = REPORT_Z) -> tuple[float, float]:
    """Wilson score interval of a proportion; (0, 1) without observations."""
    if n <= 0:
        return 0.0, 1.0
    p = wrong / n
    centre = p + z * z / (2 * n)
    spread = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    denominator = 1 + z * z / n
    return max(0.0, (centre - spread) / denominator), min(1.0, (centre + spread) / denominator)


def log_evidence(wrong: float, right: float, bound: float) -> float:
    """log of the test martingale against "wrong at a rate of ``bound`` or more" after ``wrong`` and
    ``right`` observations: the likelihood ratio of rate q to rate ``bound``, averaged over q."""
    logs = [wrong * math.log(f) + right * math.log((1 - f * bound) / (1 - bound)) for f in _ALTERNATIVES]
    top = max(logs)
    return top + math.log(sum(math.exp(x - top) for x in logs) / len(logs))


def proven(wrong: float, right: float, bound: float, risk: float = RISK) -> bool:
    """Do the observations prove a wrong rate under ``bound`` (at any time they are looked at)?"""
    return log_evidence(wrong, right, bound) >= math.log(1 / risk)


@functools.lru_cache(maxsize=64)
def min_samples(bound: float, risk: float = RISK) -> int:
    """Fewest observations that prove ``bound`` (all of them right)."""
    high = 1
    while not proven(0, high, bound, risk):
        high *= 2
    low = high // 2
    while high - low > 1:  # the evidence of clean observations grows with their number
        middle = (low + high) // 2
        low, high = (low, middle) if proven(0, middle, bound, risk) else (middle, high)
    return high


@dataclass(frozen=True, slots=True)
class Measured:
    """What the observations say about the hits served at ``threshold`` or above."""

    threshold: float | None
    samples: float
    wrong: float
    low: float
    high: float

    @property
    def rate(self) -> float:
        return self.wrong / self.samples if self.samples else 0.0


@dataclass(slots=True)
class Calibration:
    """A route's observations: right and wrong counts per similarity bin."""

    right: dict[int, float] = field(default_factory=dict)
    wrong: dict[int, float] = field(default_factory=dict)

    def observe(self, similarity: float, agreed: bool, weight: float = 1.0) -> None:
        counts = self.right if agreed else self.wrong
        index = bin_of(similarity)
        counts[index] = counts.get(index, 0.0) + weight

    def merge(self, other: Calibration) -> None:
        for mine, theirs in ((self.right, other.right), (self.wrong, other.wrong)):
            for index, count in theirs.items():
                mine[index] = mine.get(index, 0.0) + count

    def copy(self) -> Calibration:
        return Calibration(dict(self.right), dict(self.wrong))

    @property
    def samples(self) -> float:
        return sum(self.right.values()) + sum(self.wrong.values())

    def threshold(self, bound: float, floor: float, method: str = "exact",
                  confidence: float = 0.5) -> float | None:
        """The lowest threshold the observations prove for ``bound``: by the exact test (``exact``,
        below), by the logistic model (``model``: calibration_model.py) or by its estimate of each
        candidate's own wrong rate (``estimate``, at ``confidence``); both fall back to the exact
        test when the model does not fit. The model is meant to be looked at once per 1.5-fold growth
        of the observations: hold its answer in between (``ThresholdHold``)."""
        if method in ("model", "estimate"):
            choice = self.model_choice(bound, floor, method, confidence)
            if not choice.fallback:
                return choice.threshold
        return self.exact_threshold(bound, floor)

    def model_points(self, floor: float) -> list[tuple[float, float, float]]:
        """(bin centre, wrong, total) of every bin at or above ``floor``."""
        first = bin_of(floor)
        indices = sorted(i for i in set(self.right) | set(self.wrong) if i >= first)
        return [(bin_start(i) + BIN_WIDTH / 2, self.wrong.get(i, 0.0), self.wrong.get(i, 0.0) + self.right.get(i, 0.0))
                for i in indices]

    def model_choice(self, bound: float, floor: float, method: str = "model",
                     confidence: float = 0.5) -> ModelChoice:
        points = self.model_points(floor)
        look = look_of(sum(n for _, _, n in points))
        if look is None:
            return ModelChoice(None, False)  # too few observations for a first look: nothing served
        choice = estimate_threshold(points, bound, confidence, BIN_WIDTH / 2) if method == "estimate" else \
            model_threshold(points, bound, look, RISK)
        if choice.threshold is None:
            return choice
        return ModelChoice(bin_start(bin_of(choice.threshold)), choice.fallback, choice.gof_p)

    def exact_threshold(self, bound: float, floor: float) -> float | None:
        """The lowest threshold (a bin start, at least ``floor``) whose pooled observations prove
        a wrong rate under ``bound`` (``proven``); None when no threshold is proven yet.

        Thresholds are tested from the top down and the first that fails ends the search (a
        fixed-sequence test): picking the best of forty thresholds, each at 95%, would promise far
        less than 95%; testing them in an order fixed in advance keeps the whole choice at 95%.
        Thresholds with too few observations to pass even with none wrong are not tests (skipped).
        """
        chosen, right, wrong = None, 0.0, 0.0
        least = min_samples(bound)
        for index in sorted(set(self.right) | set(self.wrong), reverse=True):
            if bin_start(index) < floor - 1e-9:
                break
            right += self.right.get(index, 0.0)
            wrong += self.wrong.get(index, 0.0)
            if right + wrong < least:
                continue
            if not proven(wrong, right, bound):
                break
            chosen = bin_start(index)
        return chosen

    def measured(self, threshold: float | None) -> Measured:
        """The wrong share of observations at ``threshold`` or above, with its two-sided 95% interval
        (what is reported; the promise itself is ``proven``)."""
        if threshold is None:
            return Measured(None, 0.0, 0.0, 0.0, 1.0)
        first = bin_of(threshold)
        wrong = sum(c for i, c in self.wrong.items() if i >= first)
        samples = wrong + sum(c for i, c in self.right.items() if i >= first)
        low, high = wilson(wrong, samples)
        return Measured(threshold, samples, wrong, low, high)


@dataclass(slots=True)
class ThresholdHold:
    """Holds each route's curve threshold (``model`` or ``estimate``) from one look to the next (one
    look per 1.5-fold growth of its observations, as the model's risk spending counts them); exact
    thresholds are not held (the exact test may be looked at after every observation)."""

    held: dict[tuple, tuple[int | None, float | None]] = field(default_factory=dict)

    def threshold(self, key: str, calibration: Calibration, bound: float, floor: float, method: str,
                  confidence: float = 0.5) -> float | None:
        if method == "exact":
            return calibration.threshold(bound, floor, method)
        look = look_of(sum(n for _, _, n in calibration.model_points(floor)))
        memo = (key, bound, floor, method, confidence)
        held = self.held.get(memo)
        if held is not None and held[0] == look:
            return held[1]
        threshold = calibration.threshold(bound, floor, method, confidence)
        self.held[memo] = (look, threshold)
        return threshold


# -- comparing the model's answer with the cached one --------------------------------------------


def _normalised(text: str) -> str:
    return _NOT_WORD.sub(" ", text.casefold()).strip()


def _tool_calls(completion: Completion) -> list[tuple[str, object]]:
    calls = []
    for call in completion.tool_calls:
        try:
            arguments = orjson.loads(call.arguments or "null")
        except orjson.JSONDecodeError:
            arguments = call.arguments
        calls.append((call.name, arguments))
    return calls


def answers_agree(cached: Completion, fresh: Completion, similarity: Callable[[str, str], float] | None,
                  match_at: float) -> bool:
    """Would serving ``cached`` have answered as well as ``fresh`` (the model's answer now)?

    Tool calls must be the same calls with the same arguments (as JSON values). Text that is equal
    once case, spacing and punctuation are set aside agrees; short answers (labels, numbers, yes/no)
    must be equal so; longer free text agrees when its embeddings are at least ``match_at`` alike.
    """
    if cached.tool_calls or fresh.tool_calls:
        return _tool_calls(cached) == _tool_calls(fresh) and _normalised(cached.text) == _normalised(fresh.text)
    a, b = _normalised(cached.text), _normalised(fresh.text)
    if a == b:
        return True
    if min(len(a.split()), len(b.split())) <= SHORT_ANSWER_WORDS or similarity is None:
        return False
    return similarity(cached.text, fresh.text) >= match_at
