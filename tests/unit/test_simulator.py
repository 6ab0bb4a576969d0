"""The simulator: trace loading, schedule pricing and the comparison of policies."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from functions.core.policy.cost_model import economics_for
from functions.core.policy.schedule import schedule_violation, warm_replicas
from tests.support import make_config
from tierup.simulate import traces
from tierup.simulate.buckets import BucketBuilder
from tierup.simulate.engine import Rules
from tierup.simulate.replay import compare

needs_data = pytest.mark.skipif(not traces.trace_names(), reason="shared/data is absent")


@pytest.fixture
def config():
    return make_config()


START = 1_700_000_040.0


def test_warm_replicas_lag_raises_by_the_warm_up_and_follow_cuts_at_once():
    assert warm_replicas(np.array([0, 2, 2, 2, 2, 1, 3, 3, 3]), 2).tolist() == [0, 0, 0, 2, 2, 1, 1, 1, 3]


def test_schedule_rules():
    assert schedule_violation(np.array([0, 1, 1, 1, 0]), warmup=2, hold=4) == (
        "bucket 4: lowered within the hold of the raise at 1")
    assert schedule_violation(np.array([0, 1, 2, 2, 2]), warmup=2, hold=0).startswith("bucket 2: changed")
    assert schedule_violation(np.array([0, 1, 1, 1, 1, 0]), warmup=2, hold=4) is None


def _step_buckets(config, rps_by_minute):
    """Requests spread evenly over each minute (4,000 prompt / 50 completion tokens each: prompt-heavy,
    the mix a reserved L40S beats Bedrock on)."""
    econ = economics_for("chat", config.routes["chat"], config)
    builder = BucketBuilder(econ.capacity, START, 60.0 * len(rps_by_minute))
    for minute, rps in enumerate(rps_by_minute):
        count = int(rps * 60)
        if count:
            builder.add(START + minute * 60 + np.arange(count) * 60.0 / count, 4000.0, 50.0)
    return builder.build()


def test_every_policy_starts_cold_and_only_ready_replicas_serve(config):
    buckets = _step_buckets(config, [0] * 10 + [2] * 60 + [0] * 20)
    comparison = compare("step", "chat", config.routes["chat"], config, buckets)
    outcomes = comparison.outcomes
    for policy, outcome in outcomes.items():
        assert outcome.cold_requests == 0, policy
        placed = outcome.reserved_requests + outcome.spilled_requests + outcome.serverless_requests
        assert placed == pytest.approx(outcome.requests), policy
    assert outcomes["tierup"].promotions >= 1
    # always-reserved pays from the first second and serves nothing before its warm-up
    reserved = outcomes["always-reserved"]
    assert reserved.serverless_requests == 0  # the first traffic comes after its warm-up
    assert reserved.gpu_usd >= 90 * 60 * economics_for("chat", config.routes["chat"], config).gpu_usd_per_s


def test_the_old_rules_let_the_reactive_autoscaler_serve_while_warming(config):
    buckets = _step_buckets(config, [0] * 10 + [2] * 30 + [0] * 20)
    old = compare("step", "chat", config.routes["chat"], config, buckets, Rules.old())
    assert old.outcomes["reactive"].cold_requests > 0
    new = compare("step", "chat", config.routes["chat"], config, buckets)
    assert new.outcomes["reactive"].cold_requests == 0


def test_the_policy_runs_every_interval_with_past_minutes_and_live_signals(monkeypatch):
    config = make_config({"policy": {"interval-s": 10}})
    buckets = _step_buckets(config, [0, 1, 1, 1])
    calls = []

    def spy(route, route_config, history, state, now_s, cfg, live=None, backlog=None):
        assert backlog is None  # no batch stream: no queued work
        calls.append((now_s, [row.minute for row in history], live))
        return real_decide(route, route_config, history, state, now_s, cfg, live=live)

    from tierup.simulate import replay

    real_decide = replay.decide
    monkeypatch.setattr(replay, "decide", spy)
    replay.run_policy("chat", config.routes["chat"], config, buckets)
    assert [now for now, _, _ in calls] == [START + 10 * step for step in range(24)]
    first_minute = int(START // 60)
    for now_s, minutes, live in calls:
        assert all(minute < now_s // 60 for minute in minutes)  # only minutes already over
        assert live.at_s == now_s
    at_two_minutes = calls[12]
    assert at_two_minutes[1] == [first_minute + 1]
    assert at_two_minutes[2].recent_requests == 10 and at_two_minutes[2].in_flight > 0


@needs_data
def test_azure_trace_keeps_every_request(config):
    econ = economics_for("chat", config.routes["chat"], config)
    buckets = traces.load_trace("azure-conv", econ.capacity)
    path = traces.data_root() / "azure-llm-2023" / traces.AZURE_FILES["azure-conv"]
    with path.open() as handle:
        rows = list(csv.DictReader(handle))
    assert buckets.requests.sum() == len(rows)
    assert buckets.prompt_tokens.sum() == sum(int(row["ContextTokens"]) for row in rows)
    assert 55 * 6 <= len(buckets) <= 60 * 6


@needs_data
def test_servegen_arrivals_follow_the_window_rates_and_the_seed(config):
    econ = economics_for("chat", config.routes["chat"], config)
    chunk = "143"
    with (traces.servegen_dir() / f"chunk-{chunk}-trace.csv").open() as handle:
        rows = [row for row in csv.reader(handle) if row][:144]
    expected = sum(float(row[1]) * traces.WINDOW_S for row in rows)
    first, again, other = (traces.load_servegen(chunk, econ.capacity, seed, days=1) for seed in (0, 0, 1))
    assert len(first) == 24 * 60 * 6
    assert first.requests.sum() == pytest.approx(expected, rel=0.02)
    assert np.array_equal(first.requests, again.requests)
    assert not np.array_equal(first.requests, other.requests)


@needs_data
def test_tierup_simulate_prints_a_table_and_writes_a_plot(tmp_path):
    from typer.testing import CliRunner

    from tests.support import EXAMPLE_CONFIG
    from tierup.cli import app

    plot = tmp_path / "azure.png"
    result = CliRunner().invoke(app, ["simulate", "--trace", "azure-code", "--config", str(EXAMPLE_CONFIG),
                                      "--plot", str(plot)])
    assert result.exit_code == 0, result.output
    for policy in ("always-serverless", "always-reserved", "reactive", "tierup", "hindsight"):
        assert policy in result.output
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_unknown_trace_is_named(config):
    econ = economics_for("chat", config.routes["chat"], config)
    with pytest.raises(traces.TraceNotFound, match="unknown trace"):
        traces.load_trace("nope", econ.capacity)


def test_usage_rows_carry_the_gateways_10_second_buckets(config):
    """The policy reads a minute's 10-second buckets in production (the gateways write them): the
    replayed rows carry them too, and they add up to the minute."""
    from tierup.simulate.buckets import from_requests

    econ = economics_for("chat", config.routes["chat"], config)
    arrivals = np.array([START + 1, START + 2, START + 25, START + 61, START + 62, START + 63])
    buckets = from_requests(econ.capacity, arrivals, np.full(6, 100), np.full(6, 10))
    rows = buckets.usage_rows("chat")
    assert [row.by_10s for row in rows] == [{0: [2, 200, 20], 2: [1, 100, 10]}, {0: [3, 300, 30]}]
    assert all(sum(counts[0] for counts in row.by_10s.values()) == row.requests for row in rows)
