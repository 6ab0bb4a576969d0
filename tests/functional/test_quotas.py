"""Plan quotas as clients see them: many threads over real HTTP against two gateway instances
sharing one moto server, the official openai SDK reading the 429s and the x-ratelimit-* headers,
and the usage ledger reconciled against what the clients were told."""

from __future__ import annotations

import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import openai
import pytest

from functions.adapters.dynamodb.ledger_records import DynamoLedgerRecords
from functions.adapters.dynamodb.quota_holds import DynamoQuotaHoldStore
from functions.adapters.dynamodb.usage_aggregates import DynamoUsageAggregates
from functions.core.ports import HeldCounter
from functions.core.quota.counters import REQUESTS_PER_MINUTE, TOKENS_PER_MINUTE, counters_for
from functions.core.tables import USAGE
from functions.gateway.composition import build_gateway
from tierup.local_stack import GatewayServer, create_key

from ..support import openai_client

NO_CACHE = {"routes": {"chat": {"cache": {"exact": False, "semantic": False}}}}


def _config(plan: dict, **extra) -> dict:
    return {**NO_CACHE, "plans": {"tiny": plan}, **extra}


def _wait_for_fresh_minute(margin_s: float = 20.0) -> None:
    """Limits are per UTC minute: start a test early in a minute so it ends in the same one."""
    into = time.time() % 60
    if into > 60 - margin_s:
        time.sleep(60 - into + 0.05)


def _ask(client, text: str, max_tokens: int = 8):
    return client.chat.completions.with_raw_response.create(
        model="chat", messages=[{"role": "user", "content": text}], max_tokens=max_tokens)


def test_concurrent_clients_on_two_instances_never_exceed_the_limit_and_the_ledger_reconciles(make_runtime):
    limit = 40
    # flushes only at shutdown: the ledger must lose nothing when an instance stops
    runtime = make_runtime(_config({"requests-per-minute": limit, "tokens-per-minute": 1_000_000,
                                    "max-concurrent": 100}, quotas={"flush-interval-s": 30}))
    servers = [GatewayServer(build_gateway(runtime)).start(), GatewayServer(build_gateway(runtime)).start()]
    key = create_key(runtime, "hot", "tiny")
    clients = [openai_client(server.url, key) for server in servers]
    results: list[tuple[int, object]] = []
    lock = threading.Lock()

    def one(i: int) -> None:
        try:
            raw = _ask(clients[i % 2], f"question {i} {uuid.uuid4().hex}")
            outcome = (200, raw.parse().usage)
        except openai.RateLimitError as exc:
            outcome = (429, exc.body)
        with lock:
            results.append(outcome)

    _wait_for_fresh_minute()
    started_minute = int(time.time() // 60)
    try:
        with ThreadPoolExecutor(max_workers=32) as pool:
            list(pool.map(one, range(3 * limit)))
    finally:
        for server in servers:
            server.stop()
    assert int(time.time() // 60) == started_minute, "the test crossed a minute boundary"

    admitted = [usage for status, usage in results if status == 200]
    refused = [body for status, body in results if status == 429]
    assert len(admitted) == limit  # demand (3x) exceeded the limit: exactly the limit is admitted
    assert len(refused) == 2 * limit
    assert {body["code"] for body in refused} == {"requests_per_minute_exceeded"}

    table = runtime.table(USAGE)
    minutes = DynamoUsageAggregates(runtime.dynamodb, table).minutes("tenant:hot", started_minute, started_minute)
    assert len(minutes) == 1
    row = minutes[0]
    assert row.requests == limit and row.refused == 2 * limit
    assert row.prompt_tokens == sum(u.prompt_tokens for u in admitted)
    assert row.completion_tokens == sum(u.completion_tokens for u in admitted)
    route_row = DynamoUsageAggregates(runtime.dynamodb, table).minutes("route:chat", started_minute, started_minute)[0]
    assert route_row.requests == limit and route_row.by_tier == {"serverless": limit}

    plan = runtime.config.plan_for("tiny", "hot")
    counters = {c.name: c for c in counters_for(plan, "hot", started_minute * 60 + 1)}
    held = DynamoQuotaHoldStore(runtime.dynamodb, table).read_counters(
        [counters[REQUESTS_PER_MINUTE].key, counters[TOKENS_PER_MINUTE].key])
    assert held[counters[REQUESTS_PER_MINUTE].key].settled == limit
    assert held[counters[REQUESTS_PER_MINUTE].key].used <= limit
    assert held[counters[TOKENS_PER_MINUTE].key].settled == sum(u.total_tokens for u in admitted)

    day = time.strftime("%Y-%m-%d", time.gmtime(started_minute * 60))
    records = DynamoLedgerRecords(runtime.dynamodb, table).day("hot", day)
    assert len(records) == 3 * limit
    assert sum(r.completion_tokens for r in records) == sum(u.completion_tokens for u in admitted)


def test_token_limit_holds_across_instances_with_settled_usage_within_it(make_runtime, serve):
    limit = 3000
    runtime = make_runtime(_config({"tokens-per-minute": limit}))
    gateways = [serve(build_gateway(runtime)), serve(build_gateway(runtime))]
    key = create_key(runtime, "hot", "tiny")
    clients = [openai_client(url, key) for url in gateways]
    used = []
    lock = threading.Lock()

    def one(i: int) -> None:
        try:
            usage = _ask(clients[i % 2], f"tell me about {i}", max_tokens=64).parse().usage
        except openai.RateLimitError:
            return
        with lock:
            used.append(usage.total_tokens)

    _wait_for_fresh_minute()
    with ThreadPoolExecutor(max_workers=24) as pool:
        list(pool.map(one, range(120)))
    assert used, "nothing was admitted"
    assert sum(used) <= limit
    # each request reserved prompt + 64 and settled far less: refunds let more in than 3000 / 80
    assert len(used) > limit // (64 + 16)


def test_concurrency_limit_holds_across_instances(make_runtime, serve):
    """16 simultaneous requests, each 600 ms long, over two instances: exactly 4 run, the rest
    are refused at once with concurrency_limit_exceeded."""
    runtime = make_runtime(_config({"max-concurrent": 4}, simulated={"ttft-ms": 600, "tokens-per-s": 1_000_000,
                                                                     "answer-tokens": 4}), fast=False)
    gateways = [serve(build_gateway(runtime)), serve(build_gateway(runtime))]
    key = create_key(runtime, "busy", "tiny")
    clients = [openai_client(url, key) for url in gateways]
    barrier = threading.Barrier(16)

    def one(i: int) -> str:
        barrier.wait()
        try:
            _ask(clients[i % 2], f"slow {i}")
            return "ok"
        except openai.RateLimitError as exc:
            return exc.body["code"]

    with ThreadPoolExecutor(max_workers=16) as pool:
        outcomes = list(pool.map(one, range(16)))
    assert outcomes.count("ok") == 4
    assert outcomes.count("concurrency_limit_exceeded") == 12


def test_rate_limit_headers_and_the_429_body(make_runtime, serve):
    runtime = make_runtime(_config({"requests-per-minute": 3, "tokens-per-minute": 50_000}))
    client = openai_client(serve(build_gateway(runtime)), create_key(runtime, "small", "tiny"))
    _wait_for_fresh_minute(10)
    raw = _ask(client, "hi")
    assert raw.headers["x-ratelimit-limit-requests"] == "3"
    assert raw.headers["x-ratelimit-limit-tokens"] == "50000"
    assert int(raw.headers["x-ratelimit-remaining-requests"]) == 2
    assert 0 < int(raw.headers["x-ratelimit-remaining-tokens"]) < 50_000
    assert raw.headers["x-ratelimit-reset-requests"].endswith("s")
    streamed = client.chat.completions.with_raw_response.create(
        model="chat", messages=[{"role": "user", "content": "again"}], max_tokens=8, stream=True)
    assert streamed.headers["x-ratelimit-remaining-requests"] == "1"
    assert "".join(c.choices[0].delta.content or "" for c in streamed.parse() if c.choices)
    _ask(client, "and again")
    with pytest.raises(openai.RateLimitError) as refused:
        _ask(client, "one too many")
    response = refused.value.response
    assert response.status_code == 429
    assert response.headers["x-ratelimit-remaining-requests"] == "0"
    assert 1 <= int(response.headers["retry-after"]) <= 60
    error = response.json()["error"]
    assert error["type"] == "rate_limit_error" and error["code"] == "requests_per_minute_exceeded"
    assert "requests-per-minute" in error["message"]


def test_requests_that_can_never_fit_get_400_not_429(make_runtime, serve):
    runtime = make_runtime(_config({"max-prompt-tokens": 20, "max-output-tokens": 32, "tokens-per-minute": 10_000}))
    client = openai_client(serve(build_gateway(runtime)), create_key(runtime, "small", "tiny"))
    with pytest.raises(openai.BadRequestError) as long_prompt:
        _ask(client, "word " * 100)
    assert long_prompt.value.body["code"] == "prompt_too_large"
    with pytest.raises(openai.BadRequestError) as long_answer:
        _ask(client, "hi", max_tokens=64)
    assert long_answer.value.body["code"] == "max_tokens_too_large"
    # no max_tokens asked: clamped to the plan's 32, so the answer stops there
    completion = client.chat.completions.create(model="chat", messages=[{"role": "user", "content": "hi"}])
    assert completion.usage.completion_tokens <= 32


def test_a_reservation_held_by_a_killed_instance_is_reclaimed_within_the_lease_ttl(make_runtime, moto_endpoint,
                                                                                     serve, tmp_path):
    """An instance reserves the tenant's only concurrency slot and is SIGKILLed mid-request (no
    settle, no shutdown hook): the surviving instance refuses until the dead hold expires, then
    reclaims it and admits, within lease-ttl-s (+ one refusal recheck)."""
    from bench.gateway_process import GatewayProcess, gateway_environment, toml_text
    from functions.core.config import parse_config
    from functions.core.quota.counters import MAX_CONCURRENT
    from functions.gateway.composition import Runtime

    from ..support import FAST_SIMULATED, deep_merge, example_config_data

    ttl = 3.0
    overrides = _config({"max-concurrent": 1}, quotas={"lease-ttl-s": ttl})
    runtime = make_runtime(overrides)
    key = create_key(runtime, "crash", "tiny")
    data = deep_merge(example_config_data(), overrides) | {"project": runtime.config.project}
    config_file = tmp_path / "tierup.toml"
    slow = {"ttft-ms": 60_000, "tokens-per-s": 100, "answer-tokens": 4}  # in flight until killed
    config_file.write_text(toml_text(data | {"simulated": slow}))
    env = gateway_environment(config_file, moto_endpoint) | {"TIERUP_PROVIDER": "simulated"}
    survivor = openai_client(serve(build_gateway(Runtime(config=parse_config(data | {"simulated": FAST_SIMULATED}),
                                                         environ=runtime.environ))), key)
    slot = next(c for c in counters_for(runtime.config.plan_for("tiny", "crash"), "crash", time.time())
                if c.name == MAX_CONCURRENT)
    store = DynamoQuotaHoldStore(runtime.dynamodb, runtime.table(USAGE))

    with GatewayProcess(env, cpu=None) as doomed:
        doomed_client = openai_client(doomed.url, key, timeout=30)
        hanging = threading.Thread(target=lambda: _swallow(lambda: _ask(doomed_client, "x")), daemon=True)
        hanging.start()
        deadline = time.monotonic() + 10
        while not store.read_counters([slot.key]).get(slot.key, HeldCounter()).used:
            assert time.monotonic() < deadline, "the doomed instance never reserved the slot"
            time.sleep(0.05)
        dead_holders = set(store.read_counters([slot.key])[slot.key].holds)
        doomed._proc.kill()  # SIGKILL: no settle, no shutdown flush, no hand-back
        doomed._proc.wait()
        killed_at = time.monotonic()

    with pytest.raises(openai.RateLimitError) as blocked:
        _ask(survivor, "blocked while the dead hold is live")
    assert blocked.value.body["code"] == "concurrency_limit_exceeded"
    while True:
        try:
            _ask(survivor, "after the reclaim")
            break
        except openai.RateLimitError:
            assert time.monotonic() - killed_at < ttl + 2.0, "the dead hold was not reclaimed in time"
            time.sleep(0.1)
    reclaimed_after = time.monotonic() - killed_at
    assert reclaimed_after <= ttl + runtime.config.quotas.refusal_recheck_s + 1.0
    counter = store.read_counters([slot.key])[slot.key]
    assert not dead_holders & set(counter.holds)  # the dead holder's slot is gone, exactly once
    assert counter.used <= 1


def _swallow(call) -> None:
    try:
        call()
    except openai.APIError:
        pass



def test_backpressure_refuses_fast_past_the_queue_and_503s_after_the_max_wait(make_runtime, serve):
    runtime = make_runtime({**NO_CACHE, "gateway": {"max-in-flight": 1, "max-wait-ms": 150},
                            "simulated": {"ttft-ms": 800, "tokens-per-s": 1_000_000, "answer-tokens": 4}},
                           fast=False)
    client = openai_client(serve(build_gateway(runtime)), create_key(runtime, "acme", "pro"))
    barrier = threading.Barrier(4)

    def one(i: int) -> tuple[int, float, str | None]:
        barrier.wait()
        started = time.monotonic()
        try:
            _ask(client, f"slow {i}")
            return 200, time.monotonic() - started, None
        except openai.APIStatusError as exc:
            return exc.status_code, time.monotonic() - started, exc.response.headers.get("retry-after")

    with ThreadPoolExecutor(max_workers=4) as pool:
        outcomes = sorted(pool.map(one, range(4)))
    assert [status for status, _, _ in outcomes] == [200, 429, 429, 503]
    assert all(after for status, _, after in outcomes if status != 200)
    assert all(took < 0.5 for status, took, _ in outcomes if status == 429)  # refused at once
    assert 0.15 <= outcomes[3][1] < 0.8  # waited max-wait-ms, then gave up before the slot freed
