"""The policy Lambda's handler on moto server: state table, decision log and the Modal secret.

The GPU control is the in-memory fake (there is no Modal here); usage comes from an in-memory
fake of the aggregates port, so each run's demand is set exactly.
"""

from __future__ import annotations

import json
import time

import pytest

from functions.adapters.dynamodb.route_table import DynamoPolicyJournal, DynamoRouteTable
from functions.adapters.modal_secret import load_modal_token
from functions.core.errors import ConfigError
from functions.core.route_table import RouteEntry
from functions.core.tables import STATE
from functions.policy_handler import handler, modal_gpu_control
from functions.promotion.cycle import route_scope
from tests.fakes.gpu_control import FakeGpuControl
from tests.fakes.promotion_store import InMemoryUsageAggregates
from tests.support import POLICY_TEST_ECONOMICS, deep_merge

T0 = 1_800_000_000.0


class Clock:
    now = T0

    def __call__(self) -> float:
        return self.now


def _busy(usage: InMemoryUsageAggregates, until_s: float, rps: float = 10) -> None:
    last = int(until_s // 60)
    for minute in range(last - 30, last + 1):
        requests = int(rps * 60)
        usage.set_minute(route_scope("chat"), minute, requests, requests * 500, requests * 100)


def test_route_table_round_trip(make_runtime):
    runtime = make_runtime()
    table = DynamoRouteTable(runtime.dynamodb, runtime.table(STATE))
    entries = [RouteEntry("chat", tier="reserved", replicas=2, target_replicas=3, max_in_flight=128,
                          since_s=T0, warming_since_s=T0 + 1.5, updated_s=T0 + 2),
               RouteEntry.initial("summarize", "serverless", T0)]
    for entry in entries:
        table.write_route(entry)
    assert table.read_routes() == {entry.route: entry for entry in entries}


def test_handler_warms_then_promotes_and_records_each_decision(make_runtime):
    runtime = make_runtime(POLICY_TEST_ECONOMICS)
    clock, usage = Clock(), InMemoryUsageAggregates()
    gpu = FakeGpuControl(clock, warmup_s=runtime.config.pricing.gpus["L40S"].warmup_s)
    table = DynamoRouteTable(runtime.dynamodb, runtime.table(STATE))

    _busy(usage, clock.now)
    first = handler({}, None, runtime=runtime, gpu=gpu, usage=usage, now_s=clock.now)
    assert first["routes"]["chat"]["outcome"] == "warming" and first["routes"]["chat"]["replicas"] >= 1
    assert first["routes"]["summarize"]["outcome"] == "unchanged"
    assert table.read_routes()["chat"].phase == "warming"

    while table.read_routes()["chat"].tier != "reserved":
        clock.now += 60
        assert clock.now - T0 <= 600, "the route never got promoted"
        _busy(usage, clock.now)
        handler({}, None, runtime=runtime, gpu=gpu, usage=usage, now_s=clock.now)
    assert clock.now - T0 >= runtime.config.pricing.gpus["L40S"].warmup_s

    journal = DynamoPolicyJournal(runtime.dynamodb, runtime.table(STATE))
    decisions = journal.recent_decisions("chat", limit=50)
    assert decisions[0]["result"]["outcome"] == "promoted"
    assert decisions[-1]["result"]["outcome"] == "warming" and decisions[-1]["reason"]
    assert journal.load_states()["chat"]["replicas"] == table.read_routes()["chat"].replicas


def test_handler_fails_the_invocation_when_gpu_control_fails(make_runtime):
    class DownGpuControl(FakeGpuControl):
        def set_min_replicas(self, route, replicas):
            raise ConnectionError("modal unreachable")

    runtime = make_runtime(POLICY_TEST_ECONOMICS)
    usage = InMemoryUsageAggregates()
    _busy(usage, T0)
    with pytest.raises(RuntimeError, match="chat"):
        handler({}, None, runtime=runtime, gpu=DownGpuControl(Clock()), usage=usage, now_s=T0)
    journal = DynamoPolicyJournal(runtime.dynamodb, runtime.table(STATE))
    assert journal.recent_decisions("chat")[0]["result"]["outcome"] == "failed"
    assert "chat" not in DynamoRouteTable(runtime.dynamodb, runtime.table(STATE)).read_routes()


def _secret(runtime, value: str) -> str:
    client = runtime.aws.client("secretsmanager")
    return client.create_secret(Name=f"{runtime.config.project}-modal-{len(value)}", SecretString=value)["ARN"]


def test_modal_token_comes_from_secrets_manager(make_runtime):
    runtime = make_runtime()
    arn = _secret(runtime, json.dumps({"MODAL_TOKEN_ID": "ak-1", "MODAL_TOKEN_SECRET": "as-2"}))
    runtime.environ["TIERUP_MODAL_SECRET_ARN"] = arn
    environ: dict = {}
    assert load_modal_token(runtime, environ) is True
    assert environ == {"MODAL_TOKEN_ID": "ak-1", "MODAL_TOKEN_SECRET": "as-2"}


def test_a_malformed_modal_secret_names_the_setting(make_runtime):
    runtime = make_runtime()
    runtime.environ["TIERUP_MODAL_SECRET_ARN"] = _secret(runtime, json.dumps({"MODAL_TOKEN_ID": "ak-1"}))
    with pytest.raises(ConfigError, match="TIERUP_MODAL_SECRET_ARN.*MODAL_TOKEN_SECRET"):
        load_modal_token(runtime, {})


def test_without_a_modal_token_the_policy_names_the_missing_setting(make_runtime):
    runtime = make_runtime()
    runtime.environ.pop("TIERUP_MODAL_SECRET_ARN", None)
    with pytest.raises(ConfigError, match="TIERUP_MODAL_SECRET_ARN"):
        modal_gpu_control(runtime, environ={})


def test_with_the_secret_the_modal_control_is_built(make_runtime):
    runtime = make_runtime()
    runtime.environ["TIERUP_MODAL_SECRET_ARN"] = _secret(
        runtime, json.dumps({"MODAL_TOKEN_ID": "ak-9", "MODAL_TOKEN_SECRET": "as-9"}))
    environ: dict = {}
    gpu = modal_gpu_control(runtime, environ=environ)
    assert environ["MODAL_TOKEN_ID"] == "ak-9"
    assert callable(gpu.set_min_replicas) and callable(gpu.ready_replicas)


def test_an_engaged_drop_reserved_kill_switch_keeps_the_route_off_reserved(make_runtime):
    from functions.adapters.dynamodb.guardrails import DynamoGuardrailStore
    from functions.core.killswitch import KillSwitchFlag

    runtime = make_runtime()
    DynamoGuardrailStore(runtime.dynamodb, runtime.table(STATE)).put_flag(KillSwitchFlag(
        scope="global", action="drop-reserved", reason="monthly cap reached", budget="global", source="test",
        engaged_at=T0 - 10))
    usage = InMemoryUsageAggregates()
    _busy(usage, T0)
    gpu = FakeGpuControl(Clock(), warmup_s=0)
    summary = handler({}, None, runtime=runtime, gpu=gpu, usage=usage, now_s=T0)
    assert summary["routes"]["chat"]["replicas"] == 0
    assert "global kill switch" in summary["routes"]["chat"]["reason"]
    assert gpu.calls == []


def test_gateway_usage_reaches_the_policy_through_the_dynamodb_aggregates(make_runtime):
    """The whole loop on AWS's parts: the gateway's ledger writes per-minute aggregates, and the
    policy handler reads them (no fake in between) and starts warming a route that is busy."""
    from functions.gateway.composition import build_gateway
    from tests.support import openai_client
    from tierup.local_stack import GatewayServer, create_key

    runtime = make_runtime(deep_merge(POLICY_TEST_ECONOMICS, {"pricing": {"gpus": {"L40S": {"usd-per-second": 1e-9}}}}))
    key = create_key(runtime, "acme", "pro")
    server = GatewayServer(build_gateway(runtime)).start()
    try:
        client = openai_client(server.url, key)
        for _ in range(30):
            assert client.chat.completions.with_raw_response.create(
                model="chat", messages=[{"role": "user", "content": "hi"}]).headers["x-tierup-tier"] == "serverless"
    finally:
        server.stop()  # flushes the usage ledger

    gpu = FakeGpuControl(Clock(), warmup_s=0)
    # A minute on, so that the minute of the requests is complete and part of the history.
    summary = handler({}, None, runtime=runtime, gpu=gpu, now_s=time.time() + 60)
    assert summary["routes"]["chat"]["outcome"] == "promoted", summary
    assert gpu.calls == [("chat", 1)]
    assert summary["routes"]["summarize"]["replicas"] == 0
    decision = DynamoPolicyJournal(runtime.dynamodb, runtime.table(STATE)).recent_decisions("chat")[0]
    assert decision["decision"]["forecast_rps"] > 0


def test_expired_decisions_are_not_read_back(make_runtime):
    runtime = make_runtime()
    journal = DynamoPolicyJournal(runtime.dynamodb, runtime.table(STATE), decision_ttl_s=3600)
    now = time.time()
    journal.record_decision("chat", now - 7200, {"reason": "old"})  # its TTL passed an hour ago
    journal.record_decision("chat", now - 60, {"reason": "older"})
    journal.record_decision("chat", now, {"reason": "newest"})
    assert [d["reason"] for d in journal.recent_decisions("chat")] == ["newest", "older"]


# --- one run at a time: the lease in the state table ---------------------------------------------

def test_a_run_that_starts_while_another_runs_skips(make_runtime):
    """Two runs at once (a slow run overlapping the next minute's): one decides, the other skips."""
    import threading

    runtime = make_runtime()
    inside, finish = threading.Event(), threading.Event()

    class SlowUsage(InMemoryUsageAggregates):
        def minutes(self, scope, since_minute, until_minute):
            inside.set()
            assert finish.wait(10), "the second run never finished"
            return super().minutes(scope, since_minute, until_minute)

    results: list[dict] = []
    first = threading.Thread(target=lambda: results.append(handler(
        {}, None, runtime=runtime, gpu=FakeGpuControl(Clock()), usage=SlowUsage(), now_s=T0)))
    first.start()
    try:
        assert inside.wait(10), "the first run never started deciding"
        second = handler({}, None, runtime=runtime, gpu=FakeGpuControl(Clock()),
                         usage=InMemoryUsageAggregates(), now_s=T0 + 1)
    finally:
        finish.set()
        first.join(10)
    assert second == {"skipped": "another policy run holds the lease"}
    assert set(results[0]["routes"]) == {"chat", "summarize"}
    # the first run gave the lease back: the next run decides
    third = handler({}, None, runtime=runtime, gpu=FakeGpuControl(Clock()), usage=InMemoryUsageAggregates(),
                    now_s=T0 + 60)
    assert "routes" in third


def test_a_lease_left_by_a_dead_run_is_taken_over_once_it_expires(make_runtime):
    from functions.policy_handler import policy_lease

    runtime = make_runtime()

    class Context:
        aws_request_id = "crashed-run"

        @staticmethod
        def get_remaining_time_in_millis() -> int:
            return 60_000

    assert policy_lease(runtime).acquire(Context.aws_request_id, T0, T0 + 60)  # then it died
    run = dict(runtime=runtime, gpu=FakeGpuControl(Clock()), usage=InMemoryUsageAggregates())
    assert handler({}, None, now_s=T0 + 30, **run) == {"skipped": "another policy run holds the lease"}
    assert "routes" in handler({}, None, now_s=T0 + 61, **run)
    # the late release of the dead run cannot free the lease a live run holds
    lease = policy_lease(runtime)
    assert lease.acquire("live-run", T0 + 120, T0 + 180)
    lease.release("crashed-run")
    assert not lease.acquire("another-run", T0 + 121, T0 + 181)
