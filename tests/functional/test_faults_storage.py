"""The storage stand-in killed (SIGKILL) and frozen (SIGSTOP) mid-load, with the gateway under
uvicorn and the official openai SDK as the client.

While the store is gone every request ends fast, either served (what the instance already holds
allows it) or refused with a 503 ``storage_unavailable`` and Retry-After; none hangs, none is a
500; ``/health`` names the store; the log has no line per request. When the store comes back,
the usage aggregates, the tokens-per-day quota's settled tokens and every spend cap's counter
equal what was served (a frozen store applies the writes that timed out once it thaws, so each
of them is also sent again): nothing counted twice, nothing served left out.
"""

from __future__ import annotations

import logging
import os
import signal
import time
from dataclasses import dataclass

import httpx
import openai
import pytest

from functions.adapters.dynamodb.counters import DynamoCounterStore
from functions.adapters.dynamodb.quota_holds import DynamoQuotaHoldStore
from functions.adapters.dynamodb.usage_aggregates import DynamoUsageAggregates
from functions.core.chat import Usage
from functions.core.pricing import token_cost_usd
from functions.core.quota.counters import MONTHLY_BUDGET_USD, TOKENS_PER_DAY, TOKENS_PER_MINUTE, counters_for
from functions.core.spend_caps import caps_for_request
from functions.core.tables import USAGE
from functions.gateway.composition import Runtime, build_gateway
from tierup.local_stack import (LOCAL_CREDENTIALS, GatewayServer, create_key, prepare_tables, start_moto_process,
                                stop_moto_process)

from ..support import BackgroundLoad, make_config, openai_client

#: a request must end within this, whatever the store does (the client's own timeout is 5 s)
DEADLINE_S = 5.0
#: kill-switch flags re-read often, so that a stale copy stops being trusted within a second; the
#: spend counters are checked against the model's dollars here (the gateway's own cost, which the
#: caps count by default, is checked in test_gateway_cost.py)
OVERRIDES = {"budgets": {"flag-refresh-s": 0.5, "include-gateway-cost": False}}


@dataclass
class Outcome:
    started: float
    seconds: float
    status: int
    code: str | None = None
    retry_after: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0


class Load(BackgroundLoad):
    """``threads`` clients sending chat requests back to back until stopped."""

    join_timeout_s = 2 * DEADLINE_S

    def __init__(self, url: str, key: str, threads: int = 4) -> None:
        super().__init__()
        self.outcomes: list[Outcome] = []
        self._client = openai_client(url, key, timeout=DEADLINE_S)
        for n in range(threads):
            self.add_sender(self._run, n)

    def _run(self, thread: int) -> None:
        n = 0
        while not self._stop.is_set():
            n += 1
            started = time.monotonic()
            try:
                completion = self._client.chat.completions.create(
                    model="chat", messages=[{"role": "user", "content": f"question {thread}-{n}"}])
                outcome = Outcome(started, time.monotonic() - started, 200,
                                  prompt_tokens=completion.usage.prompt_tokens,
                                  completion_tokens=completion.usage.completion_tokens)
            except openai.APIStatusError as exc:
                body = exc.body if isinstance(exc.body, dict) else {}
                code = body.get("code") or (body.get("error") or {}).get("code")
                outcome = Outcome(started, time.monotonic() - started, exc.status_code, code,
                                  exc.response.headers.get("retry-after"))
            except openai.APIError as exc:  # a timeout or a dropped connection: never acceptable
                outcome = Outcome(started, time.monotonic() - started, 0, type(exc).__name__)
            self.outcomes.append(outcome)


class LogCount(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def log_count():
    handler = LogCount()
    logging.getLogger().addHandler(handler)
    yield handler
    logging.getLogger().removeHandler(handler)


@pytest.fixture
def stack():
    """A moto server process of this test's own, a runtime on it and a key (``acme`` on ``pro``)."""
    saved = {name: os.environ.get(name) for name in LOCAL_CREDENTIALS}
    os.environ.update(LOCAL_CREDENTIALS)
    endpoint, process = start_moto_process()
    runtime = Runtime(config=make_config(OVERRIDES),
                      environ={**os.environ, "TIERUP_AWS_ENDPOINT": endpoint, "TIERUP_PROVIDER": "simulated"})
    prepare_tables(runtime)
    key = create_key(runtime, "acme", "pro")
    state = type("Stack", (), {"endpoint": endpoint, "process": process, "runtime": runtime, "key": key})
    yield state
    stop_moto_process(state.process)
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


def _health(url: str) -> tuple[int, dict, float]:
    started = time.monotonic()
    response = httpx.get(url + "/health", timeout=DEADLINE_S)
    return response.status_code, response.json(), time.monotonic() - started


def _check_outcomes(outcomes: list[Outcome]) -> list[Outcome]:
    """Every request ended within its deadline, served or refused as a storage outage."""
    assert outcomes
    assert max(o.seconds for o in outcomes) < DEADLINE_S
    unexpected = [o for o in outcomes if o.status != 200 and o.code != "storage_unavailable"]
    assert unexpected == []
    refused = [o for o in outcomes if o.status != 200]
    assert all(o.status == 503 and o.retry_after and int(o.retry_after) >= 1 for o in refused)
    return refused


def _check_log(log_count: LogCount, requests: int) -> None:
    """A few lines per store per interval, no traceback per request."""
    tracebacks = [r for r in log_count.records if r.exc_info]
    assert len(tracebacks) <= 5, [r.getMessage() for r in tracebacks]
    assert len(log_count.records) < max(30, requests // 5), [r.getMessage() for r in log_count.records[:40]]


def _wait_for_health(url: str, status: int, timeout_s: float = 15.0) -> dict:
    deadline = time.monotonic() + timeout_s
    while True:
        code, body, seconds = _health(url)
        assert seconds < DEADLINE_S
        if code == status or time.monotonic() > deadline:
            assert code == status, body
            return body
        time.sleep(0.3)


def _check_quota_and_spend(runtime, served: list[Outcome], since: float) -> None:
    """What the tenant's token and dollar quotas settled and each spend cap's counter (leases
    handed back at shutdown) equal what was served, to the token and to far less than a cent.
    (Requests per minute also count requests refused after that quota admitted them.)"""
    config, now = runtime.config, time.time()
    tokens = sum(o.prompt_tokens + o.completion_tokens for o in served)
    model = config.routes["chat"].serverless
    dollars = sum(token_cost_usd(config.pricing, "serverless", model, Usage(o.prompt_tokens, o.completion_tokens))
                  for o in served)
    assert tokens > 0 and dollars > 0
    # every window the test ran in (it lasts well under a minute, so two at most)
    quotas = {c.key: c.name for t in (since, now) for c in counters_for(config.plans["pro"], "acme", t)}
    held = DynamoQuotaHoldStore(runtime.dynamodb, runtime.table(USAGE)).read_counters(sorted(quotas))
    settled = {name: sum(held[key].settled for key, named in quotas.items() if named == name and key in held)
               for name in (TOKENS_PER_MINUTE, TOKENS_PER_DAY, MONTHLY_BUDGET_USD)}
    assert settled == {TOKENS_PER_MINUTE: tokens, TOKENS_PER_DAY: tokens,
                       MONTHLY_BUDGET_USD: pytest.approx(dollars, abs=1e-9)}
    caps = {cap.counter_key: cap.name for t in (since, now) for cap in caps_for_request(config, "chat", "acme", t)}
    totals = DynamoCounterStore(runtime.dynamodb, runtime.table(USAGE)).read(sorted(caps))
    by_cap: dict[str, float] = {}
    for key, name in caps.items():  # a period may have turned during the test: its counters add up
        by_cap[name] = by_cap.get(name, 0.0) + totals[key]
    assert len(by_cap) >= 3
    assert by_cap == {name: pytest.approx(dollars, abs=1e-9) for name in by_cap}


def test_store_killed_mid_load_gives_fast_503s_and_health_names_it(stack, log_count):
    server = GatewayServer(build_gateway(stack.runtime)).start()
    try:
        assert _health(server.url)[0] == 200
        with Load(server.url, stack.key) as load:
            time.sleep(1.0)
            os.kill(stack.process.pid, signal.SIGKILL)
            stack.process.wait()
            killed_at = time.monotonic()
            time.sleep(1.0)
            body = _wait_for_health(server.url, 503)
            assert body["status"] == "degraded" and body["dependencies"]["dynamodb"]["status"] == "unavailable"
            time.sleep(2.0)
        refused = _check_outcomes(load.outcomes)
        assert [o for o in load.outcomes if o.started > killed_at + 2.0 and o.status == 200] == []  # fails closed
        assert len(refused) >= 10
        _check_log(log_count, len(load.outcomes))

        # the store comes back (empty, as a restarted stand-in is): the gateway serves again
        stack.endpoint, stack.process = start_moto_process(int(stack.endpoint.rsplit(":", 1)[1]))
        prepare_tables(stack.runtime)
        _wait_for_health(server.url, 200)
        client = openai_client(server.url, stack.key, timeout=DEADLINE_S)
        deadline = time.monotonic() + 10
        while True:  # the kill switch's next re-read, within a second or two
            try:
                client.chat.completions.create(model="chat", messages=[{"role": "user", "content": "back?"}])
                break
            except openai.APIStatusError as exc:
                assert exc.status_code == 503 and time.monotonic() < deadline
                time.sleep(0.2)
    finally:
        server.stop()


def test_store_frozen_mid_load_ends_every_request_in_time_and_counts_what_was_served(stack, log_count):
    started_at = time.time()
    started_minute = int(started_at // 60)
    server = GatewayServer(build_gateway(stack.runtime)).start()
    try:
        with Load(server.url, stack.key) as load:
            time.sleep(1.5)
            os.kill(stack.process.pid, signal.SIGSTOP)
            frozen_at = time.monotonic()
            time.sleep(1.5)
            status, body, seconds = _health(server.url)
            assert status == 503 and body["dependencies"]["dynamodb"]["status"] == "unavailable"
            assert seconds < 2.0
            time.sleep(1.5)
            os.kill(stack.process.pid, signal.SIGCONT)
            thawed_at = time.monotonic()
            time.sleep(2.5)
        _wait_for_health(server.url, 200)
    finally:
        server.stop()  # the final flush
    refused = _check_outcomes(load.outcomes)
    assert any(frozen_at <= o.started < thawed_at for o in refused)
    assert [o for o in load.outcomes if o.started > thawed_at + 2.0 and o.status != 200] == []  # recovered
    _check_log(log_count, len(load.outcomes))

    served = [o for o in load.outcomes if o.status == 200]
    aggregates = DynamoUsageAggregates(stack.runtime.dynamodb, stack.runtime.table(USAGE))
    rows = aggregates.minutes("tenant:acme", started_minute, started_minute + 5)
    assert sum(r.requests for r in rows) == len(served)
    assert sum(r.completion_tokens for r in rows) == sum(o.completion_tokens for o in served)
    assert sum(r.prompt_tokens for r in rows) == sum(o.prompt_tokens for o in served)
    route = aggregates.minutes("route:chat", started_minute, started_minute + 5)
    assert sum(r.requests for r in route) == len(served)
    _check_quota_and_spend(stack.runtime, served, started_at)
