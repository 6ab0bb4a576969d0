"""The gateway's CloudWatch metrics as Embedded Metric Format log lines, via Powertools' Metrics.

Names and dimensions are the ones the stack's alarms and dashboard read (``infra/metrics.py``):
per ``Route``: Requests, PromptTokens, CompletionTokens, CostUSD, Latency, CacheHits, Refusals, and
GatewayCostUSD (what serving them cost the gateway itself: Lambda, DynamoDB, logs; also with no dimension);
Requests per ``Route`` and ``Tier``; CostUSD with no dimension (the spend alarms' total). GPU time
(written by the traffic policy) is CostUSD too: per ``Route``, in the total, and with ``GpuSeconds``
per ``Route`` and ``Gpu``.
Every metric is in the project's own namespace (``metrics_namespace``): two stacks in one account
(a dev and a prod project) never feed each other's alarms and kill switches.
Powertools is imported on the first flush, not at import: it would cost the cold start.
Each line goes to ``sink`` (stdout by default, which CloudWatch Logs reads on Lambda).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable

from ..core.usage_ledger import LedgerEntry

NAMESPACE_PREFIX = "tierup"


def metrics_namespace(project: str) -> str:
    """The CloudWatch namespace of one project's metrics (the stack's alarms read the same)."""
    return f"{NAMESPACE_PREFIX}/{project}"


#: values of one metric in one line: Powertools prints and clears a metric set on its own when a
#: metric reaches 100 values (``MAX_METRICS``), so a line carries at most 99
VALUES_PER_LINE = 99


def emf_stdout(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


class EmfMetrics:
    def __init__(self, namespace: str = metrics_namespace("tierup"), sink: Callable[[str], None] = emf_stdout) -> None:
        self._namespace = namespace
        self._sink = sink

    def _emit(self, dimensions: dict[str, str], values: dict[str, tuple[str, list[float]]],
              also: tuple[tuple[dict[str, str], tuple[str, ...]], ...] = ()) -> None:
        """One line with every metric's first values; a metric with more than ``VALUES_PER_LINE``
        continues alone in lines of its own, so every value counts (in percentiles too). ``also``:
        (dimensions, metric names) whose values are the same as these, published from the first
        line by directives of their own (EMF reads one line's values for several directives)."""
        for start in range(0, max(map(len, (points for _, points in values.values())), default=0),
                           VALUES_PER_LINE):
            self._emit_line(dimensions, {name: (unit, points[start:start + VALUES_PER_LINE])
                                         for name, (unit, points) in values.items()}, also if start == 0 else ())

    def _emit_line(self, dimensions: dict[str, str], values: dict[str, tuple[str, list[float]]],
                   also: tuple[tuple[dict[str, str], tuple[str, ...]], ...] = ()) -> None:
        from aws_lambda_powertools.metrics import EphemeralMetrics

        metrics = EphemeralMetrics(namespace=self._namespace)
        metrics.default_dimensions = {}
        metrics.dimension_set.clear()  # no "service" dimension: alarms match dimensions exactly
        for name, value in dimensions.items():
            metrics.add_dimension(name=name, value=value)
        for name, (unit, points) in values.items():
            if not points:
                continue
            # add_metric validates name, unit and value, then debug-formats the metric's whole value
            # list: once per value that is quadratic (15 ms of CPU for 600 latencies), so the first
            # value goes through it and the rest, numbers already, join its list
            metrics.add_metric(name=name, unit=unit, value=points[0])
            metrics.metric_set[name]["Value"].extend(float(point) for point in points[1:])
        line = metrics.serialize_metric_set()
        for extra_dimensions, names in also:
            line["_aws"]["CloudWatchMetrics"].append({
                "Namespace": self._namespace, "Dimensions": [list(extra_dimensions)],
                "Metrics": [{"Name": name, "Unit": values[name][0]} for name in names]})
            line.update(extra_dimensions)
        # compact: log ingestion is billed per byte
        self._sink(json.dumps(line, separators=(",", ":")))

    def emit_gpu_spend(self, route: str, gpu: str, usd: float, gpu_seconds: float) -> None:
        """A route's GPU time as spend: in the route's and the total cost the alarms and the
        dashboard read, and per GPU type."""
        self._emit({"Route": route}, {"CostUSD": ("None", [usd])})
        self._emit({"Route": route, "Gpu": gpu}, {"CostUSD": ("None", [usd]),
                                                  "GpuSeconds": ("Seconds", [gpu_seconds])})
        self._emit({}, {"CostUSD": ("None", [usd])})

    def emit_cache_calibration(self, route: str, measured) -> None:
        """A bounded route's measured share of wrong semantic hits (``core.cache.calibration.Measured``:
        at its current threshold, with a 95% interval) and how many observations it rests on."""
        self._emit({"Route": route}, {"CacheWrongHitRate": ("None", [measured.rate]),
                                      "CacheWrongHitRateLow": ("None", [measured.low]),
                                      "CacheWrongHitRateHigh": ("None", [measured.high]),
                                      "CacheCalibrationSamples": ("Count", [measured.samples])})

    def emit(self, entries: list[LedgerEntry]) -> None:
        by_route: dict[str, list[LedgerEntry]] = {}
        by_tier: dict[tuple[str, str], int] = {}
        for entry in entries:
            by_route.setdefault(entry.route, []).append(entry)
            if entry.answered and entry.tier is not None:
                by_tier[(entry.route, entry.tier)] = by_tier.get((entry.route, entry.tier), 0) + 1
        total_cost = total_gateway_cost = 0.0
        totals_written = False
        for route, group in by_route.items():
            latencies = [round(e.latency_ms, 3) for e in group if e.answered]
            cost = sum(e.cost_usd for e in group)
            total_cost += cost
            gateway_cost = sum(e.gateway_cost_usd for e in group)
            total_gateway_cost += gateway_cost
            # One line where the values agree (on Lambda a flush is one request's): the route's one
            # tier served every answer, and one route is the whole total. Log bytes are billed.
            also = []
            tiers = [tier for (name, tier) in by_tier if name == route]
            if len(tiers) == 1 and by_tier[(route, tiers[0])] == len(latencies):
                del by_tier[(route, tiers[0])]
                also.append(({"Route": route, "Tier": tiers[0]}, ("Requests",)))
            if len(by_route) == 1:
                totals_written = True
                also.append(({}, ("CostUSD", "GatewayCostUSD")))
            self._emit({"Route": route}, {
                "Requests": ("Count", [float(len(latencies))]),
                "PromptTokens": ("Count", [float(sum(e.provider_tokens[0] for e in group))]),
                "CompletionTokens": ("Count", [float(sum(e.provider_tokens[1] for e in group))]),
                "CostUSD": ("None", [cost]),
                "CacheHits": ("Count", [float(sum(e.cache_status.startswith("hit") for e in group))]),
                "Refusals": ("Count", [float(sum(e.outcome == "refused" for e in group))]),
                "Latency": ("Milliseconds", latencies),
                "GatewayCostUSD": ("None", [gateway_cost]),
            }, tuple(also))
        for (route, tier), count in by_tier.items():
            self._emit({"Route": route, "Tier": tier}, {"Requests": ("Count", [float(count)])})
        if entries and not totals_written:
            self._emit({}, {"CostUSD": ("None", [total_cost]), "GatewayCostUSD": ("None", [total_gateway_cost])})
