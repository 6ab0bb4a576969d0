"""The bill under upstream faults: the gateway under uvicorn on moto, an OpenAI-compatible tier on
the fault-injecting upstream (``tests/openai_upstream.py``), the official openai SDK as client.

For each fault: what the client sees (status and error code, or the stream's error event), that
no cut-short answer is cached, that nothing waits past the provider deadline, and that the ledger
records, the per-minute aggregates and the quota counters (tokens and dollars) add up to exactly
what the upstream counted it served.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import openai
import pytest

from functions.adapters.dynamodb.ledger_records import DynamoLedgerRecords
from functions.adapters.dynamodb.quota_holds import DynamoQuotaHoldStore
from functions.adapters.dynamodb.usage_aggregates import DynamoUsageAggregates
from functions.core.chat import Usage
from functions.core.pricing import token_cost_usd
from functions.core.quota.counters import MONTHLY_BUDGET_USD, TOKENS_PER_DAY, counters_for
from functions.core.tables import USAGE
from functions.gateway.composition import build_gateway
from tierup.local_stack import GatewayServer, create_key

from ..openai_upstream import FAULT_PIECES, ServedCounter, fault_tag, start_fault_upstream
from ..support import openai_client

MODEL = "fake-upstream-model"
#: provider-timeout-s for these tests: the trickling upstream sends a piece every second, so the
#: deadline falls half a second from either piece, so what the upstream counts as served and what
#: the gateway relayed do not race
DEADLINE_S = 1.5
#: what "nothing hangs" means here: the deadline plus generous room for a loaded machine
PATIENCE_S = DEADLINE_S + 2.0
TENANT = "faulty"
HALF = "".join(FAULT_PIECES[:len(FAULT_PIECES) // 2])


@dataclass
class Setup:
    runtime: object
    server: GatewayServer
    client: openai.OpenAI
    served: ServedCounter

    def stop(self) -> None:
        """Stop the gateway: its last flush writes the ledger, aggregates and quota settlements."""
        self.server.stop()


@pytest.fixture
def setup(make_runtime):
    url, served, stop_upstream = start_fault_upstream()
    runtime = make_runtime({
        "tiers": {"serverless": {"provider": "openai", "base-url": url}},
        "routes": {"chat": {"serverless": MODEL, "cache": {"exact": True, "semantic": False}}},
        # dear prices, so that each request costs over $0.0001 and is never written as 1e-05
        "pricing": {"models": {MODEL: {"input-per-mtok": 125.0, "output-per-mtok": 500.0}}},
        "plans": {"metered": {"requests-per-minute": 10_000, "tokens-per-minute": 10_000_000,
                              "tokens-per-day": 100_000_000, "monthly-budget-usd": 1000.0}},
        "gateway": {"provider-timeout-s": DEADLINE_S},
        "quotas": {"flush-interval-s": 60},  # written by the final flush at stop: nothing else
    }, environ={"TIERUP_PROVIDER": ""})
    server = GatewayServer(build_gateway(runtime)).start()
    client = openai_client(server.url, create_key(runtime, TENANT, "metered"), timeout=30)
    setup = Setup(runtime, server, client, served)
    yield setup
    server.stop()
    stop_upstream()


def _messages(fault: str, note: str = "") -> list[dict]:
    return [{"role": "system", "content": "Answer in one sentence."},
            {"role": "user", "content": f"How are tokens counted when things fail? {note} {fault_tag(fault)}"}]


def _ask(setup: Setup, fault: str, note: str = ""):
    """A deterministic (cacheable) non-streamed request: (raw response, None) or (None, error)."""
    try:
        raw = setup.client.chat.completions.with_raw_response.create(
            model="chat", messages=_messages(fault, note), temperature=0, max_tokens=64)
        return raw, None
    except openai.APIStatusError as exc:
        return None, exc


def _ask_stream(setup: Setup, fault: str, note: str = ""):
    """A deterministic streamed request: (cache header, text received, usage, error event or None)."""
    raw = setup.client.chat.completions.with_raw_response.create(
        model="chat", messages=_messages(fault, note), temperature=0, max_tokens=64, stream=True,
        stream_options={"include_usage": True})
    text, usage, error = "", None, None
    try:
        for chunk in raw.parse():
            if chunk.choices:
                text += chunk.choices[0].delta.content or ""
            if chunk.usage is not None:
                usage = chunk.usage
    except openai.APIError as exc:
        error = exc
    return raw.headers.get("x-tierup-cache"), text, usage, error


def _ledger(setup: Setup) -> list:
    day = time.strftime("%Y-%m-%d", time.gmtime())
    return DynamoLedgerRecords(setup.runtime.dynamodb, setup.runtime.table(USAGE)).day(TENANT, day)


def assert_billed_as_served(setup: Setup, started_minute: int) -> list:
    """Stop the gateway, then check every counter against what the upstream served; return the
    ledger records."""
    setup.stop()
    served = setup.served
    prompt, completion = served.prompt_tokens, served.completion_tokens
    runtime = setup.runtime
    served_usd = token_cost_usd(runtime.config.pricing, "serverless", MODEL, Usage(prompt, completion))

    records = _ledger(setup)
    assert (sum(r.prompt_tokens for r in records), sum(r.completion_tokens for r in records)) == (prompt, completion)
    assert sum(r.cost_usd for r in records) == pytest.approx(served_usd, rel=1e-9, abs=1e-12)

    table = runtime.table(USAGE)
    minutes = DynamoUsageAggregates(runtime.dynamodb, table).minutes(
        f"tenant:{TENANT}", started_minute, int(time.time() // 60))
    assert (sum(m.prompt_tokens for m in minutes), sum(m.completion_tokens for m in minutes)) == (prompt, completion)
    assert sum(m.cost_usd for m in minutes) == pytest.approx(served_usd, rel=1e-9, abs=1e-12)

    plan = runtime.config.plan_for("metered", TENANT)
    counters = {c.name: c for c in counters_for(plan, TENANT, time.time())}
    keys = [counters[TOKENS_PER_DAY].key, counters[MONTHLY_BUDGET_USD].key]
    held = DynamoQuotaHoldStore(runtime.dynamodb, table).read_counters(keys)
    assert held[keys[0]].settled == prompt + completion
    assert held[keys[1]].settled == pytest.approx(served_usd, rel=1e-6, abs=1e-9)
    return records


def _minute() -> int:
    return int(time.time() // 60)


# -- answers without usage (item: billed 0 tokens) ------------------------------------------------


def test_streamed_answer_without_usage_is_counted_marked_estimated_and_cached(setup):
    minute = _minute()
    cache, text, usage, error = _ask_stream(setup, "drop-usage")
    assert error is None and cache == "miss"
    assert text == "".join(FAULT_PIECES)
    [served] = setup.served.requests
    assert (usage.prompt_tokens, usage.completion_tokens) == (served.prompt_tokens, served.completion_tokens)
    assert usage.completion_tokens > 0
    # the answer was complete ([DONE] came): it is cached, and a hit costs the upstream nothing
    cache, again, _, error = _ask_stream(setup, "drop-usage")
    assert (cache, again, error) == ("hit-exact", text, None)
    assert len(setup.served.requests) == 1
    records = assert_billed_as_served(setup, minute)
    assert [(r.cache_status, r.estimated) for r in records] == [("miss", True), ("hit-exact", False)]


def test_answer_without_usage_is_counted_and_marked_estimated(setup):
    minute = _minute()
    raw, error = _ask(setup, "drop-usage")
    assert error is None
    usage = raw.parse().usage
    [served] = setup.served.requests
    assert (usage.prompt_tokens, usage.completion_tokens) == (served.prompt_tokens, served.completion_tokens)
    assert usage.completion_tokens > 0
    records = assert_billed_as_served(setup, minute)
    assert [r.estimated for r in records] == [True]


def test_reported_usage_is_billed_as_reported_and_not_marked(setup):
    minute = _minute()
    _, text, usage, error = _ask_stream(setup, "none")
    raw, failed = _ask(setup, "none", note="whole")
    assert error is None and failed is None and text == "".join(FAULT_PIECES)
    assert usage.completion_tokens == setup.served.requests[0].completion_tokens
    records = assert_billed_as_served(setup, minute)
    assert [r.estimated for r in records] == [False, False]


# -- streams cut short --------------------------------------------------------------------------


@pytest.mark.parametrize("fault", ["no-done", "reset"])
def test_stream_that_ends_early_is_an_error_event_never_cached_and_billed_for_what_was_sent(setup, fault):
    minute = _minute()
    for _ in range(2):  # the same deterministic question twice: the cut answer must not be served again
        cache, text, usage, error = _ask_stream(setup, fault)
        assert cache == "miss"
        assert text == HALF and usage is None
        assert error is not None and error.code == "upstream_stream_incomplete"
    assert len(setup.served.requests) == 2
    assert all(not s.finished and s.completion_tokens > 0 for s in setup.served.requests)
    records = assert_billed_as_served(setup, minute)
    assert [(r.outcome, r.status, r.error_code, r.estimated) for r in records] == \
        [("error", 502, "upstream_stream_incomplete", True)] * 2


@pytest.mark.parametrize("fault, status, code", [("no-done", 503, "provider_unavailable"),
                                                 ("reset", 503, "provider_unavailable"),
                                                 ("bad-json", 502, "provider_error")])
def test_answer_cut_short_or_unreadable_is_an_error_billed_for_its_prompt(setup, fault, status, code):
    minute = _minute()
    for _ in range(2):
        raw, error = _ask(setup, fault)
        assert raw is None and (error.status_code, error.code) == (status, code)
    # each request reached the upstream exactly once (never retried), and nothing was cached
    assert len(setup.served.requests) == 2
    assert all(s.prompt_tokens > 0 and s.completion_tokens == 0 for s in setup.served.requests)
    records = assert_billed_as_served(setup, minute)
    assert [(r.status, r.error_code, r.estimated) for r in records] == [(status, code, True)] * 2


def test_stream_with_an_unreadable_event_is_an_error_event_billed_for_what_was_sent(setup):
    minute = _minute()
    _, text, _, error = _ask_stream(setup, "bad-json")
    assert text == HALF and error.code == "provider_error"
    assert_billed_as_served(setup, minute)


# -- the whole call has a deadline ----------------------------------------------------------------


def test_trickling_stream_is_stopped_at_the_deadline_with_an_error_event(setup):
    minute = _minute()
    started = time.monotonic()
    cache, text, usage, error = _ask_stream(setup, "trickle")
    elapsed = time.monotonic() - started
    # every gap between reads (1 s) is under the deadline; the whole answer would take 12 s
    assert elapsed < PATIENCE_S
    assert error is not None and error.code == "provider_timeout"
    assert text and len(text) < len("".join(FAULT_PIECES)) and usage is None
    # not cached: asked again, the upstream is asked again
    assert _ask_stream(setup, "trickle")[3].code == "provider_timeout"
    assert len(setup.served.requests) == 2
    records = assert_billed_as_served(setup, minute)
    assert [(r.status, r.error_code, r.estimated) for r in records] == [(504, "provider_timeout", True)] * 2


def test_trickling_answer_gets_504_with_retry_after_at_the_deadline(setup):
    minute = _minute()
    started = time.monotonic()
    raw, error = _ask(setup, "trickle")
    assert time.monotonic() - started < PATIENCE_S
    assert raw is None and (error.status_code, error.code) == (504, "provider_timeout")
    assert int(error.response.headers["retry-after"]) >= 1
    records = assert_billed_as_served(setup, minute)
    assert [(r.status, r.error_code) for r in records] == [(504, "provider_timeout")]


# -- refusals before generation cost nothing ------------------------------------------------------


@pytest.mark.parametrize("fault, status, code", [("status-429", 429, "provider_throttled"),
                                                 ("status-500", 502, "provider_error")])
@pytest.mark.parametrize("streaming", [False, True])
def test_upstream_refusal_is_passed_on_asked_once_and_bills_nothing(setup, fault, status, code, streaming):
    minute = _minute()
    with pytest.raises(openai.APIStatusError) as caught:
        if streaming:
            _ask_stream(setup, fault)
        else:
            setup.client.chat.completions.create(model="chat", messages=_messages(fault), max_tokens=64)
    assert (caught.value.status_code, caught.value.code) == (status, code)
    if status == 429:
        assert caught.value.response.headers["retry-after"] == "7"
    assert len(setup.served.requests) == 1  # never retried
    records = assert_billed_as_served(setup, minute)
    assert [(r.status, r.prompt_tokens, r.completion_tokens, r.cost_usd) for r in records] == [(status, 0, 0, 0.0)]


def test_a_mix_of_faults_bills_exactly_what_was_served(setup):
    minute = _minute()
    for fault in ("none", "drop-usage", "no-done", "reset", "bad-json"):
        _ask_stream(setup, fault, note="stream")
    for fault in ("none", "drop-usage", "no-done", "reset", "bad-json", "status-429", "status-500"):
        _ask(setup, fault, note="whole")
    records = assert_billed_as_served(setup, minute)
    assert len(records) == len(setup.served.requests)
