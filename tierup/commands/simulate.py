"""``tierup simulate``: replay a real trace through the policy and the baselines, and compare.

Runs on the laptop, on per-minute buckets; tierup's schedule comes from the same ``decide`` the
policy Lambda runs. Prints a table per trace (and totals with ``--trace all``) and writes a PNG
per trace: demand, reserved capacity and cumulative cost over time.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from .common import ConfigOption, console, err_console, load_runtime


def register(app: typer.Typer) -> None:
    @app.command()
    def simulate(trace: str = typer.Option("azure-conv", "--trace",
                                           help="azure-conv | azure-code | servegen:CHUNK | all"),
                 route: str = typer.Option("chat", "--route", help="the route whose prices and GPU are used"),
                 max_replicas: int = typer.Option(None, "--max-replicas",
                                                  help="override the route's max-replicas"),
                 seed: int = typer.Option(0, "--seed", help="seed for ServeGen arrivals and token lengths"),
                 plot_path: Path = typer.Option(Path("simulate.png"), "--plot",
                                                help="PNG to write (one per trace, suffixed, with --trace all)"),
                 config: str = ConfigOption) -> None:
        """Compare always-serverless, always-reserved, a reactive autoscaler, tierup and the hindsight optimum."""
        from functions.core.policy.cost_model import economics_for
        from tierup.simulate.replay import compare
        from tierup.simulate.report import plot, policy_rows, totals
        from tierup.simulate.traces import TraceNotFound, load_trace, trace_names

        cfg = load_runtime(config).config
        if route not in cfg.routes:
            err_console.print(f"[red]unknown route {route!r}[/red]; routes: {', '.join(cfg.routes)}")
            raise typer.Exit(2)
        route_config = cfg.routes[route]
        if max_replicas is not None:
            route_config = route_config.model_copy(update={"max_replicas": max_replicas})
        econ = economics_for(route, route_config, cfg)
        if not econ.can_promote:
            err_console.print(f"[red]route {route!r} has no priced GPU tier[/red]: nothing to simulate")
            raise typer.Exit(2)
        names = trace_names() if trace == "all" else [trace]
        if not names:
            err_console.print("[red]no traces found[/red] (shared/data or $TIERUP_DATA)")
            raise typer.Exit(2)
        comparisons = []
        for name in names:
            try:
                demand = load_trace(name, seed)
            except TraceNotFound as exc:
                err_console.print(f"[red]{exc}[/red]")
                raise typer.Exit(2) from None
            comparison = compare(name, route, route_config, cfg, demand)
            comparisons.append(comparison)
            console.print(_table(name, policy_rows(comparison)))
            target = plot_path if len(names) == 1 else plot_path.with_name(
                f"{plot_path.stem}-{name.replace(':', '-')}{plot_path.suffix}")
            console.print(f"plot: {plot(comparison, econ, target)}")
        if len(comparisons) > 1:
            console.print(_totals_table(totals(comparisons)))


def _table(name: str, rows: list[dict]) -> Table:
    table = Table(title=f"{name}: {rows[0]['requests']:,} requests ('vs opt': cost / hindsight optimum)")
    for column in ("policy", "USD", "vs opt", "reserved", "spilled", "cold", "promos"):
        table.add_column(column, justify="left" if column == "policy" else "right", no_wrap=True)
    for row in rows:
        table.add_row(row["policy"], f"{row['cost_usd']:,.2f}", f"{row['vs_hindsight']:.3f}",
                      f"{row['reserved_share']:.1%}", f"{row['spilled_share']:.1%}",
                      f"{row['cold_share']:.2%}", str(row["promotions"]))
    return table


def _totals_table(summary: dict[str, dict]) -> Table:
    optimum = summary["hindsight"]["cost_usd"]
    table = Table(title="all traces")
    for column in ("policy", "USD", "vs opt", "reserved", "cold", "promos"):
        table.add_column(column, justify="left" if column == "policy" else "right", no_wrap=True)
    for policy, row in summary.items():
        table.add_row(policy, f"{row['cost_usd']:,.2f}", f"{row['cost_usd'] / optimum:.3f}",
                      f"{row['reserved_share']:.1%}", f"{row['cold_share']:.2%}", str(row["promotions"]))
    return table
