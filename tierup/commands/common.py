"""What every command shares: the ``--config`` option and the runtime it loads."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from urllib.parse import urlparse

import typer
from rich.console import Console
from rich.markup import escape

from functions.core.config import load_config
from functions.core.errors import ConfigError
from functions.gateway.composition import Runtime

from ..deployed_stack import StackNotFound, fill_stack_settings
from ..local_stack import LOCAL_CREDENTIALS

#: piped output has no terminal to size to, and rich would assume 80 columns and fold the tables'
#: names (``route:…``); scripts that read it get lines as wide as the table needs instead
PIPED_WIDTH = 250
console = Console(soft_wrap=True,  # never fold a key or an export line
                  width=None if sys.stdout.isatty() else PIPED_WIDTH)
err_console = Console(stderr=True, soft_wrap=True)

ConfigOption = typer.Option(None, "--config", "-c", help="tierup.toml to use (default: $TIERUP_CONFIG, ./tierup.toml)")


@dataclass
class CliRuntime(Runtime):
    """A runtime that finds the deployed stack's tables and functions on first use (its outputs;
    ``tierup.deployed_stack``), so commands that never touch AWS never look."""

    _stack_read: bool = field(default=False, init=False, repr=False)

    def read_stack_outputs(self) -> None:
        if self._stack_read:
            return
        self._stack_read = True
        try:
            fill_stack_settings(self)
        except StackNotFound as exc:
            err_console.print(f"[red]stack not found[/red] {exc}")
            raise typer.Exit(2) from None

    def table(self, spec) -> str:
        self.read_stack_outputs()
        return super().table(spec)


def load_runtime(config_path: str | None) -> Runtime:
    """Load and validate the config, or exit 2 with the offending key named."""
    try:
        config = load_config(config_path)
    except ConfigError as exc:
        # the message is printed as is: "[pricing.models]" in it is a TOML table, not markup
        err_console.print(f"[red]config error[/red] {escape(exc.message)}")
        raise typer.Exit(2) from None
    endpoint = os.environ.get("TIERUP_AWS_ENDPOINT")
    if endpoint and urlparse(endpoint).hostname in ("127.0.0.1", "localhost"):
        for name, value in LOCAL_CREDENTIALS.items():
            os.environ.setdefault(name, value)
    return CliRuntime(config=config)
