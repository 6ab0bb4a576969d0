"""The OpenAI Batch API (``[batch]``): upload limits, how work is cut into queue messages, and the
worker's share of the interactive path."""

from __future__ import annotations

from pydantic import Field

from ._base import Section


class BatchConfig(Section):
    #: serve ``/v1/files`` and ``/v1/batches`` (off: both answer 404)
    enabled: bool = True
    #: largest JSONL file one upload may carry. A Lambda Function URL refuses request bodies over
    #: 6 MB whatever is set here; OpenAI's own limit is 200 MB
    max_file_bytes: int = Field(default=6_000_000, alias="max-file-bytes", gt=0)
    #: most request lines one file may hold (OpenAI's limit)
    max_lines: int = Field(default=50_000, alias="max-lines", gt=0)
    #: lines per queue message: the unit a worker takes, retries and reports progress for
    chunk_lines: int = Field(default=100, alias="chunk-lines", gt=0, le=1000)
    #: lines one worker runs at once on the interactive path: the throttle that keeps batch work a
    #: bounded share of a route's capacity and quota (interactive requests never wait behind it)
    line_concurrency: int = Field(default=4, alias="line-concurrency", gt=0, le=64)
    #: worker functions the queue runs at once on AWS (SQS event source maximum concurrency, at least
    #: 2): with line-concurrency, the most batch lines in flight however long the backlog
    max_workers: int = Field(default=2, alias="max-workers", ge=2, le=1000)
    #: on a route promoted to reserved GPUs, batch lines take reserved slots only while fewer than
    #: this share of them are in flight, and otherwise wait: idle capacity, never users' capacity
    reserved_share: float = Field(default=0.5, alias="reserved-share", gt=0, le=1)
    #: a line that would wait for reserved capacity runs on the route's other tiers instead once its
    #: batch is this close to its completion window's end
    deadline_margin_s: int = Field(default=6 * 3600, alias="deadline-margin-s", ge=0)
    #: Bedrock's "minimum number of records per batch inference job" in this account (100 by default;
    #: see Service Quotas): a batch with fewer lines waiting is not handed to a Bedrock job
    bedrock_min_records: int = Field(default=100, alias="bedrock-min-records", ge=1)
    #: how often ``tierup dev`` follows the Bedrock batch jobs (on AWS a scheduled function, every minute)
    bedrock_poll_s: float = Field(default=60.0, alias="bedrock-poll-s", gt=0)
    #: a message a worker took and did not finish is handed out again after this long
    visibility_timeout_s: int = Field(default=900, alias="visibility-timeout-s", ge=1, le=43_200)
    #: times a message is handed out before it is moved to the dead-letter queue
    max_receives: int = Field(default=5, alias="max-receives", ge=1, le=1000)
    #: a chunk refused for now (kill switch, quota, budget) is offered again after this long
    retry_after_s: int = Field(default=60, alias="retry-after-s", ge=0, le=43_200)
    #: days uploaded files, batches and their output files are kept
    keep_days: int = Field(default=30, alias="keep-days", gt=0)
