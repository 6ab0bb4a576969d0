"""GPU time as spend on moto server: the policy Lambda's handler bills reserved replicas into the
spend counters the caps read, the usage aggregates and the CostUSD metric, once per interval,
however often it runs."""

from __future__ import annotations

import json
import time

import pytest

from functions.adapters.dynamodb.counters import DynamoCounterStore
from functions.adapters.dynamodb.gpu_spend import DynamoGpuSpendLedger
from functions.adapters.dynamodb.route_table import DynamoRouteTable
from functions.adapters.dynamodb.usage_aggregates import DynamoUsageAggregates
from functions.core.gpu_spend import charge_for, counter_amounts
from functions.core.route_table import RouteEntry
from functions.core.spend_caps import period_bounds
from functions.core.tables import STATE, USAGE
from functions.policy_handler import handler
from tests.fakes.gpu_control import FakeGpuControl
from tests.fakes.promotion_store import InMemoryUsageAggregates


def test_a_charge_is_written_once_with_its_counters_and_usage_rows(make_runtime):
    runtime = make_runtime()
    table = runtime.table(USAGE)
    ledger = DynamoGpuSpendLedger(runtime.dynamodb, table)
    gpu = runtime.config.pricing.gpus["L40S"]
    minute = int(time.time() // 60) - 5
    charge = charge_for("chat", "L40S", gpu, 2, minute, minute + 3, {})
    amounts = counter_amounts(runtime.config, charge)
    assert ledger.billed_until("chat") is None
    assert ledger.record(charge, amounts)
    assert not ledger.record(charge, amounts)  # the same interval again: refused, nothing added
    assert ledger.billed_until("chat") == minute + 3

    month = period_bounds("monthly", minute * 60)[0]
    spent = DynamoCounterStore(runtime.dynamodb, table).read([f"spend#route:chat#{month}"])
    assert spent[f"spend#route:chat#{month}"] == pytest.approx(2 * 180 * gpu.usd_per_second)
    rows = DynamoUsageAggregates(runtime.dynamodb, table).minutes("route:chat", minute, minute + 2)
    assert [row.cost_usd for row in rows] == [pytest.approx(120 * gpu.usd_per_second)] * 3


def test_the_policy_handler_bills_reserved_replicas_once_per_minute(make_runtime, capsys):
    runtime = make_runtime(environ={"TIERUP_EMF": "stdout"})
    DynamoRouteTable(runtime.dynamodb, runtime.table(STATE)).write_route(
        RouteEntry("chat", tier="reserved", replicas=2, target_replicas=2, max_in_flight=128))
    gpu = FakeGpuControl(time.time)
    gpu.set_min_replicas("chat", 2)
    if time.time() % 60 > 50:  # both runs within one minute
        time.sleep(60 - time.time() % 60 + 0.1)
    for _ in range(2):  # a retried invocation runs the same minute again
        handler({}, None, runtime=runtime, gpu=gpu, usage=InMemoryUsageAggregates(), now_s=time.time())

    price = runtime.config.pricing.gpus["L40S"].usd_per_second
    month = period_bounds("monthly", time.time())[0]
    counters = DynamoCounterStore(runtime.dynamodb, runtime.table(USAGE))
    keys = [f"spend#route:chat#{month}", f"spend#global#{month}"]
    assert counters.read(keys) == {key: pytest.approx(2 * 60 * price) for key in keys}
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    per_gpu = [line for line in lines if line.get("Route") == "chat" and line.get("Gpu") == "L40S"]
    assert [line["CostUSD"] for line in per_gpu] == [[pytest.approx(2 * 60 * price)]]
    assert [line["GpuSeconds"] for line in per_gpu] == [[120.0]]
    totals = [line["CostUSD"] for line in lines if "CostUSD" in line and "Route" not in line]
    assert totals == [[pytest.approx(2 * 60 * price)]]  # the total the spend alarms watch
