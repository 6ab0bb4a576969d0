"""Alarms on the gateway function, for people: each notifies the alert topic and none carries the
kill-switch marker (a failing gateway needs a person, not a stop).

    errors       the function itself failed (crash, timeout) in 5 minutes, ``ERRORS_IN_5_MIN`` times
    throttles    Lambda refused invocations: the account (or the reservation) is out of concurrency,
                 or a hard stop is engaged (then this alarm is expected)
    5xx share    more than ``FIVE_XX_PERCENT`` % of the Function URL's answers were 5xx over 5 minutes
                 (at least ``MIN_REQUESTS_FOR_SHARE`` requests): provider outages, the gateway's own
                 503s, and kill-switch refusals all count
    concurrency  concurrent executions reached ``[gateway] concurrency-alarm`` (80% of
                 ``reserved-concurrency`` when set, else 100): unusual load, before it throttles

Every alarm name starts with the project (the topic lets only ``{project}-*`` alarms publish).
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from constructs import Construct

from functions.core.config import TierupConfig

ERRORS_IN_5_MIN = 5
FIVE_XX_PERCENT = 5
#: a share of a handful of requests is noise: 1 failure in 3 is not an outage
MIN_REQUESTS_FOR_SHARE = 20
FIVE_MINUTES = Duration.minutes(5)
GREATER_OR_EQUAL = cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD


def _url_metric(gateway: lambda_.IFunction, name: str) -> cloudwatch.Metric:
    """Function URL metrics (``UrlRequestCount``, ``Url5xxCount``) are in AWS/Lambda by FunctionName."""
    return cloudwatch.Metric(namespace="AWS/Lambda", metric_name=name,
                             dimensions_map={"FunctionName": gateway.function_name},
                             statistic="Sum", period=FIVE_MINUTES)


class GatewayAlarms(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, config: TierupConfig,
                 gateway: lambda_.IFunction, topic: sns.ITopic) -> None:
        super().__init__(scope, construct_id)
        project = config.project
        concurrency_at = config.gateway.concurrency_alarm_at()
        five_xx_share = cloudwatch.MathExpression(
            expression=f"IF(requests >= {MIN_REQUESTS_FOR_SHARE}, 100 * errors / requests, 0)",
            using_metrics={"requests": _url_metric(gateway, "UrlRequestCount"),
                           "errors": _url_metric(gateway, "Url5xxCount")},
            label="5xx share (%)", period=FIVE_MINUTES)
        self.alarms = [
            gateway.metric_errors(period=FIVE_MINUTES, statistic="Sum").create_alarm(
                self, "Errors", alarm_name=f"{project}-gateway-errors",
                alarm_description=f"The gateway function failed {ERRORS_IN_5_MIN}+ times in 5 minutes "
                                  "(crashes or timeouts): check its log",
                threshold=ERRORS_IN_5_MIN, evaluation_periods=1, comparison_operator=GREATER_OR_EQUAL,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING),
            gateway.metric_throttles(period=FIVE_MINUTES, statistic="Sum").create_alarm(
                self, "Throttles", alarm_name=f"{project}-gateway-throttles",
                alarm_description="Lambda refused gateway invocations: the account's (or the gateway's "
                                  "reserved) concurrency is exhausted, or a hard stop is engaged "
                                  "(`tierup killswitch status`)",
                threshold=1, evaluation_periods=1, comparison_operator=GREATER_OR_EQUAL,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING),
            five_xx_share.create_alarm(
                self, "FiveXxShare", alarm_name=f"{project}-gateway-5xx-share",
                alarm_description=f"Over {FIVE_XX_PERCENT}% of the gateway's answers were 5xx in 5 minutes "
                                  "(provider outage, overload or an engaged kill switch)",
                threshold=FIVE_XX_PERCENT, evaluation_periods=1,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING),
            cloudwatch.Metric(namespace="AWS/Lambda", metric_name="ConcurrentExecutions",
                              dimensions_map={"FunctionName": gateway.function_name},
                              statistic="Maximum", period=Duration.minutes(1)).create_alarm(
                self, "Concurrency", alarm_name=f"{project}-gateway-concurrency",
                alarm_description=f"The gateway ran {concurrency_at}+ instances at once ([gateway] "
                                  "concurrency-alarm): unusual load; past the account's quota (or the "
                                  "reservation) requests are throttled",
                threshold=concurrency_at, evaluation_periods=1, comparison_operator=GREATER_OR_EQUAL,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING),
        ]
        action = actions.SnsAction(topic)
        for alarm in self.alarms:
            alarm.add_alarm_action(action)
