"""The kill-switch function, subscribed to the alert topic: on a cap alarm or budget notification it
sets refusal flags, drops reserved GPUs to zero and, for a hard stop, sets the gateway function's
reserved concurrency to zero.

It may change the concurrency of the gateway function and of nothing else, write only the state
table, and read the usage table.

It reserves no concurrency: an account at the default quota (10) refuses any reservation. When a
runaway gateway holds all of the account's concurrency, Lambda retries the kill switch's throttled
asynchronous invocations for up to six hours, and the gateway's concurrency and throttle alarms
(infra/gateway_alarms.py) tell people at once. An invocation that still fails (after Lambda's two
retries, or when its events age out) lands in the ``failed-events`` queue, whose alarm emails the
operators: a kill switch that did not act must never be silent.
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_destinations as destinations
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from .lambda_function import TierupFunction
from .tables import TierupTables

HANDLER = "functions.killswitch_handler.handler"
#: setting flags and two control-plane calls; Modal's API is the slow one
TIMEOUT = Duration.seconds(60)
MEMORY_MB = 512
#: SQS keeps a message at most 14 days: two weeks to read why the kill switch failed
FAILED_EVENTS_RETENTION = Duration.days(14)
#: shortly after each UTC day starts: release switches whose budget period is over
#: ([budgets] auto-release-new-period) and restore the gateway's concurrency after a hard stop
RELEASE_SCHEDULE = events.Schedule.cron(minute="5", hour="0")
GATEWAY_CONCURRENCY_ACTIONS = ("lambda:GetFunctionConcurrency", "lambda:PutFunctionConcurrency",
                               "lambda:DeleteFunctionConcurrency")


class KillSwitch(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, project: str, code: lambda_.Code,
                 tables: TierupTables, topic: sns.ITopic, gateway: lambda_.IFunction | None,
                 modal_secret: secretsmanager.ISecret) -> None:
        super().__init__(scope, construct_id)
        self.failed_events = sqs.Queue(self, "FailedEvents", encryption=sqs.QueueEncryption.SQS_MANAGED,
                                       enforce_ssl=True, retention_period=FAILED_EVENTS_RETENTION)
        self.tierup_function = TierupFunction(
            self, "KillSwitch",
            code=code,
            handler=HANDLER,
            description=f"{project} kill switch: refuse, drop reserved GPUs, stop the gateway",
            memory_mb=MEMORY_MB,
            timeout=TIMEOUT,
            on_failure=destinations.SqsDestination(self.failed_events),
            environment={
                **tables.environment("state", "usage"),
                # none when the gateway runs in containers: its hard stop is the flags alone
                **({"TIERUP_GATEWAY_FUNCTION_NAME": gateway.function_name} if gateway else {}),
                "TIERUP_ALERT_TOPIC_ARN": topic.topic_arn,
                "TIERUP_MODAL_SECRET_ARN": modal_secret.secret_arn,
            },
        )
        self.function = self.tierup_function.function
        tables.grant_read_write(self.function, "state")
        tables.grant_read(self.function, "usage")
        modal_secret.grant_read(self.function)
        if gateway is not None:
            self.function.add_to_role_policy(iam.PolicyStatement(
                actions=list(GATEWAY_CONCURRENCY_ACTIONS), resources=[gateway.function_arn]))
        topic.add_subscription(subscriptions.LambdaSubscription(self.function))
        self.release_rule = events.Rule(
            self, "PeriodRelease",
            description=f"{project}: release kill switches whose budget period has ended",
            schedule=RELEASE_SCHEDULE,
            targets=[targets.LambdaFunction(self.function, retry_attempts=2)],
        )
        self.failed_events_alarm = self.failed_events.metric_approximate_number_of_messages_visible(
            period=Duration.minutes(5), statistic="Maximum").create_alarm(
            self, "FailedEventsAlarm", alarm_name=f"{project}-kill-switch-failed-events",
            alarm_description="The kill switch failed an alert or a daily release after its retries; the "
                              "event is in its failed-events queue. Spend may still be running: check "
                              "`tierup killswitch status` and engage by hand.",
            threshold=1, evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING)
        self.failed_events_alarm.add_alarm_action(actions.SnsAction(topic))
