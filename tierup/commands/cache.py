"""``tierup cache stats | purge``: the response cache's hit rates and savings, and clearing it.

``stats`` also shows, for routes with ``max-wrong-hit-rate``, the threshold their observations
prove and the measured share of wrong semantic hits at it, with its 95% interval.

``purge`` plans first (counts what it would delete and prints it), then deletes, unless
``--dry-run``. Instances keep exact answers in memory for at most ``[cache] l1-ttl-s`` after a purge.
"""

from __future__ import annotations

import typer
from rich.table import Table

from functions.adapters.dynamodb.cache import DynamoCacheStore
from functions.core.cache.calibration import Calibration
from functions.core.cache.keys import SHARED_SCOPE
from functions.core.tables import CACHE

from .common import ConfigOption, console, err_console, load_runtime

cache_app = typer.Typer(help="Response-cache statistics and purges.", no_args_is_help=True)


def _store(runtime) -> DynamoCacheStore:
    return DynamoCacheStore(runtime.dynamodb, runtime.table(CACHE))


@cache_app.command("stats")
def stats(route: str = typer.Option(None, "--route", help="only this route"), config: str = ConfigOption) -> None:
    """Hits, misses, hit rate and tokens/dollars saved per route (all days kept); the measured
    wrong-hit share of bounded routes."""
    runtime = load_runtime(config)
    store = _store(runtime)
    totals = store.read_stats(route)
    table = Table("route", "hit exact", "hit semantic", "miss", "bypass", "hit rate", "tokens saved", "USD saved")
    for name, row in sorted(totals.items()):
        hits = row.get("hit_exact", 0) + row.get("hit_semantic", 0)
        looked_up = hits + row.get("miss", 0) + row.get("calibration", 0)  # a calibration call was a lookup too
        rate = f"{hits / looked_up:.1%}" if looked_up else "-"
        table.add_row(name, *(f"{row.get(k, 0):.0f}" for k in ("hit_exact", "hit_semantic", "miss", "bypass")),
                      rate, f"{row.get('tokens_saved', 0):.0f}", f"{row.get('usd_saved', 0):.4f}")
    console.print(table)
    _calibration_table(runtime, store, totals, route)


def _calibration_table(runtime, store: DynamoCacheStore, totals: dict, only: str | None) -> None:
    bounded = {name: r.cache for name, r in runtime.config.routes.items()
               if r.cache.max_wrong_hit_rate is not None and only in (None, name)}
    if not bounded:
        return
    table = Table("route", "embedder", "bound", "threshold", "observations >= threshold", "wrong share [95% CI]",
                  "calibration calls", "calibration tokens")
    for key, (right, wrong) in sorted(store.read_calibrations().items()):
        name, _, embedder = key.partition("#")
        settings = bounded.get(name)
        if settings is None:
            continue
        calibration = Calibration(right, wrong)
        threshold = calibration.threshold(settings.max_wrong_hit_rate, settings.calibration_floor,
                                          settings.calibration_method, settings.calibration_confidence)
        measured = calibration.measured(threshold)
        row = totals.get(name, {})
        table.add_row(name, embedder, f"{settings.max_wrong_hit_rate:.2%}",
                      "none proven yet" if threshold is None else f"{threshold:.3f}", f"{measured.samples:.0f}",
                      "-" if threshold is None else
                      f"{measured.rate:.2%} [{measured.low:.2%}, {measured.high:.2%}]",
                      f"{row.get('calibration', 0):.0f}", f"{row.get('calibration_tokens', 0):.0f}")
    console.print(table)


@cache_app.command("purge")
def purge(tenant: str = typer.Option(None, "--tenant", help="only this tenant's answers"),
          route: str = typer.Option(None, "--route", help="only this route's answers"),
          shared: bool = typer.Option(False, "--shared", help="only answers shared across tenants"),
          dry_run: bool = typer.Option(False, "--dry-run", help="count, delete nothing"),
          config: str = ConfigOption) -> None:
    """Delete cached answers (all of them, or a tenant's and/or a route's)."""
    if tenant and shared:
        err_console.print("[red]--tenant and --shared exclude each other[/red]")
        raise typer.Exit(2)
    runtime = load_runtime(config)
    if route is not None and route not in runtime.config.routes:
        err_console.print(f"[red]unknown route {route!r}[/red]; routes: {', '.join(runtime.config.routes)}")
        raise typer.Exit(2)
    scope = SHARED_SCOPE if shared else tenant
    store = _store(runtime)
    planned = store.purge(scope, route, dry_run=True)
    what = f"tenant {tenant}" if tenant else ("shared answers" if shared else "all tenants")
    console.print(f"plan: delete {planned} cache item(s) of {what}, route {route or 'any'}")
    if dry_run or not planned:
        return
    console.print(f"deleted {store.purge(scope, route)} item(s)")


def register(app: typer.Typer) -> None:
    app.add_typer(cache_app, name="cache")
