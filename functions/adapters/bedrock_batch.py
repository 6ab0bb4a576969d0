"""Bedrock batch inference: a batch's chat lines as one model invocation job, at the batch price.

    s3://<bucket>/bedrock/<batch id>/input/records.jsonl          what the job reads
    s3://<bucket>/bedrock/<batch id>/output/<job id>/records.jsonl.out   what Bedrock writes back

The job uses the ``Converse`` invocation type, so a record's ``modelInput`` is the body of a
Converse request (``converse_mapping.converse_request`` without ``modelId``) and its
``modelOutput`` a Converse answer (read back with ``completion_from``): one mapping for the
interactive and the batch path. ``recordId`` is the line's index, 11 digits; Bedrock does not keep
the records' order in its output, so answers are matched by it.

Bedrock refuses a job with fewer records than its per-job minimum (the "Minimum number of records
per batch inference job" quota, 100 by default; check the account's Service Quotas): ``submit``
then returns ``None`` and the caller runs those lines on another path. ``clientRequestToken`` is
the batch id, so a job submitted twice (a worker that crashed after submitting) is one job.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from ..core.chat import Completion, ProviderCall
from .converse_mapping import completion_from, converse_request

#: Bedrock's default minimum of records per batch inference job
DEFAULT_MIN_RECORDS = 100
#: a job that has not finished within this is stopped by Bedrock (its range is 24 to 168)
JOB_TIMEOUT_HOURS = 24
#: job statuses after which nothing changes
FINISHED = frozenset({"Completed", "PartiallyCompleted", "Failed", "Stopped", "Expired"})


def record_id(index: int) -> str:
    return f"{index:011d}"


def batch_records(calls: list[tuple[int, ProviderCall]]) -> bytes:
    """The job's input JSONL: one ``{"recordId", "modelInput"}`` per line."""
    rows = []
    for index, call in calls:
        body = converse_request(call)
        body.pop("modelId")  # the job names the model once, for every record
        rows.append(json.dumps({"recordId": record_id(index), "modelInput": body}, separators=(",", ":")))
    return ("\n".join(rows) + "\n").encode()


@dataclass(frozen=True)
class RecordError:
    status_code: int
    message: str


@dataclass(frozen=True)
class JobStatus:
    status: str
    total: int
    processed: int
    succeeded: int
    failed: int

    @property
    def finished(self) -> bool:
        return self.status in FINISHED


class BedrockBatchJobs:
    def __init__(self, bedrock, s3, *, bucket: str, role_arn: str, min_records: int = DEFAULT_MIN_RECORDS) -> None:
        """``bedrock``: a ``bedrock`` (control plane) client; ``role_arn``: the service role Bedrock
        assumes to read the input and write the output."""
        self._bedrock = bedrock
        self._s3 = s3
        self._bucket = bucket
        self._role_arn = role_arn
        self.min_records = min_records

    @staticmethod
    def input_key(batch_id: str) -> str:
        return f"bedrock/{batch_id}/input/records.jsonl"

    @staticmethod
    def output_prefix(batch_id: str) -> str:
        return f"bedrock/{batch_id}/output/"

    def submit(self, batch_id: str, model_id: str, calls: list[tuple[int, ProviderCall]]) -> str | None:
        """Write the records and start the job: its ARN, or ``None`` under Bedrock's minimum."""
        if len(calls) < self.min_records:
            return None
        self._s3.put_object(Bucket=self._bucket, Key=self.input_key(batch_id), Body=batch_records(calls),
                            ContentType="application/jsonl")
        answer = self._bedrock.create_model_invocation_job(
            jobName=f"tierup-{batch_id}".replace("_", "-")[:63], roleArn=self._role_arn,
            clientRequestToken=batch_id, modelId=model_id, modelInvocationType="Converse",
            timeoutDurationInHours=JOB_TIMEOUT_HOURS,
            inputDataConfig={"s3InputDataConfig": {"s3Uri": f"s3://{self._bucket}/{self.input_key(batch_id)}",
                                                   "s3InputFormat": "JSONL"}},
            outputDataConfig={"s3OutputDataConfig": {"s3Uri": f"s3://{self._bucket}/{self.output_prefix(batch_id)}"}})
        return answer["jobArn"]

    #: what ``results`` raises when the job wrote no output (it failed or stopped before any record)
    missing_output = LookupError

    def stop(self, job_arn: str) -> None:
        """Stop a job (a cancelled batch, a deadline at risk); one already finished is left as it is."""
        try:
            self._bedrock.stop_model_invocation_job(jobIdentifier=job_arn)
        except self._bedrock.exceptions.ValidationException:
            pass  # not running any more: nothing to stop

    def status(self, job_arn: str) -> JobStatus:
        job = self._bedrock.get_model_invocation_job(jobIdentifier=job_arn)
        return JobStatus(job["status"], job.get("totalRecordCount", 0), job.get("processedRecordCount", 0),
                         job.get("successRecordCount", 0), job.get("errorRecordCount", 0))

    def results(self, batch_id: str, job_arn: str,
                calls: dict[int, ProviderCall]) -> dict[int, Completion | RecordError]:
        """Each record's answer, by line index; a record Bedrock did not answer is missing."""
        job_id = job_arn.rsplit("/", 1)[-1]
        key = f"{self.output_prefix(batch_id)}{job_id}/records.jsonl.out"
        try:
            data = self._s3.get_object(Bucket=self._bucket, Key=key)["Body"].read()
        except self._s3.exceptions.NoSuchKey as exc:
            raise LookupError(f"no output at {key}") from exc
        found: dict[int, Completion | RecordError] = {}
        for raw in data.splitlines():
            if not raw.strip():
                continue
            row = json.loads(raw)
            index = int(row["recordId"])
            if index not in calls:
                continue
            if "modelOutput" in row:
                found[index] = completion_from(row["modelOutput"], calls[index])
            else:
                error = row.get("error") or {}
                found[index] = RecordError(int(error.get("errorCode") or 500), str(error.get("errorMessage", "")))
        return found
