"""The simulator: trace loading, schedule pricing and the comparison of policies."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from functions.core.policy.cost_model import economics_for
from functions.core.policy.schedule import MinuteDemand, price_schedule, schedule_violation, warm_replicas
from tests.support import make_config
from tierup.simulate import traces
from tierup.simulate.replay import compare

needs_data = pytest.mark.skipif(not traces.trace_names(), reason="shared/data is absent")


@pytest.fixture
def config():
    return make_config()


def _demand(requests_per_minute) -> MinuteDemand:
    requests = np.asarray(requests_per_minute, dtype=float)
    return MinuteDemand(requests=requests, prompt_tokens=requests * 1000, completion_tokens=requests * 200,
                        start_s=1_700_000_040.0)


def test_warm_replicas_lag_raises_by_the_warm_up_and_follow_cuts_at_once():
    assert warm_replicas(np.array([0, 2, 2, 2, 2, 1, 3, 3, 3]), 2).tolist() == [0, 0, 0, 2, 2, 1, 1, 1, 3]


def test_schedule_rules():
    assert schedule_violation(np.array([0, 1, 1, 1, 0]), warmup=2, hold=4) == (
        "bucket 4: lowered within the hold of the raise at 1")
    assert schedule_violation(np.array([0, 1, 2, 2, 2]), warmup=2, hold=0).startswith("bucket 2: changed")
    assert schedule_violation(np.array([0, 1, 1, 1, 1, 0]), warmup=2, hold=4) is None


def test_reactive_serves_cold_and_tierup_does_not(config):
    comparison = compare("step", "chat", config.routes["chat"], config, _demand([0] * 10 + [300] * 80 + [0] * 30))
    outcomes = comparison.outcomes
    assert outcomes["tierup"].cold_requests == 0
    assert outcomes["reactive"].cold_requests > 0
    assert outcomes["tierup"].promotions == 1
    # the optimum is at most what any warm-then-switch schedule costs
    for policy in ("always-serverless", "always-reserved", "tierup"):
        assert outcomes["hindsight"].total_usd <= outcomes[policy].total_usd + 1e-9
    assert outcomes["tierup"].total_usd < outcomes["always-serverless"].total_usd


def test_always_reserved_is_sized_for_the_peak_and_prewarmed(config):
    econ = economics_for("chat", config.routes["chat"], config)
    demand = _demand([60] * 30 + [600] * 5 + [60] * 30)  # peak 10 req/s: load 1.3 -> 2 replicas
    comparison = compare("peak", "chat", config.routes["chat"], config, demand)
    reserved = comparison.outcomes["always-reserved"]
    assert set(reserved.targets.tolist()) == {2} and reserved.warm[0] == 2
    assert reserved.spilled_requests == 0
    assert reserved.total_usd == pytest.approx(2 * econ.gpu_usd_per_s * 60 * len(demand))


def test_price_schedule_counts_every_request_once(config):
    econ = economics_for("chat", config.routes["chat"], config)
    demand = _demand([100, 500, 900, 900, 50])
    outcome = price_schedule(econ, demand, np.array([0, 1, 1, 1, 1]))
    assert outcome.reserved_requests + outcome.spilled_requests + outcome.serverless_requests == pytest.approx(
        demand.requests.sum())


@needs_data
def test_azure_trace_keeps_every_request():
    demand = traces.load_trace("azure-conv")
    path = traces.data_root() / "azure-llm-2023" / traces.AZURE_FILES["azure-conv"]
    with path.open() as handle:
        rows = list(csv.DictReader(handle))
    assert demand.requests.sum() == len(rows)
    assert demand.prompt_tokens.sum() == sum(int(row["ContextTokens"]) for row in rows)
    assert 55 <= len(demand) <= 60


@needs_data
def test_servegen_arrivals_follow_the_window_rates_and_the_seed():
    chunk = "143"
    with (traces.servegen_dir() / f"chunk-{chunk}-trace.csv").open() as handle:
        expected = sum(float(row[1]) * traces.WINDOW_S for row in csv.reader(handle) if row)
    first, again, other = (traces.load_servegen(chunk, seed) for seed in (0, 0, 1))
    assert len(first) == 14 * 24 * 60
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


def test_unknown_trace_is_named():
    with pytest.raises(traces.TraceNotFound, match="unknown trace"):
        traces.load_trace("nope")
