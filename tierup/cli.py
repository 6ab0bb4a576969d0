"""The ``tierup`` command. Each command group lives in ``tierup/commands/`` and registers here."""

from __future__ import annotations

import typer

from .commands import (batches, budgets, cache, check, costs, dev, doctor, keys, killswitch, load, simulate, status,
                       usage)

app = typer.Typer(help="tierup: serverless-first LLM gateway with quotas, budgets and a GPU escape hatch.",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)

for command in (batches, budgets, cache, check, costs, dev, doctor, keys, killswitch, load, simulate, status, usage):
    command.register(app)


def main() -> None:
    app()
