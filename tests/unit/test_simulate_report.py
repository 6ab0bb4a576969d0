"""The simulator's report on the whole bill: each policy's model and GPU cost plus the gateway's own
AWS bill (``GatewayBill``), and ``tierup simulate --prompt-caching``."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
from typer.testing import CliRunner

from functions.core.gateway_cost import (CONTAINER_PROFILE, HOURS_PER_MONTH, LAMBDA_PROFILE, container_month,
                                         lambda_month)
from functions.core.policy.cost_model import economics_for
from tests.support import EXAMPLE_CONFIG, make_config
from tierup.cli import app
from tierup.simulate.buckets import BucketBuilder
from tierup.simulate.replay import POLICIES, compare
from tierup.simulate.report import GatewayBill, policy_rows, totals

START = 1_700_000_040.0
DAY_S = 86_400.0
MONTH_S = HOURS_PER_MONTH * 3600


def test_on_lambda_the_bill_is_per_request_whatever_the_trace_length():
    bill = GatewayBill(hosting="lambda", memory_mb=256, duration_s=DAY_S, mean_stream_s=4.0)
    # Lambda has no fixed cost: a day's 10,000 requests cost what 10,000 requests cost in a month
    expected = lambda_month(10_000, 4.0, LAMBDA_PROFILE, memory_mb=256).total_usd
    assert bill.usd(10_000) == pytest.approx(expected)
    # by hand: 0.25 GB x (4 s + the profile's critical-path CPU stretched by 1769/256; the rest runs
    # while the model generates) at $0.0000133334 a GB-s,
    # $0.20 a million requests, its write and read units, its log bytes with the platform's 300,
    # and its bytes out
    p = LAMBDA_PROFILE
    assert p.critical_cpu_ms is not None and (p.cpu_ms - p.critical_cpu_ms) / 1000 * 1769 / 256 < 4.0
    seconds = 4.0 + p.critical_cpu_ms / 1000 * 1769 / 256
    per_request = (0.25 * seconds * 0.0000133334 + 0.20e-6 + p.write_units * 0.625e-6 + p.read_units * 0.125e-6
                   + (p.log_bytes + 300) / 1024 ** 3 * 0.50 + p.egress_bytes / 1024 ** 3 * 0.09)
    assert bill.usd(10_000) == pytest.approx(10_000 * per_request, rel=0.02)


def test_a_container_costs_its_hours_pro_rata_however_few_the_requests():
    bill = GatewayBill(hosting="container", memory_mb=256, duration_s=3600.0, mean_stream_s=4.0)
    month = container_month(100 * HOURS_PER_MONTH, 4.0, CONTAINER_PROFILE)
    assert bill.usd(100) == pytest.approx(month.total_usd / HOURS_PER_MONTH)
    assert bill.usd(100) > 0.05  # two tasks and a load balancer for an hour, at any traffic


def test_refused_requests_hold_the_gateway_for_no_stream():
    bill = GatewayBill(hosting="lambda", memory_mb=256, duration_s=DAY_S, mean_stream_s=4.0)
    assert bill.usd(1000, refused=1000) == pytest.approx(lambda_month(1000, 0.0, LAMBDA_PROFILE,
                                                                      memory_mb=256).total_usd)
    assert bill.usd(1000, refused=500) < bill.usd(1000)
    assert bill.usd(0) == 0.0


def _buckets(config, per_minute: list[int]):
    econ = economics_for("chat", config.routes["chat"], config)
    builder = BucketBuilder(econ.capacity, START, 60.0 * len(per_minute))
    for minute, count in enumerate(per_minute):
        if count:
            builder.add(START + minute * 60 + np.arange(count) * 60.0 / count, 4000.0, 50.0)
    return builder.build()


def test_every_policy_is_compared_on_the_whole_bill():
    config = make_config()
    buckets = _buckets(config, [0] * 10 + [120] * 60 + [0] * 20)
    bill = GatewayBill.for_trace(buckets, config)
    assert bill.duration_s == 90 * 60 and bill.hosting == "lambda"
    assert bill.mean_stream_s == pytest.approx(buckets.busy_s.sum() / (120 * 60))
    comparison = compare("step", "chat", config.routes["chat"], config, buckets)
    rows = policy_rows(comparison, bill)
    gateway = {row["gateway_usd"] for row in rows}
    assert len(gateway) == 1 and gateway.pop() == pytest.approx(bill.usd(120 * 60), abs=1e-4)
    for row in rows:  # each of the three is rounded to 4 places on its own
        assert row["total_usd"] == pytest.approx(row["cost_usd"] + row["gateway_usd"], abs=1.5e-4)
    summary = totals([comparison, comparison], [rows, rows])
    for row in rows:
        assert summary[row["policy"]]["total_usd"] == pytest.approx(2 * row["total_usd"], abs=1e-3)
    assert "gateway_usd" not in policy_rows(comparison)[0]  # without a bill: the model's cost only


def test_throttled_requests_that_fail_are_billed_without_a_stream():
    config = make_config()
    comparison = compare("step", "chat", config.routes["chat"], config, _buckets(config, [60] * 10))
    outcome = comparison.outcomes["always-serverless"]
    throttled = replace(outcome, throttled_requests=outcome.requests / 2)
    comparison = replace(comparison, outcomes={**comparison.outcomes, "always-serverless": throttled})
    bill = GatewayBill(hosting="lambda", memory_mb=256, duration_s=600.0, mean_stream_s=4.0)
    failed = {r["policy"]: r["gateway_usd"] for r in policy_rows(comparison, bill, refused_fail=True)}
    waited = {r["policy"]: r["gateway_usd"] for r in policy_rows(comparison, bill)}
    assert failed["always-serverless"] < waited["always-serverless"]


def _trace_file(tmp_path):
    path = tmp_path / "steady.jsonl"
    rows = [{"timestamp": START + i * 0.5, "input_tokens": 800, "output_tokens": 200} for i in range(7200)]
    path.write_text("\n".join(json.dumps(row) for row in rows))
    return path


def test_simulate_prints_the_gateway_and_the_whole_bill_and_the_prompt_caching_saving(tmp_path, monkeypatch):
    monkeypatch.setenv("COLUMNS", "260")
    result = CliRunner().invoke(app, ["simulate", "--trace-file", str(_trace_file(tmp_path)), "--prompt-caching",
                                      "--config", str(EXAMPLE_CONFIG)])
    assert result.exit_code == 0, result.output
    assert "gateway" in result.output and "total" in result.output and "Lambda 160 MB" in result.output
    for policy in POLICIES:
        assert policy in result.output
    assert "prompt caching" in result.output and "multi-turn conversations" in result.output
    assert "nova-micro" in result.output and "claude-3-5-haiku" in result.output
    assert "%" in result.output.split("prompt caching", 1)[1]
