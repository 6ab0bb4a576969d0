"""Alarms on the control functions' own failures, for people: a kill switch that errors leaves
spend running, and a policy that errors leaves routes on the wrong tier. Both notify the alert
topic; their descriptions carry no kill-switch marker, so the kill switch leaves them alone.
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from constructs import Construct

#: the policy runs every minute: three failed runs in a row is a broken policy, not a blip
POLICY_FAILED_RUNS = 3


class FunctionErrorAlarms(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, project: str, kill_switch: lambda_.IFunction,
                 policy: lambda_.IFunction, topic: sns.ITopic) -> None:
        super().__init__(scope, construct_id)
        action = actions.SnsAction(topic)
        self.alarms = [
            kill_switch.metric_errors(period=Duration.minutes(1), statistic="Sum").create_alarm(
                self, "KillSwitchErrors", alarm_name=f"{project}-kill-switch-errors",
                alarm_description="The kill switch failed to act on an alert: check its log; spend may "
                                  "still be running (tierup killswitch engage works by hand)",
                threshold=1, evaluation_periods=1,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING),
            policy.metric_errors(period=Duration.minutes(1), statistic="Sum").create_alarm(
                self, "PolicyErrors", alarm_name=f"{project}-policy-errors",
                alarm_description=f"The traffic policy failed {POLICY_FAILED_RUNS} runs in a row: routes "
                                  "keep their current tier until it recovers",
                threshold=1, evaluation_periods=POLICY_FAILED_RUNS, datapoints_to_alarm=POLICY_FAILED_RUNS,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING),
        ]
        for alarm in self.alarms:
            alarm.add_alarm_action(action)
