"""``tierup check``: validate a config and name the offending key."""

from __future__ import annotations

import typer

from .common import ConfigOption, console, load_runtime


def register(app: typer.Typer) -> None:
    @app.command()
    def check(config: str = ConfigOption) -> None:
        """Validate tierup.toml; exit 2 naming the first offending key."""
        runtime = load_runtime(config)
        cfg = runtime.config
        console.print(f"[green]ok[/green] {len(cfg.routes)} routes, {len(cfg.plans)} plans, "
                      f"{len(cfg.tenants)} tenants, {len(cfg.pricing.models)} model prices")
