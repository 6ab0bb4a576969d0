"""Where batch work lives: files in S3, jobs and per-line results in DynamoDB, work on SQS.

    S3    files/<tenant>/<file id>                     uploaded inputs, output and error files
    state pk = "batchfile#<tenant>"  sk = <file id>     a file's name, size, purpose
          pk = "batch#<tenant>"      sk = <batch id>    a batch job (ids sort by creation time)
          pk = "batchline#<batch id>" sk = <line, 7 digits>   one line's answer, written once
          pk = "batchbacklog#<route>" sk = <tenant>#<batch id>  a queued batch's work on a route
    SQS   {"tenant", "batch", "chunk", "first", "last"}   one message per chunk of lines

Every key of a file or a job begins with its tenant, and every lookup is made with the caller's
tenant: another tenant's id is simply not found. A line's result is written with
``attribute_not_exists``: a line answered once is never answered (or billed) again.

The backlog items are what the promotion policy reads of the queue (``backlog``, one query per
route): a chat batch's lines and estimated tokens per route and its window's end, with the lines
done so far (``done``, raised as chunks finish). They go when the batch ends or is cancelled, or
its lines are handed to a Bedrock job; the table's TTL removes them at the window's end.

Store calls are blocking (boto3); callers on the event loop run them in a thread.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable

from botocore.exceptions import ClientError

from ..core.batch import TERMINAL, BatchJob
from .dynamodb.batch_writes import write_all
from .dynamodb.numbers import number
from .dynamodb.storage_errors import translates_storage_errors
from .dynamodb.write_marks import conditional_failed, written_if_allowed
from .storage_outage import storage_unavailable


#: what a backlog item tells the promotion policy about one queued batch on one route
BACKLOG_FIELDS = ("lines", "done", "prompt_tokens", "completion_tokens", "deadline_s")


def _job_item(job: BatchJob, expires_at: int, routes: list[str]) -> dict:
    doc = {"routes": routes, "input_file_id": job.input_file_id, "endpoint": job.endpoint,
           "window": job.completion_window,
           "created_at": job.created_at, "total": job.total, "chunks": job.chunks, "metadata": job.metadata,
           "plan": job.plan, "key_id": job.key_id}
    return {"pk": {"S": f"batch#{job.tenant_id}"}, "sk": {"S": job.id}, "doc": {"S": json.dumps(doc)},
            "status": {"S": job.status}, "times": {"M": {}}, "chunk_counts": {"M": {}},
            "expires_at": number(expires_at)}


def _job(item: dict) -> BatchJob:
    doc = json.loads(item["doc"]["S"])
    counts = {index: value["S"].split(",") for index, value in item.get("chunk_counts", {}).get("M", {}).items()}
    return BatchJob(id=item["sk"]["S"], tenant_id=item["pk"]["S"].removeprefix("batch#"),
                    input_file_id=doc["input_file_id"], endpoint=doc["endpoint"], completion_window=doc["window"],
                    created_at=doc["created_at"], total=doc["total"], chunks=doc["chunks"], metadata=doc["metadata"],
                    plan=doc.get("plan", ""), key_id=doc.get("key_id", ""),
                    status=item["status"]["S"], chunk_counts=counts,
                    output_file_id=item.get("output_file_id", {}).get("S"),
                    error_file_id=item.get("error_file_id", {}).get("S"),
                    times={name: int(value["N"]) for name, value in item.get("times", {}).get("M", {}).items()},
                    errors=json.loads(item["errors"]["S"]) if "errors" in item else [],
                    bedrock=json.loads(item["bedrock"]["S"]) if "bedrock" in item else None)


class BatchStore:
    def __init__(self, client: Callable[[str], object], *, table: str, bucket: str, queue_url: str,
                 keep_days: int) -> None:
        """``client(service)`` returns a boto3 client (``AwsClients.client``)."""
        self._client = client
        self._table = table
        self.bucket = bucket
        self.queue_url = queue_url
        self._keep_s = keep_days * 86400

    def _db(self):
        return self._client("dynamodb")

    # -- files -----------------------------------------------------------------------------

    @staticmethod
    def object_key(tenant_id: str, file_id: str) -> str:
        return f"files/{tenant_id}/{file_id}"

    @translates_storage_errors("batch files")
    def put_file(self, tenant_id: str, file_object: dict, data: bytes, expires_at: int) -> None:
        """The bytes first, then the record that makes them visible: a file is never listed without them."""
        file_id = file_object["id"]
        self._client("s3").put_object(Bucket=self.bucket, Key=self.object_key(tenant_id, file_id), Body=data,
                                      ContentType="application/jsonl")
        self._db().put_item(TableName=self._table, Item={
            "pk": {"S": f"batchfile#{tenant_id}"}, "sk": {"S": file_id}, "doc": {"S": json.dumps(file_object)},
            "expires_at": number(expires_at)})

    @translates_storage_errors("batch files")
    def file_object(self, tenant_id: str, file_id: str) -> dict | None:
        item = self._db().get_item(TableName=self._table, ConsistentRead=True, Key={
            "pk": {"S": f"batchfile#{tenant_id}"}, "sk": {"S": file_id}}).get("Item")
        return json.loads(item["doc"]["S"]) if item else None

    @translates_storage_errors("batch files")
    def file_objects(self, tenant_id: str, *, after: str | None, limit: int) -> tuple[list[dict], bool]:
        """A tenant's files in id order, from just past ``after``: ``(files, has_more)``."""
        request = {"TableName": self._table, "KeyConditionExpression": "pk = :pk", "Limit": limit + 1,
                   "ExpressionAttributeValues": {":pk": {"S": f"batchfile#{tenant_id}"}}}
        if after:
            request["ExclusiveStartKey"] = {"pk": {"S": f"batchfile#{tenant_id}"}, "sk": {"S": after}}
        items = self._db().query(**request)["Items"]
        return [json.loads(item["doc"]["S"]) for item in items[:limit]], len(items) > limit

    @translates_storage_errors("batch files")
    def file_content(self, tenant_id: str, file_id: str) -> bytes:
        answer = self._client("s3").get_object(Bucket=self.bucket, Key=self.object_key(tenant_id, file_id))
        return answer["Body"].read()

    # -- jobs ------------------------------------------------------------------------------

    @translates_storage_errors("batches")
    def put_job(self, job: BatchJob, work: dict[str, tuple[int, int, int]] | None = None) -> None:
        """Keep a new batch; ``work``: its lines and estimated prompt and completion tokens per
        route, kept as the routes' backlog for the promotion policy (first, so that a batch is never
        queued without them)."""
        for route, (lines, prompt, completion) in (work or {}).items():
            self._db().put_item(TableName=self._table, Item={
                "pk": {"S": f"{self.BACKLOG_PREFIX}{route}"}, "sk": {"S": f"{job.tenant_id}#{job.id}"},
                "lines": number(lines), "prompt_tokens": number(prompt), "completion_tokens": number(completion),
                "deadline_s": number(job.expires_at), "done": number(0), "expires_at": number(job.expires_at)})
        self._db().put_item(TableName=self._table, Item=_job_item(job, job.created_at + self._keep_s,
                                                                  sorted(work or {})),
                            ConditionExpression="attribute_not_exists(pk)")

    #: the partition of each route's queued batch work
    BACKLOG_PREFIX = "batchbacklog#"

    @translates_storage_errors("batches")
    def backlog(self, route: str) -> list[dict]:
        """The route's queued batches: ``{"lines", "done", "prompt_tokens", "completion_tokens",
        "deadline_s"}`` each (one query; ``policy.backlog.backlog_from_items`` reads them)."""
        request = {"TableName": self._table, "KeyConditionExpression": "pk = :pk",
                   "ExpressionAttributeValues": {":pk": {"S": f"{self.BACKLOG_PREFIX}{route}"}}}
        found = []
        while True:
            answer = self._db().query(**request)
            found += [{name: float(item[name]["N"]) for name in BACKLOG_FIELDS} for item in answer["Items"]]
            if "LastEvaluatedKey" not in answer:
                return found
            request["ExclusiveStartKey"] = answer["LastEvaluatedKey"]

    def _backlog_done(self, job: BatchJob, routes: list[str]) -> None:
        """Raise each route's ``done`` to the batch's lines finished (never lower: chunks finish
        in any order), without recreating an item already dropped."""
        done = job.completed + job.failed
        for route in routes:
            written_if_allowed(self._db().update_item, TableName=self._table, Key={
                "pk": {"S": f"{self.BACKLOG_PREFIX}{route}"}, "sk": {"S": f"{job.tenant_id}#{job.id}"}},
                UpdateExpression="SET done = :d", ConditionExpression="attribute_exists(pk) AND done < :d",
                ExpressionAttributeValues={":d": number(done)})

    def _drop_backlog(self, tenant_id: str, batch_id: str, routes: list[str]) -> None:
        for route in routes:
            self._db().delete_item(TableName=self._table, Key={
                "pk": {"S": f"{self.BACKLOG_PREFIX}{route}"}, "sk": {"S": f"{tenant_id}#{batch_id}"}})

    @translates_storage_errors("batches")
    def job(self, tenant_id: str, batch_id: str) -> BatchJob | None:
        item = self._db().get_item(TableName=self._table, ConsistentRead=True, Key={
            "pk": {"S": f"batch#{tenant_id}"}, "sk": {"S": batch_id}}).get("Item")
        return _job(item) if item else None

    @translates_storage_errors("batches")
    def jobs(self, tenant_id: str, *, after: str | None, limit: int) -> tuple[list[BatchJob], bool]:
        """Newest first, from just past ``after``: ``(jobs, has_more)``."""
        request = {"TableName": self._table, "KeyConditionExpression": "pk = :pk", "ScanIndexForward": False,
                   "ExpressionAttributeValues": {":pk": {"S": f"batch#{tenant_id}"}}, "Limit": limit + 1}
        if after:
            request["ExclusiveStartKey"] = {"pk": {"S": f"batch#{tenant_id}"}, "sk": {"S": after}}
        items = self._db().query(**request)["Items"]
        return [_job(item) for item in items[:limit]], len(items) > limit

    @translates_storage_errors("batches")
    def move(self, tenant_id: str, batch_id: str, to: str, *, when: tuple[str, ...], at: int,
             extra: dict | None = None) -> bool:
        """Set the status to ``to`` (and its ``<to>_at`` time) if it is one of ``when``: whether it moved."""
        names = {"#s": "status", "#t": f"{to}_at"}
        values = {":to": {"S": to}, ":at": number(at)}
        sets = ["#s = :to", "times.#t = :at"]
        for index, (name, value) in enumerate((extra or {}).items()):
            names[f"#x{index}"] = name
            values[f":x{index}"] = {"S": value}
            sets.append(f"#x{index} = :x{index}")
        conditions = []
        for index, status in enumerate(when):
            values[f":w{index}"] = {"S": status}
            conditions.append(f":w{index}")
        moved = written_if_allowed(self._db().update_item, TableName=self._table,
                                   Key={"pk": {"S": f"batch#{tenant_id}"}, "sk": {"S": batch_id}},
                                   UpdateExpression="SET " + ", ".join(sets),
                                   ConditionExpression=f"#s IN ({', '.join(conditions)})",
                                   ExpressionAttributeNames=names, ExpressionAttributeValues=values)
        if moved and (to in TERMINAL or to == "cancelling"):  # no longer work the policy should wait for
            item = self._db().get_item(TableName=self._table, Key={
                "pk": {"S": f"batch#{tenant_id}"}, "sk": {"S": batch_id}}).get("Item")
            self._drop_backlog(tenant_id, batch_id, json.loads(item["doc"]["S"]).get("routes", []) if item else [])
        return moved

    @translates_storage_errors("batches")
    def finish_chunk(self, tenant_id: str, batch_id: str, chunk: int, answered: int, failed: int,
                     cost_usd: float) -> BatchJob:
        """Record a chunk's counts. A ``SET`` of the chunk's own entry: a chunk that runs twice counts once."""
        answer = self._db().update_item(
            TableName=self._table, Key={"pk": {"S": f"batch#{tenant_id}"}, "sk": {"S": batch_id}},
            UpdateExpression="SET chunk_counts.#c = :v", ExpressionAttributeNames={"#c": str(chunk)},
            ExpressionAttributeValues={":v": {"S": f"{answered},{failed},{cost_usd!r}"}}, ReturnValues="ALL_NEW")
        job = _job(answer["Attributes"])
        self._backlog_done(job, json.loads(answer["Attributes"]["doc"]["S"]).get("routes", []))
        return job

    #: the partition listing batches whose Bedrock job the poller follows
    BEDROCK_INDEX = "batchbedrock"

    @translates_storage_errors("batches")
    def set_bedrock(self, tenant_id: str, batch_id: str, state: dict, *, replace: bool = False) -> bool:
        """Record a batch's Bedrock job: the first record only (one job per batch) unless ``replace``.
        A submitted job is listed for the poller until it is done."""
        condition = {} if replace else {"ConditionExpression": "attribute_not_exists(bedrock)"}
        if not written_if_allowed(self._db().update_item, TableName=self._table,
                                  Key={"pk": {"S": f"batch#{tenant_id}"}, "sk": {"S": batch_id}},
                                  UpdateExpression="SET bedrock = :b, bedrock_state = :s",
                                  ExpressionAttributeValues={":b": {"S": json.dumps(state)},
                                                             ":s": {"S": state.get("state", "")}}, **condition):
            return False
        key = {"pk": {"S": self.BEDROCK_INDEX}, "sk": {"S": f"{tenant_id}#{batch_id}"}}
        if state.get("state") == "submitted":
            self._drop_backlog(tenant_id, batch_id, [state["route"]] if state.get("route") else [])
            self._db().put_item(TableName=self._table, Item={**key, "expires_at": number(
                int(state.get("at", 0)) + self._keep_s)})
        else:
            self._db().delete_item(TableName=self._table, Key=key)
        return True

    # -- chunk leases and the hand-over fence ----------------------------------------------
    #
    # A worker holds a lease on the chunk it runs (``lease_<chunk>``: epoch seconds it lasts until,
    # on the batch item), taken only while no hand-over has begun. A hand-over first writes its
    # ``bedrock`` state (``handing``), which stops new leases, and reads the leases in the same
    # write: the chunks still leased are left to their workers, and only the other lines become the
    # job's records. A worker that dies leaves a lease that simply runs out.

    #: a hand-over allows new leases again once its job is read back, or Bedrock refused it
    LEASE_ALLOWED = "attribute_not_exists(bedrock) OR bedrock_state IN (:done, :refused)"

    @translates_storage_errors("batches")
    def take_lease(self, tenant_id: str, batch_id: str, chunk: int, until: float) -> bool:
        """Lease a chunk until ``until`` unless a hand-over has begun: whether the lease is held."""
        return written_if_allowed(self._db().update_item, TableName=self._table,
                                  Key={"pk": {"S": f"batch#{tenant_id}"}, "sk": {"S": batch_id}},
                                  UpdateExpression="SET #l = :u", ConditionExpression=self.LEASE_ALLOWED,
                                  ExpressionAttributeNames={"#l": f"lease_{chunk}"},
                                  ExpressionAttributeValues={":u": number(until), ":done": {"S": "done"},
                                                             ":refused": {"S": "refused"}})

    @translates_storage_errors("batches")
    def renew_lease(self, tenant_id: str, batch_id: str, chunk: int, now: float, until: float) -> bool:
        """Extend a lease that has not run out (a hand-over may have begun meanwhile: it read it live)."""
        return written_if_allowed(self._db().update_item, TableName=self._table,
                                  Key={"pk": {"S": f"batch#{tenant_id}"}, "sk": {"S": batch_id}},
                                  UpdateExpression="SET #l = :u", ConditionExpression="#l > :now",
                                  ExpressionAttributeNames={"#l": f"lease_{chunk}"},
                                  ExpressionAttributeValues={":u": number(until), ":now": number(now)})

    @translates_storage_errors("batches")
    def end_lease(self, tenant_id: str, batch_id: str, chunk: int) -> None:
        self._db().update_item(TableName=self._table, Key={"pk": {"S": f"batch#{tenant_id}"}, "sk": {"S": batch_id}},
                               UpdateExpression="REMOVE #l", ExpressionAttributeNames={"#l": f"lease_{chunk}"})

    @translates_storage_errors("batches")
    def fence(self, tenant_id: str, batch_id: str, state: dict, *, replacing: dict | None = None) -> dict | None:
        """Begin a hand-over: record ``state`` if no hand-over was recorded (or over ``replacing``, a
        stale one), and return the chunk leases as they were at that instant (chunk -> until), or
        ``None`` when another hand-over holds the batch."""
        if replacing is None:
            condition, values = "attribute_not_exists(bedrock)", {}
        else:
            condition, values = "bedrock = :old", {":old": {"S": json.dumps(replacing)}}
        try:
            answer = self._db().update_item(
                TableName=self._table, Key={"pk": {"S": f"batch#{tenant_id}"}, "sk": {"S": batch_id}},
                UpdateExpression="SET bedrock = :b, bedrock_state = :s", ConditionExpression=condition,
                ExpressionAttributeValues={":b": {"S": json.dumps(state)}, ":s": {"S": state["state"]}, **values},
                ReturnValues="ALL_NEW")
        except ClientError as exc:
            if conditional_failed(exc):
                return None
            raise
        return {int(name.removeprefix("lease_")): float(value["N"])
                for name, value in answer["Attributes"].items() if name.startswith("lease_")}

    @translates_storage_errors("batches")
    def unfence(self, tenant_id: str, batch_id: str, state: dict) -> bool:
        """End a hand-over that submitted no job (``state`` still its record): leases are allowed again."""
        return written_if_allowed(self._db().update_item, TableName=self._table,
                                  Key={"pk": {"S": f"batch#{tenant_id}"}, "sk": {"S": batch_id}},
                                  UpdateExpression="REMOVE bedrock, bedrock_state", ConditionExpression="bedrock = :b",
                                  ExpressionAttributeValues={":b": {"S": json.dumps(state)}})

    @translates_storage_errors("batches")
    def mark_once(self, marker: str) -> bool:
        """True for the first caller only (a conditional put): what it guards is done once."""
        return written_if_allowed(self._db().put_item, TableName=self._table,
                                  ConditionExpression="attribute_not_exists(pk)", Item={
            "pk": {"S": marker}, "sk": {"S": "-"}, "expires_at": number(int(time.time()) + self._keep_s)})

    @translates_storage_errors("batches")
    def bedrock_batches(self) -> list[tuple[str, str]]:
        """``(tenant, batch id)`` of every batch whose Bedrock job has not been read back yet."""
        request = {"TableName": self._table, "KeyConditionExpression": "pk = :pk",
                   "ExpressionAttributeValues": {":pk": {"S": self.BEDROCK_INDEX}}}
        found = []
        while True:
            answer = self._db().query(**request)
            found += [tuple(item["sk"]["S"].rsplit("#", 1)) for item in answer["Items"]]
            if "LastEvaluatedKey" not in answer:
                return found
            request["ExclusiveStartKey"] = answer["LastEvaluatedKey"]

    # -- lines -----------------------------------------------------------------------------

    @translates_storage_errors("batch lines")
    def lines(self, batch_id: str, first: int = 0, last: int = 9_999_999) -> dict[int, dict]:
        """The answered lines between ``first`` and ``last`` (0-based, inclusive): index -> record."""
        request = {"TableName": self._table, "ConsistentRead": True,
                   "KeyConditionExpression": "pk = :pk AND sk BETWEEN :a AND :b",
                   "ExpressionAttributeValues": {":pk": {"S": f"batchline#{batch_id}"},
                                                 ":a": {"S": f"{first:07d}"}, ":b": {"S": f"{last:07d}"}}}
        found: dict[int, dict] = {}
        while True:
            answer = self._db().query(**request)
            for item in answer["Items"]:
                found[int(item["sk"]["S"])] = {"record": json.loads(item["record"]["S"]), "billed": "billed" in item}
            if "LastEvaluatedKey" not in answer:
                return found
            request["ExclusiveStartKey"] = answer["LastEvaluatedKey"]

    @translates_storage_errors("batch lines")
    def put_line(self, batch_id: str, index: int, record: dict, expires_at: int) -> bool:
        """Keep a line's answer unless one is kept already: whether this call kept it."""
        return written_if_allowed(self._db().put_item, TableName=self._table,
                                  ConditionExpression="attribute_not_exists(pk)",
                                  Item=_line_item(batch_id, index, record, expires_at))

    @translates_storage_errors("batch lines")
    def mark_billed(self, batch_id: str, index: int) -> None:
        self._db().update_item(TableName=self._table, UpdateExpression="SET billed = :t",
                               Key={"pk": {"S": f"batchline#{batch_id}"}, "sk": {"S": f"{index:07d}"}},
                               ExpressionAttributeValues={":t": {"BOOL": True}})

    @translates_storage_errors("batch lines")
    def mark_many_billed(self, batch_id: str, kept: dict[int, dict], expires_at: int) -> None:
        """``mark_billed`` for many lines at once (25 a call): each line's item is written again as
        it was kept (``kept``: index -> record), now marked billed. Only for records read from, or
        kept by, ``put_line``: a line's answer never changes once kept."""
        write_all(self._db(), self._table, [{"PutRequest": {"Item": {**_line_item(batch_id, index, record, expires_at),
                                                                      "billed": {"BOOL": True}}}}
                                            for index, record in kept.items()])

    # -- queue -----------------------------------------------------------------------------

    @translates_storage_errors("batch queue")
    def enqueue(self, messages: list[dict]) -> None:
        sqs = self._client("sqs")
        for start in range(0, len(messages), 10):
            entries = [{"Id": str(index), "MessageBody": json.dumps(message)}
                       for index, message in enumerate(messages[start:start + 10])]
            failed = sqs.send_message_batch(QueueUrl=self.queue_url, Entries=entries).get("Failed")
            if failed:
                raise storage_unavailable("batch queue", "enqueue", f"SQS refused {len(failed)} messages: "
                                                                    f"{failed[0].get('Message')}")


def _line_item(batch_id: str, index: int, record: dict, expires_at: int) -> dict:
    return {"pk": {"S": f"batchline#{batch_id}"}, "sk": {"S": f"{index:07d}"}, "record": {"S": json.dumps(record)},
            "expires_at": number(expires_at)}
