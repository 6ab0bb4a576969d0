"""Quota refusals under a burst, on moto: the 429 names the limit that really refused, a refused
request holds nothing on the other limits, and the remaining-quota headers stay within the limit."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import openai

from functions.adapters.dynamodb.quota_holds import DynamoQuotaHoldStore
from functions.core.quota.counters import REQUESTS_PER_MINUTE, counters_for
from functions.core.tables import USAGE
from functions.gateway.composition import build_gateway
from tierup.local_stack import create_key

from ..support import openai_client

NO_CACHE = {"routes": {"chat": {"cache": {"exact": False, "semantic": False}}}}


def _wait_for_fresh_minute(margin_s: float = 20.0) -> None:
    into = time.time() % 60
    if into > 60 - margin_s:
        time.sleep(60 - into + 0.05)


def test_a_burst_is_refused_by_the_concurrency_limit_and_holds_no_per_minute_quota(make_runtime, serve):
    """64 simultaneous requests on a plan of 20 per minute and 2 at once: the ones refused are
    refused by max-concurrent (not by a per-minute limit that only looked full because refused
    requests held it), and the minute's counter ends at exactly the requests admitted."""
    slow = {"ttft-ms": 400, "tokens-per-s": 1_000_000, "answer-tokens": 4}
    runtime = make_runtime({**NO_CACHE, "plans": {"tiny": {"requests-per-minute": 20, "max-concurrent": 2}},
                            "simulated": slow}, fast=False)
    client = openai_client(serve(build_gateway(runtime)), create_key(runtime, "bursty", "tiny"))
    barrier = threading.Barrier(64)

    def one(i: int) -> tuple[int, str | None, str | None]:
        barrier.wait()
        try:
            client.chat.completions.create(model="chat", messages=[{"role": "user", "content": f"burst {i}"}],
                                           max_tokens=4)
            return 200, None, None
        except openai.RateLimitError as exc:
            return 429, exc.body["code"], exc.response.headers.get("retry-after")

    _wait_for_fresh_minute()
    minute = int(time.time() // 60)
    with ThreadPoolExecutor(max_workers=64) as pool:
        outcomes = list(pool.map(one, range(64)))
    assert int(time.time() // 60) == minute, "the test crossed a minute boundary"

    admitted = sum(status == 200 for status, _, _ in outcomes)
    refusals = [(code, after) for status, code, after in outcomes if status == 429]
    assert admitted >= 2 and admitted + len(refusals) == 64
    assert {code for code, _ in refusals} == {"concurrency_limit_exceeded"}
    assert all(after == "1" for _, after in refusals)  # a slot frees within seconds, not at the minute's end

    rpm = next(c for c in counters_for(runtime.config.plan_for("tiny", "bursty"), "bursty", minute * 60 + 1)
               if c.name == REQUESTS_PER_MINUTE)
    counter = DynamoQuotaHoldStore(runtime.dynamodb, runtime.table(USAGE)).read_counters([rpm.key])[rpm.key]
    assert counter.settled == admitted
    assert counter.used - sum(held for held, _ in (counter.holds or {}).values()) == admitted


def test_settling_reads_the_counter_even_when_the_settle_leaves_it_unchanged(make_runtime):
    """A settle of exactly what was held adds 0 to ``used``: UPDATED_NEW leaves ``used`` out, which
    read as 0 and told clients they had more than their whole limit left."""
    runtime = make_runtime()
    store = DynamoQuotaHoldStore(runtime.dynamodb, runtime.table(USAGE))
    expires = int(time.time()) + 600
    assert store.acquire("quota#t#rpm#1", "holderA", 30.0, 600.0, time.time() + 60, expires) == (True, 30.0)
    assert store.settle("quota#t#rpm#1", "holderA", 5.0, 5.0, time.time() + 60, expires) == 30.0
    assert store.settle("quota#t#rpm#1", "holderA", 5.0, 0.0, time.time() + 60, expires) == 25.0
    # a settle after the hold was reclaimed, adding nothing new, still reads the counter
    store.reclaim_expired("quota#t#rpm#1", time.time() + 3600, refund=False)
    assert store.settle("quota#t#rpm#1", "holderA", 5.0, 2.0, time.time() + 60, expires) == 25.0


def test_remaining_request_headers_never_exceed_the_limit(make_runtime, serve):
    """Flushes that add 0 (each request settles exactly what it reserved) used to read ``used``
    as 0: x-ratelimit-remaining-requests then rose past the limit."""
    limit = 600
    runtime = make_runtime({**NO_CACHE, "plans": {"tiny": {"requests-per-minute": limit}},
                            "quotas": {"flush-interval-s": 0.05}})
    client = openai_client(serve(build_gateway(runtime)), create_key(runtime, "steady", "tiny"))
    _wait_for_fresh_minute(10)
    seen = []
    for i in range(40):
        raw = client.chat.completions.with_raw_response.create(
            model="chat", messages=[{"role": "user", "content": f"q {i}"}], max_tokens=4)
        seen.append(int(raw.headers["x-ratelimit-remaining-requests"]))
        time.sleep(0.06)  # let a flush settle what this request reserved
    assert max(seen) <= limit
    assert min(seen) >= limit - 40
