"""The gateway's own cost model against hand-computed cases (prices: ``AWS_PRICES``)."""

from __future__ import annotations

import pytest

from functions.adapters.dynamodb.consumed_capacity import consumed_units
from functions.core.gateway_cost import (AWS_PRICES, BYTES_PER_GB, GatewayUnits, RequestProfile,
                                         break_even_requests, container_month, gateway_cost_usd, lambda_duration_s,
                                         lambda_gb_seconds, lambda_month, lambda_units, managed_instances_month)
from functions.core.gateway_meter import GatewayMeter, cpu_split, lambda_arch, provider_called, provider_finished

HUNDRED_RPS_MONTH = 100 * 730 * 3600


def test_every_price_names_its_source():
    for name, entry in AWS_PRICES.items():
        assert entry.usd > 0 and entry.unit and "aws.amazon.com" in entry.source, name


def test_a_ten_second_answer_at_1024_mb_costs_what_the_issue_says():
    # 1 GB x 10 s = 10 GB-s at $0.0000133334, + $0.20 per million requests, + 300 bytes of platform log lines
    units = lambda_units(10_000, 1024)
    assert units.gb_seconds == 10.0
    expected = 10 * 0.0000133334 + 0.2e-6 + 300 / BYTES_PER_GB * 0.50
    assert gateway_cost_usd(units) == pytest.approx(expected)
    assert gateway_cost_usd(units) == pytest.approx(0.000134, rel=0.01)
    assert gateway_cost_usd(units, "x86_64") == pytest.approx(10 * 0.0000166667 + 0.2e-6 + 300 / BYTES_PER_GB * 0.5)


def test_duration_is_billed_by_the_millisecond_rounded_up():
    assert lambda_gb_seconds(0.2, 512) == pytest.approx(0.0005)
    assert lambda_gb_seconds(1000.0, 256) == pytest.approx(0.25)
    assert lambda_gb_seconds(1000.4, 256) == pytest.approx(0.25 * 1.001)


def test_storage_logs_and_egress_at_list_prices():
    units = GatewayUnits(read_units=2, write_units=1, log_bytes=BYTES_PER_GB, egress_bytes=BYTES_PER_GB // 2)
    assert gateway_cost_usd(units) == pytest.approx(2 * 0.125e-6 + 0.625e-6 + 0.50 + 0.045)


def test_container_month_at_100_rps_and_10_s_streams():
    profile = RequestProfile(cpu_ms=4, read_units=0, write_units=0, log_bytes=0, request_bytes=1000, egress_bytes=5000)
    month = container_month(HUNDRED_RPS_MONTH, 10.0, profile)
    # 1,000 streams in flight / 256 per task -> 4 tasks of 0.5 vCPU + 1 GB at $0.01975 an hour;
    # ALB: $0.0225 an hour + 4 LCU (100 new connections/s / 25, above 2.16 GB an hour processed) at $0.008;
    # 2 + 4 public IPv4 addresses at $0.005; the 5 KB answers out at $0.09 per GB
    assert month.detail.startswith("4 x")
    assert month.compute_usd == pytest.approx((4 * (0.5 * 0.03238 + 0.00356) + 0.0225 + 4 * 0.008 + 6 * 0.005)
                                              * 730)
    assert month.storage_and_logs_usd == pytest.approx(HUNDRED_RPS_MONTH * 5000 / BYTES_PER_GB * 0.09)
    bigger = container_month(HUNDRED_RPS_MONTH, 10.0, RequestProfile(cpu_ms=4, read_units=0, write_units=0,
                                                                     log_bytes=0, egress_bytes=35_000))
    # 36.5 KB a request at 100/s: 13.14 GB an hour processed -> 13.14 LCU
    assert bigger.compute_usd == pytest.approx((4 * (0.5 * 0.03238 + 0.00356) + 0.0225 + 13.14 * 0.008
                                                + 6 * 0.005) * 730)


def test_managed_instances_month_at_100_rps_and_10_s_streams():
    profile = RequestProfile(cpu_ms=4, read_units=0, write_units=0, log_bytes=0)
    month = managed_instances_month(HUNDRED_RPS_MONTH, 10.0, profile)
    # 1,000 in flight / 32 per m7g.large -> 32 instances at $0.0816 + 15%, and $0.20 per million requests
    assert month.compute_usd == pytest.approx(32 * 0.0816 * 1.15 * 730 + HUNDRED_RPS_MONTH * 0.2e-6)


def test_lambda_month_stretches_cpu_time_below_one_vcpu():
    profile = RequestProfile(cpu_ms=10, read_units=1, write_units=0, log_bytes=0)
    month = lambda_month(1_000_000, 1.0, profile, memory_mb=1769)
    per_request = 1769 / 1024 * 1.010 * 0.0000133334 + 0.2e-6 + 300 / BYTES_PER_GB * 0.5
    assert month.compute_usd == pytest.approx(1_000_000 * per_request)
    assert month.storage_and_logs_usd == pytest.approx(0.125)
    slower = lambda_month(1_000_000, 1.0, profile, memory_mb=442)  # a quarter vCPU: 40 ms of CPU
    assert slower.compute_usd == pytest.approx(1_000_000 * (442 / 1024 * 1.04 * 0.0000133334 + 0.2e-6
                                                            + 300 / BYTES_PER_GB * 0.5), rel=1e-3)


def test_break_even_is_where_the_container_becomes_cheaper():
    requests = break_even_requests(10.0, memory_mb=512)
    assert 1e5 < requests < 1e7  # a 512 MB function streaming 10 s answers: a few hundred thousand a month
    assert requests is not None
    below = {c.option: c.total_usd for c in _costs(requests * 0.9)}
    above = {c.option: c.total_usd for c in _costs(requests * 1.1)}
    assert below["container"] > below["lambda"] and above["container"] < above["lambda"]


def _costs(requests: float):
    from functions.core.gateway_cost import monthly_gateway_costs

    return monthly_gateway_costs(requests, 10.0, memory_mb=512)


# -- counting -----------------------------------------------------------------------------------

def test_consumed_units_reads_and_writes_as_dynamodb_reports_them():
    assert consumed_units("GetItem", {"ConsumedCapacity": {"TableName": "t", "CapacityUnits": 0.5}}) == (0.5, 0)
    assert consumed_units("UpdateItem", {"ConsumedCapacity": {"CapacityUnits": 1.0}}) == (0, 1.0)
    batch = {"ConsumedCapacity": [{"CapacityUnits": 2.0}, {"CapacityUnits": 3.0, "WriteCapacityUnits": 3.0}]}
    assert consumed_units("BatchWriteItem", batch) == (0, 5.0)
    failed = {"Error": {"Code": "ConditionalCheckFailedException"}}
    assert consumed_units("UpdateItem", failed) == (0, 1.0)
    assert consumed_units("GetItem", {}) == (0, 0)


def test_each_entry_takes_its_own_units_and_the_shared_ones_before_it():
    meter = GatewayMeter(memory_mb=1024, arch="arm64")
    meter.count(GatewayUnits(write_units=4))  # a background flush: no request is current
    request, token = meter.start()
    meter.count(GatewayUnits(read_units=1))
    units, usd = meter.settle()
    assert units.read_units == 1 and units.write_units == 4 and units.invocations == 1
    assert usd == pytest.approx(gateway_cost_usd(units))
    assert meter.settle() == (GatewayUnits(), 0.0)  # once per request
    meter.count(GatewayUnits(write_units=2))  # writing what it owes, after its entry was made
    meter.finish(request, token)
    left = meter.unattributed()
    assert left.write_units == 2 and left.invocations == 0  # its invocation is on its own entry
    assert meter.settle() == (GatewayUnits(), 0.0)  # outside any request: nothing


def test_a_request_that_never_reaches_the_ledger_still_bills_its_invocation():
    meter = GatewayMeter(memory_mb=512)
    request, token = meter.start()
    meter.count(GatewayUnits(read_units=0.5))  # an unknown API key's lookup
    meter.finish(request, token)
    left = meter.unattributed()
    assert left.invocations == 1 and left.read_units == 0.5 and left.gb_seconds > 0


def test_off_lambda_no_duration_is_billed():
    meter = GatewayMeter(memory_mb=None)
    request, token = meter.start()
    units, _ = meter.settle()
    meter.finish(request, token)
    assert units.invocations == 0 and units.gb_seconds == 0 and meter.unattributed() == GatewayUnits()


def test_lambda_architecture_names():
    assert lambda_arch("aarch64") == "arm64" and lambda_arch("x86_64") == "x86_64"
    assert GatewayMeter.from_environ({"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "768"}).memory_mb == 768


def test_log_lines_and_emf_lines_count_toward_the_current_request():
    import logging

    from functions.adapters.log_bytes import LOG_LINE_OVERHEAD, LogBytesCounter, counting_sink

    meter = GatewayMeter(memory_mb=None)
    written: list[str] = []
    request, token = meter.start()
    counting_sink(written.append)('{"_aws": {}}')
    LogBytesCounter().handle(logging.LogRecord("tierup.x", logging.WARNING, __file__, 1, "slow: %s", ("db",), None))
    units, _ = meter.settle()
    meter.finish(request, token)
    assert written == ['{"_aws": {}}']
    assert units.log_bytes == len('{"_aws": {}}') + 1 + len("slow: db") + len("tierup.x") + LOG_LINE_OVERHEAD


def test_ledger_window_scales_to_a_month_and_splits_spend():
    from functions.core.gateway_cost import ledger_traffic
    from functions.core.ports import MinuteUsage
    from functions.core.usage_ledger import LedgerEntry, cost_split, format_usd

    entries = [LedgerEntry(request_id=str(n), at=0.0, tenant_id="t", route="chat", tier="serverless", outcome="ok",
                           status=200, error_code=None, cache_status="miss", prompt_tokens=1, completion_tokens=1,
                           cached_tokens=0, cost_usd=0.01, latency_ms=2000.0 + 1000 * n, gateway_cost_usd=0.001)
               for n in range(2)]
    traffic = ledger_traffic(entries, days=7)
    assert traffic.requests_per_month == pytest.approx(2 * 730 / 24 / 7)  # a month is 730 hours
    assert traffic.mean_stream_s == pytest.approx(2.5)
    assert traffic.model_usd_per_month == pytest.approx(0.02 * 730 / 24 / 7)
    assert traffic.gateway_usd_per_month == pytest.approx(0.002 * 730 / 24 / 7)
    split = cost_split([MinuteUsage(minute=1, scope="route:chat", cost_usd=3.0, gpu_cost_usd=2.0,
                                    gateway_cost_usd=0.5)])
    assert (split.model_usd, split.gpu_usd, split.gateway_usd) == (1.0, 2.0, 0.5)
    assert format_usd(1234.5) == "$1,234.50" and format_usd(0.0000123) == "$0.000012"


def test_streamed_bytes_count_toward_their_request_and_outside_one_toward_the_pool():
    meter = GatewayMeter(memory_mb=None)
    meter.count_egress(100)  # no request is current
    request, token = meter.start()
    for _ in range(3):
        meter.count_egress(200)  # one streamed chunk each
    meter.count(GatewayUnits(write_units=1))
    units, _ = meter.settle()
    meter.count_egress(13)  # the stream's end, after its entry was made
    meter.finish(request, token)
    assert units.egress_bytes == 700 and units.write_units == 1
    assert meter.unattributed().egress_bytes == 13


def test_the_bench_chooses_the_smallest_memory_within_its_rules_from_a_fine_grid():
    from bench.gateway_cost import CPU_BUDGET_MS, MEMORY_HEADROOM, choose_memory, price_table

    measured = {"cpu_ms_per_request": 28.0, "critical_cpu_ms_per_request": 14.0, "peak_rss_mb": 111.0,
                "read_units_per_request": 0.05, "write_units_per_request": 6.4, "log_bytes_per_request": 1200.0,
                "egress_bytes_per_request": 33_000.0}
    memory, _ = choose_memory(price_table(measured, measured, 100.0)["rows"])
    # the critical-path 14 ms (not all 28) stretched to within 150 ms needs 14 x 1769 / 150 = 165 MB;
    # the next 16 MB step is 176
    assert memory == 176
    assert 14.0 * 1769 / memory <= CPU_BUDGET_MS and 111.0 <= memory * MEMORY_HEADROOM
    # memory decides when the process is the larger need: 150 MB peak needs 200 MB, so 208
    memory, _ = choose_memory(price_table(measured | {"peak_rss_mb": 150.0}, measured, 100.0)["rows"])
    assert memory == 208


def _gb_s_usd(memory_mb: int, billed_ms: int) -> float:
    return memory_mb / 1024 * billed_ms / 1000 * 0.0000133334


def test_lambda_bills_only_the_critical_path_cpu_on_top_of_the_stream():
    # 40 ms of CPU a request, 10 ms of it before the provider's call and after its last token
    profile = RequestProfile(cpu_ms=40, read_units=0, write_units=0, log_bytes=0, critical_cpu_ms=10)
    per_request = 0.2e-6 + 300 / BYTES_PER_GB * 0.5
    # one full vCPU: 1 s of stream + 10 ms (the 30 ms while the model generates overlap it)
    full = lambda_month(1_000_000, 1.0, profile, memory_mb=1769)
    assert full.compute_usd == pytest.approx(1_000_000 * (_gb_s_usd(1769, 1010) + per_request))
    # 442 MB, a quarter vCPU (x 4.0023): 10 ms -> 40.02 ms on top of 1 s: 1,041 ms billed
    quarter = lambda_month(1_000_000, 1.0, profile, memory_mb=442)
    assert quarter.compute_usd == pytest.approx(1_000_000 * (_gb_s_usd(442, 1041) + per_request))
    # a 0.1 s stream is shorter than the overlapped 30 ms stretched (120.07 ms): that CPU sets the
    # time instead, 40.02 + 120.07 ms -> 161 ms billed
    short = lambda_month(1_000_000, 0.1, profile, memory_mb=442)
    assert short.compute_usd == pytest.approx(1_000_000 * (_gb_s_usd(442, 161) + per_request))
    assert lambda_duration_s(0.1, profile, 442) == pytest.approx(0.16009, abs=1e-5)


def test_a_profile_without_a_critical_path_share_counts_all_its_cpu_as_critical():
    whole = RequestProfile(cpu_ms=40, read_units=0, write_units=0, log_bytes=0)
    assert whole.critical_ms == 40
    assert lambda_duration_s(1.0, whole, 442) == pytest.approx(1.0 + 0.040 * 1769 / 442)
    # a critical share above the total (noise in a measurement) is held to the total
    assert RequestProfile(cpu_ms=5, read_units=0, write_units=0, log_bytes=0, critical_cpu_ms=6).critical_ms == 5


def test_cpu_split_counts_the_time_between_provider_call_and_last_token_as_overlapped():
    assert cpu_split([1.0, 1.002, 1.010], 1.013) == pytest.approx((0.002, 0.008, 0.003))
    assert cpu_split([1.0], 1.004) == pytest.approx((0.004, 0.0, 0.0))  # a cache hit, a refusal
    assert cpu_split([1.0, 1.002], 1.004) == pytest.approx((0.002, 0.0, 0.002))  # the provider never finished


def test_only_a_profiling_meter_marks_a_request_cpu():
    plain, profiling = GatewayMeter(), GatewayMeter(cpu_profile=True)
    meter, token = plain.start()
    provider_called()
    provider_finished()
    assert meter.cpu_marks is None
    plain.finish(meter, token)
    meter, token = profiling.start()
    provider_called()
    provider_called()  # a fallback tier: the first call's mark stays
    provider_finished()
    provider_finished()  # the last token of the tier that answered
    assert len(meter.cpu_marks) == 3
    profiling.finish(meter, token)
    assert len(profiling.cpu_profile) == 1 and all(part >= 0 for part in profiling.cpu_profile[0])
    assert GatewayMeter.from_environ({"TIERUP_CPU_PROFILE": "/tmp/x.json"}).cpu_profile == []
