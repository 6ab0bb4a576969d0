"""The gateway's CloudWatch metrics as the stack reads them (alarms, dashboard).

The gateway writes them as Embedded Metric Format log lines, so no ``PutMetricData`` call and no
permission is needed: CloudWatch Logs extracts them. Per route they carry the dimension
``Route``; ``CostUSD`` is also written with no dimension, as the total the spend alarms watch.
``Requests`` is also written with ``Route`` and ``Tier``, which the dashboard's tier widget reads.
Each project's metrics live in a namespace of their own (``metrics_namespace``), so every alarm
and widget here reads its own stack's gateway only.
Metrics here carry no label: an alarm on a labelled metric is written as a metric-math alarm,
whose notification no longer names the metric.

No I/O here.
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch

from functions.adapters.emf_metrics import metrics_namespace

COST = "CostUSD"
REQUESTS = "Requests"
PROMPT_TOKENS = "PromptTokens"
COMPLETION_TOKENS = "CompletionTokens"
LATENCY = "Latency"
CACHE_HITS = "CacheHits"
REFUSALS = "Refusals"
#: what serving requests cost the gateway itself (Lambda, DynamoDB, logs), per route and in total
GATEWAY_COST = "GatewayCostUSD"
#: the dimension of GPU time written as spend (with ``Route``), by the traffic policy
GPU = "Gpu"
ROUTE = "Route"
TIER = "Tier"


def route_metric(project: str, name: str, route: str, *, statistic: str = "Sum",
                 period: Duration = Duration.minutes(5)) -> cloudwatch.Metric:
    return cloudwatch.Metric(namespace=metrics_namespace(project), metric_name=name,
                             dimensions_map={ROUTE: route}, statistic=statistic, period=period)


def total_cost(project: str, period: Duration, name: str = COST) -> cloudwatch.Metric:
    return cloudwatch.Metric(namespace=metrics_namespace(project), metric_name=name, statistic="Sum",
                             period=period)
