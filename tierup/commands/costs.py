"""``tierup costs``: the gateway's own bill, read from the live ledger and scaled to a month, on
each hosting option (Lambda, a Fargate container behind a load balancer, Lambda Managed
Instances), and the traffic from which switching pays."""

from __future__ import annotations

import time
from datetime import datetime, timezone

import typer
from rich.table import Table

from functions.adapters.dynamodb.ledger_records import DynamoLedgerRecords
from functions.core.gateway_cost import break_even_requests, ledger_traffic, monthly_gateway_costs
from functions.core.tables import USAGE

from .common import ConfigOption, console, load_runtime
from .usage import tenant_plans

#: mean stream times the break-even table shows, beside the ledger's own
BREAK_EVEN_STREAM_S = (1.0, 10.0, 60.0)


def _days(now: float, days: int) -> list[str]:
    return sorted({datetime.fromtimestamp(now - back * 86400, tz=timezone.utc).strftime("%Y-%m-%d")
                   for back in range(days + 1)})


def _requests(value: float | None) -> str:
    if value is None:
        return "never (below 10 billion a month)"
    return f"{value / 1e6:,.2f} M" if value >= 1e6 else f"{value:,.0f}"


def hosting_table(requests: float, stream_s: float, memory_mb: int, model_usd: float) -> Table:
    table = Table("hosting", "runs", "compute / month", "DynamoDB + logs / month", "total / month",
                  "share of model cost", title=f"The gateway's bill for {_requests(requests)} requests a month "
                  f"of {stream_s:.1f} s")
    for cost in monthly_gateway_costs(requests, stream_s, memory_mb=memory_mb):
        share = f"{cost.total_usd / model_usd:.1%}" if model_usd > 0 else "-"
        table.add_row(cost.option, cost.detail, f"${cost.compute_usd:,.2f}", f"${cost.storage_and_logs_usd:,.2f}",
                      f"${cost.total_usd:,.2f}", share)
    return table


def break_even_table(memory_mb: int, stream_times: list[float]) -> Table:
    table = Table("mean stream time", "container pays from", "Lambda Managed Instances pay from",
                  title=f"Requests a month past which an option costs less than Lambda at {memory_mb} MB")
    for seconds in stream_times:
        table.add_row(f"{seconds:.1f} s", _requests(break_even_requests(seconds, memory_mb=memory_mb)),
                      _requests(break_even_requests(seconds, memory_mb=memory_mb, option="lambda-managed")))
    return table


def register(app: typer.Typer) -> None:
    @app.command()
    def costs(config: str = ConfigOption,
              days: int = typer.Option(7, "--days", "-d", min=1, max=35, help="ledger days to read"),
              requests: float = typer.Option(None, "--requests", help="price this many requests a month instead")
              ) -> None:
        """What the gateway itself costs a month on each hosting option, and when switching pays."""
        runtime = load_runtime(config)
        memory = runtime.config.gateway.lambda_memory_mb
        now = time.time()
        ledger = DynamoLedgerRecords(runtime.dynamodb, runtime.table(USAGE))
        entries = [entry for tenant in tenant_plans(runtime, None) for day in _days(now, days)
                   for entry in ledger.day(tenant, day) if entry.at >= now - days * 86400]
        traffic = ledger_traffic(entries, days)
        console.print(f"ledger, last {days} days: {len(entries):,} requests, {_requests(traffic.requests_per_month)} "
                      f"a month, {traffic.mean_stream_s:.2f} s from request to last byte on average; model and GPU "
                      f"${traffic.model_usd_per_month:,.2f} a month, the gateway's own cost as recorded "
                      f"${traffic.gateway_usd_per_month:,.2f} a month")
        monthly = requests if requests is not None else traffic.requests_per_month
        if monthly > 0:
            model = traffic.model_usd_per_month * (monthly / traffic.requests_per_month) \
                if traffic.requests_per_month else 0.0
            console.print(hosting_table(monthly, traffic.mean_stream_s, memory, model))
        console.print(break_even_table(memory, sorted({*BREAK_EVEN_STREAM_S, round(traffic.mean_stream_s, 1)}
                                                      - {0.0})))
        console.print("prices: functions/core/gateway_cost.py AWS_PRICES (us-east-1 list prices); per-request units "
                      "and CPU: bench/gateway_cost.py")
