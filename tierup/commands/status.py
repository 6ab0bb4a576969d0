"""``tierup status``: each route's tier, reserved replicas, warm-up, traffic and spend, read from
the route table, the policy's latest decision and the usage aggregates (local or on AWS)."""

from __future__ import annotations

import time

import typer
from rich.markup import escape
from rich.table import Table

from functions.adapters.dynamodb.route_table import DynamoPolicyJournal, DynamoRouteTable
from functions.core.route_table import RouteEntry
from functions.core.tables import STATE
from functions.promotion.cycle import route_scope

from .common import ConfigOption, console, load_runtime

#: minutes of usage the "req/s" column averages over
RATE_MINUTES = 5


def _usage(runtime):
    """The usage aggregates where this installation has them; None otherwise (columns show "-")."""
    try:
        from functions.policy_handler import usage_aggregates

        return usage_aggregates(runtime)
    except ImportError:
        return None


def _traffic(usage, route: str, now_s: float) -> tuple[str, str]:
    """Requests/s over the last complete minutes, and today's spend (UTC day)."""
    if usage is None:
        return "-", "-"
    now_minute = int(now_s // 60)
    day_start = int(now_s // 86400) * 1440
    minutes = usage.minutes(route_scope(route), day_start, now_minute)
    recent = [m for m in minutes if now_minute - RATE_MINUTES <= m.minute < now_minute]
    rate = sum(m.requests for m in recent) / (RATE_MINUTES * 60)
    return f"{rate:.2f}", f"${sum(m.cost_usd for m in minutes):.4f}"


def _warming(entry: RouteEntry, now_s: float) -> str:
    if entry.warming_since_s is not None:
        return f"{entry.target_replicas} for {now_s - entry.warming_since_s:.0f}s"
    if entry.release_at_s is not None:
        return f"releasing in {max(0.0, entry.release_at_s - now_s):.0f}s"
    return ""


def register(app: typer.Typer) -> None:
    @app.command()
    def status(config: str = ConfigOption) -> None:
        """Show each route's tier, replicas, warm-up, rate and spend."""
        runtime = load_runtime(config)
        state = runtime.table(STATE)
        entries = DynamoRouteTable(runtime.dynamodb, state).read_routes()
        journal = DynamoPolicyJournal(runtime.dynamodb, state)
        usage = _usage(runtime)
        now = time.time()
        table = Table("route", "tier", "replicas", "warm/drain", "req/s", "token $ today", "fcst req/s",
                      "proj. $/h")
        reasons = []
        for name, route in runtime.config.routes.items():
            entry = entries.get(name) or RouteEntry.initial(name, route.start_tier)
            latest = journal.recent_decisions(name, limit=1)
            decision = latest[0]["decision"] if latest else None
            # The policy's clock may run ahead of this one in `tierup dev --clock-speed`.
            clock = max(now, entry.updated_s)
            rate, spend = _traffic(usage, name, now)
            table.add_row(name, entry.tier, f"{entry.replicas}/{entry.target_replicas}", _warming(entry, clock),
                          rate, spend,
                          f"{decision['forecast_rps']:.2f}" if decision else "-",
                          f"${decision['projected_cost_usd_per_hour']:.3f}" if decision else "-")
            if decision:
                reasons.append(f"[bold]{name}[/bold]: {escape(latest[0]['reason'])}")
        console.print(table)
        console.print("replicas: serving/asked of the GPU control")
        for line in reasons:
            console.print(line)
