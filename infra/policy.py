"""The traffic policy: a function run on a schedule (``[policy] interval-s``, at least a minute)
that reads usage aggregates and promotes or demotes routes between serverless and reserved GPUs.

At most one policy run at a time: each run takes a lease in the state table first and skips when
another run holds it (functions/policy_handler.py); a reserved concurrency of 1 would do the same
but fails the deploy on an account at the default concurrency quota. A run that fails or misses
its minute is not retried (neither by EventBridge nor by Lambda's asynchronous retries); the next
scheduled run decides from fresher data anyway.
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from functions.core.config import TierupConfig

from .lambda_function import TierupFunction

HANDLER = "functions.policy_handler.handler"
#: a run reads aggregates and calls Modal's control API; a minute bounds a stuck run's cost
TIMEOUT = Duration.seconds(60)
MEMORY_MB = 512


def schedule_rate(interval_s: int) -> Duration:
    """EventBridge schedules run at most once a minute, in whole minutes."""
    return Duration.minutes(max(1, round(interval_s / 60)))


class TrafficPolicy(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, config: TierupConfig,
                 code: lambda_.Code, environment: dict[str, str]) -> None:
        super().__init__(scope, construct_id)
        self.tierup_function = TierupFunction(
            self, "Policy",
            code=code,
            handler=HANDLER,
            description=f"{config.project} traffic policy: promote and demote routes between tiers",
            memory_mb=MEMORY_MB,
            timeout=TIMEOUT,
            retry_attempts=0,
            environment=environment,
        )
        self.function = self.tierup_function.function
        self.rule = events.Rule(
            self, "Schedule",
            description=f"{config.project}: run the traffic policy",
            schedule=events.Schedule.rate(schedule_rate(config.policy.interval_s)),
            enabled=config.policy.enabled,
            targets=[targets.LambdaFunction(self.function, retry_attempts=0,
                                            max_event_age=Duration.minutes(1))],
        )
