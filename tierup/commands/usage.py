"""``tierup usage``: each tenant's usage against its plan's limits now (the shared quota counters:
settled usage plus what instances hold in leases and requests in flight), and each route's
traffic from the usage ledger's per-minute aggregates."""

from __future__ import annotations

import time

import typer
from rich.table import Table

from functions.adapters.dynamodb.keys import DynamoKeyStore
from functions.adapters.dynamodb.quota_holds import DynamoQuotaHoldStore
from functions.adapters.dynamodb.usage_aggregates import DynamoUsageAggregates
from functions.core.ports import MinuteUsage
from functions.core.quota.counters import MONTHLY_BUDGET_USD, counters_for
from functions.core.quota.headers import format_reset
from functions.core.tables import KEYS, USAGE
from functions.core.usage_ledger import cost_split, format_usd

from .common import ConfigOption, console, load_runtime

#: minutes the "last 5 min" columns add up
RECENT_MINUTES = 5


def tenant_plans(runtime, tenant: str | None) -> dict[str, str]:
    """Tenant -> plan, from the API keys (the plan each key was issued on) and [tenants]."""
    plans = {record.tenant_id: record.plan
             for record in DynamoKeyStore(runtime.dynamodb, runtime.table(KEYS)).list(tenant)
             if not record.revoked}
    for tenant_id, configured in runtime.config.tenants.items():
        if tenant is None or tenant_id == tenant:
            plans[tenant_id] = configured.plan
    return plans


def _amount(name: str, value: float) -> str:
    return f"${value:,.4f}" if name == MONTHLY_BUDGET_USD else f"{value:,.0f}"


def limits_table(runtime, plans: dict[str, str], now: float) -> Table:
    table = Table("tenant", "plan", "limit", "window", "used", "of which held", "limit value", "used %", "resets in",
                  title="Quota counters (all instances)")
    store = DynamoQuotaHoldStore(runtime.dynamodb, runtime.table(USAGE))
    for tenant_id, plan_name in sorted(plans.items()):
        counters = counters_for(runtime.config.plan_for(plan_name, tenant_id), tenant_id, now)
        stored = store.read_counters([c.key for c in counters])
        if not counters:
            table.add_row(tenant_id, plan_name, "unlimited", "", "", "", "", "", "")
        for counter in counters:
            held = stored.get(counter.key)
            used = held.used if held else 0.0
            in_holds = sum(amount for amount, _ in (held.holds or {}).values()) if held else 0.0
            share = used / counter.limit if counter.limit else 1.0
            colour = "red" if share >= 1 else "yellow" if share >= 0.8 else "green"
            table.add_row(tenant_id, plan_name, counter.name, counter.window or "in flight",
                          _amount(counter.name, used), _amount(counter.name, in_holds),
                          _amount(counter.name, counter.limit), f"[{colour}]{share:.1%}[/{colour}]",
                          format_reset(counter.reset_in(now)) if counter.resets_at else "-")
    return table


def _totals(rows: list[MinuteUsage]) -> tuple[int, int, int]:
    return (sum(r.requests for r in rows), sum(r.refused for r in rows),
            sum(r.prompt_tokens + r.completion_tokens for r in rows))


def traffic_table(runtime, scopes: list[str], now: float) -> Table:
    table = Table("scope", "req this min", f"req last {RECENT_MINUTES} min", "req today", "refused today",
                  "tokens today", "model today", "GPU today", "gateway today",
                  title="Usage ledger (per-minute aggregates, UTC day)")
    aggregates = DynamoUsageAggregates(runtime.dynamodb, runtime.table(USAGE))
    minute = int(now // 60)
    day_start = int(now // 86400) * 1440
    for scope in scopes:
        rows = aggregates.minutes(scope, day_start, minute)
        this_minute = sum(r.requests for r in rows if r.minute == minute)
        recent = sum(r.requests for r in rows if r.minute > minute - RECENT_MINUTES)
        requests, refused, tokens = _totals(rows)
        spend = cost_split(rows)
        table.add_row(scope, str(this_minute), str(recent), str(requests), str(refused), f"{tokens:,}",
                      format_usd(spend.model_usd), format_usd(spend.gpu_usd), format_usd(spend.gateway_usd))
    return table


def register(app: typer.Typer) -> None:
    @app.command()
    def usage(config: str = ConfigOption,
              tenant: str = typer.Option(None, "--tenant", "-t", help="only this tenant"),
              route: str = typer.Option(None, "--route", "-r", help="only this route")) -> None:
        """Current usage against each tenant's plan limits, and each route's traffic."""
        runtime = load_runtime(config)
        now = time.time()
        if route is not None and route not in runtime.config.routes:
            console.print(f"[red]unknown route[/red] {route!r}: tierup.toml has {', '.join(runtime.config.routes)}")
            raise typer.Exit(2)
        scopes = [f"route:{name}" for name in runtime.config.routes if route in (None, name)]
        if route is None or tenant is not None:
            plans = tenant_plans(runtime, tenant)
            if tenant is not None and tenant not in plans:
                console.print(f"[yellow]no API key or [tenants] entry for tenant {tenant!r}[/yellow]")
            if plans:
                console.print(limits_table(runtime, plans, now))
            scopes = ([] if route is None and tenant is not None else scopes) + \
                [f"tenant:{t}" for t in sorted(plans)]
        console.print(traffic_table(runtime, scopes, now))
