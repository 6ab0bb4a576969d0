"""Batch work: the files bucket, the work queue and its dead-letter queue, the worker function,
the role Bedrock batch inference assumes, and the alarms on work that is stuck.

    bucket   S3-managed encryption, TLS only, no public access; objects expire after
             ``[batch] keep-days`` (inputs, outputs and Bedrock's job files alike)
    queue    one message per chunk of lines; after ``max-receives`` deliveries a message moves to
             the dead-letter queue (kept 14 days, for a person to look at)
    worker   ``functions.batch_handler``: the gateway's code, invoked by the queue, at most
             ``max-workers`` at once: with ``line-concurrency`` that bounds the batch lines in
             flight, whatever the backlog, so interactive traffic keeps the rest of a route's quota
    poller   ``functions.bedrock_poller_handler``, every minute: follows the Bedrock batch jobs
             the worker started, keeps and bills their answers, stops a job at its deadline
             margin or when its batch is cancelled, and queues the batch's chunks again after
    alarms   a message in the dead-letter queue; the oldest message older than ``stuck-after-s``

The gateway writes uploads and reads files (``files/``) and sends work; the worker reads and
writes files, takes work, writes a job's records (``bedrock/``) and starts the job
(``CreateModelInvocationJob``, passing Bedrock's service role and no other); the poller reads
files and a job's answers, follows and stops jobs and sends work; Bedrock's service role reads
and writes ``bedrock/`` only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from functions.batch.wiring import BEDROCK_ROLE_ENV, BUCKET_ENV, QUEUE_ENV
from functions.core.config import TierupConfig

from .bedrock_access import bedrock_region, model_arns
from .lambda_function import TierupFunction

if TYPE_CHECKING:
    from .gateway import GatewayFunction
    from .gateway_container import GatewayContainer

HANDLER = "functions.batch_handler.handler"
POLLER_HANDLER = "functions.bedrock_poller_handler.handler"
#: how often the poller follows the Bedrock batch jobs (jobs take hours: a minute is plenty)
POLL_EVERY = Duration.minutes(1)
POLLER_TIMEOUT = Duration.minutes(5)
MEMORY_MB = 1024
#: Lambda's longest run; the queue hides a taken message at least this long (it must, for Lambda)
MAX_TIMEOUT_S = 900
DLQ_RETENTION = Duration.days(14)
#: the oldest queued chunk older than this means the batch is not progressing
STUCK_AFTER = Duration.hours(6)


class BatchWork(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, config: TierupConfig, code: lambda_.Code,
                 environment: dict[str, str], topic: sns.ITopic) -> None:
        super().__init__(scope, construct_id)
        batch = config.batch
        self.bucket = s3.Bucket(
            self, "Files", encryption=s3.BucketEncryption.S3_MANAGED, enforce_ssl=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL, removal_policy=RemovalPolicy.RETAIN,
            lifecycle_rules=[s3.LifecycleRule(expiration=Duration.days(batch.keep_days),
                                              abort_incomplete_multipart_upload_after=Duration.days(1))])
        self.dead_letters = sqs.Queue(self, "DeadLetters", encryption=sqs.QueueEncryption.SQS_MANAGED,
                                      enforce_ssl=True, retention_period=DLQ_RETENTION)
        timeout_s = min(MAX_TIMEOUT_S, batch.visibility_timeout_s)
        self.queue = sqs.Queue(
            self, "Work", encryption=sqs.QueueEncryption.SQS_MANAGED, enforce_ssl=True,
            visibility_timeout=Duration.seconds(batch.visibility_timeout_s),
            dead_letter_queue=sqs.DeadLetterQueue(queue=self.dead_letters, max_receive_count=batch.max_receives))
        self.environment = {BUCKET_ENV: self.bucket.bucket_name, QUEUE_ENV: self.queue.queue_url}
        # Bedrock batch inference reads its records and writes its answers as this role
        stack = Stack.of(self)
        self.bedrock_role = iam.Role(
            self, "BedrockBatchRole",
            description=f"{config.project}: Bedrock batch inference reads and writes bedrock/",
            assumed_by=iam.ServicePrincipal("bedrock.amazonaws.com", conditions={
                "StringEquals": {"aws:SourceAccount": stack.account}}))
        self.bedrock_role.add_to_policy(iam.PolicyStatement(
            actions=["s3:GetObject", "s3:PutObject"], resources=[self.bucket.arn_for_objects("bedrock/*")]))
        self.bedrock_role.add_to_policy(iam.PolicyStatement(actions=["s3:ListBucket"],
                                                            resources=[self.bucket.bucket_arn]))

        jobs_env = {**environment, **self.environment, BEDROCK_ROLE_ENV: self.bedrock_role.role_arn}

        self.worker = TierupFunction(
            self, "Worker", code=code, handler=HANDLER,
            description=f"{config.project} batch worker: runs queued batch lines through the gateway's pipeline",
            memory_mb=MEMORY_MB, timeout=Duration.seconds(timeout_s),
            environment=jobs_env).function
        self.worker.add_event_source(sources.SqsEventSource(
            self.queue, batch_size=1, report_batch_item_failures=True, max_concurrency=max(2, batch.max_workers)))
        self.grant_files(self.worker)
        self.worker.add_to_role_policy(iam.PolicyStatement(
            actions=["s3:PutObject"], resources=[self.bucket.arn_for_objects("bedrock/*")]))
        self.worker.add_to_role_policy(iam.PolicyStatement(
            actions=["bedrock:CreateModelInvocationJob"],
            resources=[self.job_arns(stack), *batch_model_arns(config, stack)]))
        self.worker.add_to_role_policy(iam.PolicyStatement(
            actions=["iam:PassRole"], resources=[self.bedrock_role.role_arn],
            conditions={"StringEquals": {"iam:PassedToService": "bedrock.amazonaws.com"}}))

        self.poller = TierupFunction(
            self, "BedrockPoller", code=code, handler=POLLER_HANDLER,
            description=f"{config.project} Bedrock batch poller: brings batch jobs' answers back",
            memory_mb=MEMORY_MB, timeout=POLLER_TIMEOUT, environment=jobs_env).function
        self.grant_files(self.poller)
        self.poller.add_to_role_policy(iam.PolicyStatement(
            actions=["s3:GetObject"], resources=[self.bucket.arn_for_objects("bedrock/*")]))
        self.poller.add_to_role_policy(iam.PolicyStatement(
            actions=["bedrock:GetModelInvocationJob", "bedrock:StopModelInvocationJob"],
            resources=[self.job_arns(stack)]))
        self.queue.grant_send_messages(self.poller)
        self.poll_schedule = events.Rule(
            self, "BedrockPollSchedule", description="follow the Bedrock batch jobs",
            schedule=events.Schedule.rate(POLL_EVERY),
            targets=[targets.LambdaFunction(self.poller, retry_attempts=0)])  # the next run is a minute away

        action = actions.SnsAction(topic)
        self.alarms = [
            self.dead_letters.metric_approximate_number_of_messages_visible(
                period=Duration.minutes(5), statistic="Maximum").create_alarm(
                self, "DeadLetterDepth", alarm_name=f"{config.project}-batch-dead-letters",
                alarm_description="Batch work failed every delivery and sits in the dead-letter queue: "
                                  "read the worker's log, then redrive the messages",
                threshold=1, evaluation_periods=1,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING),
            self.queue.metric_approximate_age_of_oldest_message(
                period=Duration.minutes(5), statistic="Maximum").create_alarm(
                self, "StuckWork", alarm_name=f"{config.project}-batch-stuck",
                alarm_description="A batch chunk has waited in the queue for hours: a kill switch, a "
                                  "full quota or a failing worker holds it (tierup batches list)",
                threshold=STUCK_AFTER.to_seconds(), evaluation_periods=1,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING),
        ]
        for alarm in self.alarms:
            alarm.add_alarm_action(action)

    @staticmethod
    def job_arns(stack: Stack) -> str:
        """The account's Bedrock batch jobs in this region (their ids are Bedrock's, made at run time)."""
        return f"arn:{stack.partition}:bedrock:{stack.region}:{stack.account}:model-invocation-job/*"

    def grant_files(self, grantee: iam.IGrantable) -> None:
        """Read and write batch files (``files/``), named actions only."""
        grantee.grant_principal.add_to_principal_policy(iam.PolicyStatement(
            actions=["s3:GetObject", "s3:PutObject"], resources=[self.bucket.arn_for_objects("files/*")]))

    def grant_submit(self, gateway: GatewayFunction | GatewayContainer) -> None:
        """The gateway, on either host (``grantee`` and ``add_environment``): uploads and downloads,
        and sending work."""
        self.grant_files(gateway.grantee)
        self.queue.grant_send_messages(gateway.grantee)
        for name, value in self.environment.items():
            gateway.add_environment(name, value)


def batch_model_arns(config: TierupConfig, stack: Stack) -> list[str]:
    """The models a batch job may name: each route's serverless model that has a batch price."""
    region = bedrock_region(config, stack.region)
    models = {route.serverless for route in config.routes.values()
              if route.serverless and (price := config.pricing.models.get(route.serverless)) is not None
              and price.batch_input_per_mtok is not None}
    return sorted({arn for model in models for arn in model_arns(model, region, stack.account, stack.partition)})

