"""Load the public traces the simulator replays, request by request, into 10-second buckets.

* ``azure-conv`` / ``azure-code``: Azure LLM inference trace 2023, one row per request
  (timestamp, context tokens, generated tokens).
* ``servegen:N``: ServeGen m-large client ``chunk-N``: two weeks of 10-minute windows, each with
  a mean rate, the fitted inter-arrival distribution (Gamma or Weibull) and token-length
  distributions. Arrivals are generated per window from that distribution, rescaled to the
  window's rate, with a fixed seed; each request's lengths are drawn from the window's
  distributions (the client's average over all windows where a window has none, and the average
  of all clients for the five clients without a dataset file).

The data is read by path from ``../shared/data`` (next to the repository) or ``$TIERUP_DATA``;
it is never copied into the project.
"""

from __future__ import annotations

import csv
import json
import os
import re
from datetime import datetime
from functools import lru_cache
from pathlib import Path

import numpy as np

from functions.core.gpu_capacity import ReplicaCapacity

from .buckets import Buckets, BucketBuilder, from_requests

WINDOW_S = 600
AZURE_FILES = {"azure-conv": "AzureLLMInferenceTrace_conv.csv", "azure-code": "AzureLLMInferenceTrace_code.csv"}
_PAIR = re.compile(r"(\d+)\s*:\s*([0-9.eE+-]+)")


class TraceNotFound(LookupError):
    """The trace's data is not on this machine."""


def data_root() -> Path:
    """``$TIERUP_DATA``, else ``shared/data`` beside the repository."""
    explicit = os.environ.get("TIERUP_DATA")
    if explicit:
        return Path(explicit)
    return Path(__file__).resolve().parents[2].parent / "shared" / "data"


def servegen_dir() -> Path:
    return data_root() / "servegen" / "m-large"


def servegen_chunks() -> list[str]:
    """The ServeGen client ids present (``chunk-N`` → ``N``), in numeric order."""
    folder = servegen_dir()
    if not folder.is_dir():
        return []
    ids = [path.name.split("-")[1] for path in folder.glob("chunk-*-trace.csv")]
    return sorted(ids, key=int)


def trace_names() -> list[str]:
    """Every trace available here: both Azure traces and each ServeGen client."""
    names = [name for name, file in AZURE_FILES.items() if (data_root() / "azure-llm-2023" / file).is_file()]
    return names + [f"servegen:{chunk}" for chunk in servegen_chunks()]


def load_trace(name: str, capacity: ReplicaCapacity, seed: int = 0, days: float | None = None) -> Buckets:
    """Trace ``name`` (``azure-conv``, ``azure-code`` or ``servegen:N``) on 10-s buckets; a ServeGen
    client's arrivals and lengths are drawn with ``seed``, over its first ``days`` (all by default)."""
    if name in AZURE_FILES:
        return load_azure(name, capacity)
    if name.startswith("servegen:"):
        return load_servegen(name.split(":", 1)[1], capacity, seed, days)
    raise TraceNotFound(f"unknown trace {name!r}: use azure-conv, azure-code or servegen:N")


def load_azure(name: str, capacity: ReplicaCapacity) -> Buckets:
    path = data_root() / "azure-llm-2023" / AZURE_FILES[name]
    if not path.is_file():
        raise TraceNotFound(f"{path} is missing (see shared/data/README.md)")
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    # Timestamps carry 7 fractional digits; microseconds are plenty.
    seconds = np.array([datetime.fromisoformat(row["TIMESTAMP"][:26]).timestamp() for row in rows])
    prompt = np.array([float(row["ContextTokens"]) for row in rows])
    completion = np.array([float(row["GeneratedTokens"]) for row in rows])
    return from_requests(capacity, seconds, prompt, completion)


# -- ServeGen ---------------------------------------------------------------------------------


def _parse_distribution(text: str) -> tuple[np.ndarray, np.ndarray] | None:
    """A ``{tokens: probability}`` Python-literal string as (values, cumulative probabilities)."""
    pairs = _PAIR.findall(text)
    if not pairs:
        return None
    values = np.array([float(tokens) for tokens, _ in pairs])
    weights = np.array([float(p) for _, p in pairs])
    return values, np.cumsum(weights) / weights.sum()


@lru_cache(maxsize=64)
def _servegen_lengths(chunk: str) -> dict[int, tuple]:
    """Per-window (input, output) length distributions of a client; {} without a dataset file."""
    path = servegen_dir() / f"chunk-{chunk}-dataset.json"
    if not path.is_file():
        return {}
    raw = json.loads(path.read_text())
    lengths = {}
    for window, entry in raw.items():
        inputs = _parse_distribution(entry["input_tokens"])
        outputs = _parse_distribution(entry["output_tokens"])
        if inputs and outputs:
            lengths[int(window)] = (inputs, outputs)
    return lengths


@lru_cache(maxsize=1)
def _average_lengths() -> tuple:
    """The average of every client's windows: one (input, output) pair of pooled samples."""
    rng = np.random.default_rng(12345)
    pooled_in, pooled_out = [], []
    for chunk in servegen_chunks():
        for inputs, outputs in _servegen_lengths(chunk).values():
            pooled_in.append(_draw(rng, inputs, 20))
            pooled_out.append(_draw(rng, outputs, 20))
    ins, outs = np.sort(np.concatenate(pooled_in)), np.sort(np.concatenate(pooled_out))
    return ((ins, np.arange(1, len(ins) + 1) / len(ins)), (outs, np.arange(1, len(outs) + 1) / len(outs)))


def _draw(rng: np.random.Generator, distribution: tuple[np.ndarray, np.ndarray], count: int) -> np.ndarray:
    values, cumulative = distribution
    picks = np.searchsorted(cumulative, rng.random(count), side="right")
    return values[np.minimum(picks, len(values) - 1)]


def _interarrivals(rng: np.random.Generator, dist: str, p1: float, p2: float, count: int) -> np.ndarray:
    if dist == "Gamma" and p1 > 0 and p2 > 0:
        return rng.gamma(p1, p2, count)
    if dist == "Weibull" and p1 > 0 and p2 > 0:
        return p2 * rng.weibull(p1, count)
    return rng.exponential(1.0, count)


def _window_arrivals(rng: np.random.Generator, rate: float, dist: str, p1: float, p2: float) -> np.ndarray:
    """Arrival offsets (s) within one window: the fitted process, rescaled to the window's rate."""
    expected = rate * WINDOW_S
    count = int(expected * 1.3) + 32
    gaps = _interarrivals(rng, dist, p1, p2, count)
    scale = (1.0 / rate) / gaps.mean()  # keep the shape (cv), match the measured rate
    # Start at a random phase of the first gap: the window is a slice of a running process.
    times = np.cumsum(gaps * scale) - gaps[0] * scale * rng.random()
    while times[-1] < WINDOW_S:
        more = _interarrivals(rng, dist, p1, p2, count) * scale
        times = np.concatenate([times, times[-1] + np.cumsum(more)])
    return times[(times >= 0) & (times < WINDOW_S)]


def load_servegen(chunk: str, capacity: ReplicaCapacity, seed: int = 0, days: float | None = None) -> Buckets:
    path = servegen_dir() / f"chunk-{chunk}-trace.csv"
    if not path.is_file():
        raise TraceNotFound(f"{path} is missing (see shared/data/README.md)")
    rng = np.random.default_rng([seed, int(chunk)])
    lengths = _servegen_lengths(chunk)
    fallback = _client_average(lengths) if lengths else _average_lengths()
    with path.open(newline="") as handle:
        windows = [row for row in csv.reader(handle) if row]
    if days is not None:
        windows = windows[:max(1, round(days * 86400 / WINDOW_S))]
    builder = BucketBuilder(capacity, 0.0, len(windows) * WINDOW_S)
    for index, (start, rate, _cv, dist, p1, p2) in enumerate(windows):
        rate_rps = float(rate)
        if rate_rps <= 0:
            continue
        offsets = _window_arrivals(rng, rate_rps, dist, float(p1 or 0), float(p2 or 0))
        inputs, outputs = lengths.get(int(float(start)), fallback)
        builder.add(index * WINDOW_S + offsets, _draw(rng, inputs, len(offsets)), _draw(rng, outputs, len(offsets)))
    return builder.build()


def _client_average(lengths: dict[int, tuple]) -> tuple:
    """A client's windows pooled (for a busy window whose own distribution is missing)."""
    rng = np.random.default_rng(0)
    ins = np.sort(np.concatenate([_draw(rng, inputs, 50) for inputs, _ in lengths.values()]))
    outs = np.sort(np.concatenate([_draw(rng, outputs, 50) for _, outputs in lengths.values()]))
    return ((ins, np.arange(1, len(ins) + 1) / len(ins)), (outs, np.arange(1, len(outs) + 1) / len(outs)))
