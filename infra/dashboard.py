"""The operations dashboard: spend, requests, tokens, latency percentiles, cache hit rate, refusals
and which tier serves each route, from the gateway's EMF metrics; plus the spend alarms' states.

No I/O here; widgets only read metrics the gateway writes (``infra/metrics.py``).
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from constructs import Construct

from .metrics import (CACHE_HITS, COMPLETION_TOKENS, COST, GATEWAY_COST, GPU, LATENCY, PROMPT_TOKENS, REFUSALS,
                      REQUESTS, ROUTE, TIER, metrics_namespace, route_metric, total_cost)

WIDTH = 12  # two graphs per row (the grid is 24 wide)
HOUR = Duration.hours(1)


def _per_route(project: str, name: str, route: str, **options) -> cloudwatch.Metric:
    return route_metric(project, name, route, **options).with_(label=route)


def _graph(title: str, metrics: list[cloudwatch.IMetric], unit: str) -> cloudwatch.GraphWidget:
    return cloudwatch.GraphWidget(title=title, left=metrics, width=WIDTH, height=6,
                                  left_y_axis=cloudwatch.YAxisProps(label=unit, show_units=False))


class OperationsDashboard(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, project: str, routes: list[str],
                 alarms: list[cloudwatch.IAlarm]) -> None:
        super().__init__(scope, construct_id)
        self.dashboard = cloudwatch.Dashboard(self, "Dashboard", dashboard_name=f"{project}-operations")
        hourly_cost = [_per_route(project, COST, route, period=HOUR) for route in routes]
        self.dashboard.add_widgets(
            _graph("Spend per hour", [total_cost(project, HOUR).with_(label="all routes"), *hourly_cost], "USD"),
            _graph("Requests", [_per_route(project, REQUESTS, route) for route in routes], "requests"))
        self.dashboard.add_widgets(_graph("Spend per hour: model, GPU, gateway", self._spend_by_kind(project), "USD"),
                                   _graph("Gateway's own cost per hour", [
                                       _per_route(project, GATEWAY_COST, route, period=HOUR) for route in routes],
                                       "USD"))
        self.dashboard.add_widgets(
            _graph("Prompt tokens", [_per_route(project, PROMPT_TOKENS, route) for route in routes], "tokens"),
            _graph("Completion tokens", [_per_route(project, COMPLETION_TOKENS, route) for route in routes],
                   "tokens"))
        latency = [route_metric(project, LATENCY, route, statistic=stat).with_(label=f"{route} {stat}")
                   for route in routes for stat in ("p50", "p95", "p99")]
        self.dashboard.add_widgets(
            _graph("Latency p50 / p95 / p99", latency, "ms"),
            _graph("Cache hit rate", [self._hit_rate(project, index, route) for index, route in enumerate(routes)],
                   "%"))
        # the namespace is quoted: a project name may hold a hyphen, which SEARCH reads as an operator
        tiers = cloudwatch.MathExpression(
            expression=f"SEARCH('{{\"{metrics_namespace(project)}\",{ROUTE},{TIER}}} "
                       f"MetricName=\"{REQUESTS}\"', 'Sum', 300)",
            label="", period=Duration.minutes(5))
        self.dashboard.add_widgets(
            _graph("Refusals (quota, budget, overload)", [_per_route(project, REFUSALS, route) for route in routes],
                   "requests"),
            _graph("Requests by route and tier", [tiers], "requests"))
        if alarms:
            self.dashboard.add_widgets(cloudwatch.AlarmStatusWidget(title="Alarms", alarms=alarms,
                                                                    width=24, height=4))

    @staticmethod
    def _spend_by_kind(project: str) -> list[cloudwatch.IMetric]:
        """CostUSD is model tokens plus GPU time; GPU time is also written per ``Gpu``, so the model's
        share is the total less the GPU's. The gateway's own cost is a metric of its own."""
        gpu = cloudwatch.MathExpression(
            expression=f"SUM(SEARCH('{{\"{metrics_namespace(project)}\",{ROUTE},{GPU}}} "
                       f"MetricName=\"{COST}\"', 'Sum', 3600))",
            label="GPU", period=HOUR)
        model = cloudwatch.MathExpression(expression="total - FILL(gpu, 0)", label="model",
                                          using_metrics={"total": total_cost(project, HOUR), "gpu": gpu},
                                          period=HOUR)
        return [model, gpu, total_cost(project, HOUR, GATEWAY_COST).with_(label="gateway")]

    @staticmethod
    def _hit_rate(project: str, index: int, route: str) -> cloudwatch.MathExpression:
        return cloudwatch.MathExpression(
            expression=f"IF(requests{index} > 0, 100 * hits{index} / requests{index}, 0)",
            using_metrics={f"hits{index}": route_metric(project, CACHE_HITS, route),
                           f"requests{index}": route_metric(project, REQUESTS, route)},
            label=route, period=Duration.minutes(5))
