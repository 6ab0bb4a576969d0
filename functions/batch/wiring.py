"""Wiring of the Files and Batch APIs and the batch worker into the gateway (composition root).

Environment:
    TIERUP_BATCH_BUCKET      S3 bucket of batch files (set by the CDK stack; ``tierup dev`` makes one)
    TIERUP_BATCH_QUEUE_URL   SQS queue of batch work
    TIERUP_BATCH_WORKER      ``in-process``: this process drains the queue too (``tierup dev``)
Without the bucket and queue, ``/v1/files`` and ``/v1/batches`` answer 404.
"""

from __future__ import annotations

from ..adapters.batch_store import BatchStore
from ..core.tables import STATE, USAGE

BUCKET_ENV = "TIERUP_BATCH_BUCKET"
QUEUE_ENV = "TIERUP_BATCH_QUEUE_URL"
WORKER_ENV = "TIERUP_BATCH_WORKER"
#: the service role Bedrock batch inference assumes (set by the stack): without it, no Bedrock batch
BEDROCK_ROLE_ENV = "TIERUP_BEDROCK_BATCH_ROLE_ARN"


def batch_store(runtime) -> BatchStore | None:
    bucket, queue_url = runtime.environ.get(BUCKET_ENV), runtime.environ.get(QUEUE_ENV)
    if not runtime.config.batch.enabled or not bucket or not queue_url:
        return None
    return BatchStore(runtime.aws.client, table=runtime.table(STATE), bucket=bucket, queue_url=queue_url,
                      keep_days=runtime.config.batch.keep_days)


def backlog_store(runtime) -> BatchStore | None:
    """The batch store as the promotion policy reads it (queued work per route): the state table
    only, so the policy function needs neither the bucket nor the queue."""
    if not runtime.config.batch.enabled:
        return None
    return BatchStore(runtime.aws.client, table=runtime.table(STATE), bucket=runtime.environ.get(BUCKET_ENV, ""),
                      queue_url=runtime.environ.get(QUEUE_ENV, ""), keep_days=runtime.config.batch.keep_days)


def batch_endpoint(runtime, auth):
    store = batch_store(runtime)
    if store is None:
        return None
    from ..gateway.batch_endpoint import BatchEndpoint

    return BatchEndpoint(auth, store, runtime.config.batch, runtime.config.routes)


def batch_worker(runtime, parts, app, cost):
    """The worker, on the gateway's own stages; its pipeline has no recorders: the worker writes
    each line's ledger record itself, once (``worker.py``)."""
    from ..adapters.dynamodb.ledger_records import DynamoLedgerRecords
    from ..gateway.pipeline import Pipeline
    from .worker import BatchWorker

    config = runtime.config
    router = parts.router
    if hasattr(router, "reserved_load"):  # routes can be promoted: batch lines take idle reserved capacity only
        from .routing import BatchRouter

        router = BatchRouter(router, reserved_share=config.batch.reserved_share,
                             deadline_margin_s=config.batch.deadline_margin_s)
    guards, pacer = parts.ordered_guards(), None
    admission = next((guard for guard in parts.admission_guards if guard.name == "admission"), None)
    if admission is not None and runtime.environ.get(WORKER_ENV) == "in-process":
        # on the gateway's own event loop: lines give way to its requests (yielding.py)
        from .yielding import BatchAdmission, InteractiveFirst

        counted = BatchAdmission(admission)
        guards = [counted if guard is admission else guard for guard in guards]
        pacer = InteractiveFirst(counted.interactive)
    pipeline = Pipeline(guards=guards, router=router, recorders=[], cost=cost,
                        cache=parts.cache, provider_timeout_s=config.gateway.provider_timeout_s)
    ledger = DynamoLedgerRecords(runtime.dynamodb, runtime.table(USAGE), keep_days=config.quotas.ledger_days)
    store = batch_store(runtime)
    worker = BatchWorker(app=app, pipeline=pipeline, store=store, ledger=ledger, config=config,
                         after_chunk=parts.before_response_completes, pacer=pacer)
    role_arn = runtime.environ.get(BEDROCK_ROLE_ENV)
    if role_arn:
        from ..adapters.bedrock_batch import BedrockBatchJobs
        from .bedrock_path import BedrockBatchPath

        jobs = BedrockBatchJobs(runtime.aws.client("bedrock"), runtime.aws.client("s3"), bucket=store.bucket,
                                role_arn=role_arn, min_records=config.batch.bedrock_min_records)
        worker.bedrock = BedrockBatchPath(jobs=jobs, store=store, ledger=ledger, app=app, pipeline=pipeline,
                                          router=parts.router, config=config,
                                          guards=[*parts.kill_switch_guards, *parts.quota_guards,
                                                  *parts.budget_guards],
                                          spend_caps=next((guard for guard in parts.budget_guards
                                                           if guard.name == "budget"), None),
                                          quotas=next((guard for guard in parts.quota_guards
                                                       if guard.name == "quota"), None))
    return worker


def wire_batch_worker(runtime, parts, app, cost) -> None:
    """Give ``app`` its batch worker (``app.batch_worker``: the queue's Lambda function and the
    poller run it), and drain the queue inside this process when ``TIERUP_BATCH_WORKER=in-process``."""
    if batch_store(runtime) is None:
        return
    app.batch_worker = batch_worker(runtime, parts, app, cost)
    if runtime.environ.get(WORKER_ENV) != "in-process":
        return
    from .queue_poller import QueuePoller

    if app.batch_worker.bedrock is not None:  # on AWS a scheduled function follows the jobs
        from .bedrock_poller import BedrockJobPoller

        jobs_poller = BedrockJobPoller(app.batch_worker.bedrock.store, app.batch_worker.bedrock,
                                       interval_s=runtime.config.batch.bedrock_poll_s)
        parts.on_startup.append(jobs_poller.start)
        parts.on_shutdown.insert(0, jobs_poller.stop)

    poller = QueuePoller(lambda: runtime.aws.client("sqs"), runtime.environ[QUEUE_ENV], app.batch_worker,
                         retry_after_s=runtime.config.batch.retry_after_s)
    parts.on_startup.append(poller.start)
    parts.on_shutdown.insert(0, poller.stop)  # before the providers it uses are closed


def create_local_batch_resources(runtime) -> dict[str, str]:
    """The bucket, queue and dead-letter queue on the local endpoint (moto), named after the
    project; their names go into the runtime's environment."""
    import json

    project = runtime.config.project
    batch = runtime.config.batch
    runtime.aws.client("s3").create_bucket(Bucket=f"{project}-batch")
    sqs = runtime.aws.client("sqs")
    dlq_url = sqs.create_queue(QueueName=f"{project}-batch-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    redrive = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(batch.max_receives)})
    queue_url = sqs.create_queue(QueueName=f"{project}-batch", Attributes={
        "VisibilityTimeout": str(batch.visibility_timeout_s), "RedrivePolicy": redrive})["QueueUrl"]
    names = {BUCKET_ENV: f"{project}-batch", QUEUE_ENV: queue_url}
    runtime.environ.update(names)
    return names
