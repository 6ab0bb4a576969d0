"""``tierup budgets``: spend against each cap this period, the projection to period end, and
whether the scope's kill switch is engaged.

Spend is the gateway's committed spend from its counters: settled requests plus reservations
and unspent leases in flight (an upper bound on what was billed, never below it). A second table
splits each scope's spend this period by what was paid for (model tokens, GPU time, the gateway's
own AWS bill), from the usage ledger's per-minute aggregates.
"""

from __future__ import annotations

import time

import typer
from rich.table import Table

from functions.adapters.dynamodb.usage_aggregates import DynamoUsageAggregates
from functions.core.spend_caps import SpendCap, all_caps
from functions.core.tables import USAGE
from functions.core.usage_ledger import cost_split, format_usd
from functions.guardrails.wiring import counter_store, guardrail_store

from .common import ConfigOption, console, load_runtime


def spend_split_table(runtime, caps: list[SpendCap], now: float) -> Table:
    """Each cap's scope and period: model, GPU and gateway spend (the whole gateway: every route)."""
    aggregates = DynamoUsageAggregates(runtime.dynamodb, runtime.table(USAGE))
    included = "counted" if runtime.config.budgets.include_gateway_cost else "not counted"
    table = Table("scope", "period", "model", "GPU", "gateway", title=f"Spend by kind (gateway {included} in caps: "
                  "\\[budgets] include-gateway-cost)")
    for cap in caps:
        scopes = [f"route:{route}" for route in runtime.config.routes] if cap.scope == "global" else [cap.scope]
        rows = [row for scope in scopes for row in aggregates.minutes(scope, int(cap.starts_at // 60), int(now // 60))]
        spend = cost_split(rows)
        table.add_row(cap.scope, cap.label, format_usd(spend.model_usd), format_usd(spend.gpu_usd),
                      format_usd(spend.gateway_usd))
    return table


def register(app: typer.Typer) -> None:
    @app.command()
    def budgets(config: str = ConfigOption) -> None:
        """Spend against every configured cap, projected to the end of its period."""
        runtime = load_runtime(config)
        now = time.time()
        caps = all_caps(runtime.config, now)
        if not caps:
            console.print("no caps configured: add [budgets.global] monthly-usd (and routes/tenants) to tierup.toml")
            return
        spent = counter_store(runtime).read([cap.counter_key for cap in caps])
        flags = {flag.scope: flag for flag in guardrail_store(runtime).flags() if flag.active(now)}
        table = Table("scope", "period", "cap", "committed", "used", "projected", "at 100%", "stopped")
        for cap in caps:
            value = spent.get(cap.counter_key, 0.0)
            projected = cap.projected_usd(value, now)
            used = value / cap.limit_usd if cap.limit_usd else 1.0
            colour = "red" if used >= 1 else "yellow" if used >= 0.8 else "green"
            flag = flags.get(cap.scope)
            table.add_row(cap.scope, cap.label, f"${cap.limit_usd:,.2f}", f"${value:,.2f}",
                          f"[{colour}]{used:.1%}[/{colour}]",
                          f"[red]${projected:,.2f}[/red]" if projected > cap.limit_usd else f"${projected:,.2f}",
                          cap.action, f"[red]{flag.action}[/red]" if flag else "")
        console.print(table)
        console.print(spend_split_table(runtime, caps, now))
        console.print("committed = settled spend + reservations and unspent leases of running gateways "
                      f"(at most \\[budgets] lease-max-usd = ${runtime.config.budgets.lease_max_usd:g} each); "
                      "projected = committed at the rate so far, to the end of the period (UTC)")
