"""``tierup keys create | revoke | list``: API keys, of which only SHA-256 hashes are stored."""

from __future__ import annotations

import time

import typer
from rich.table import Table

from functions.adapters.dynamodb.keys import DynamoKeyStore
from functions.core.cache.keys import reserved_tenant_id
from functions.core.tables import KEYS

from ..local_stack import create_key
from .common import ConfigOption, console, err_console, load_runtime

keys_app = typer.Typer(help="Create, revoke and list API keys.", no_args_is_help=True)


def _store(runtime) -> DynamoKeyStore:
    return DynamoKeyStore(runtime.dynamodb, runtime.table(KEYS))


@keys_app.command("create")
def create(tenant: str = typer.Option(..., "--tenant", help="tenant id"),
           # help text is rich markup: a bare [plans] would be read as a style and vanish
           plan: str = typer.Option(..., "--plan", help="plan name from \\[plans]"),
           label: str = typer.Option("", "--label"), config: str = ConfigOption) -> None:
    """Create a key and print it once; only its hash is stored."""
    runtime = load_runtime(config)
    if plan not in runtime.config.plans:
        err_console.print(f"[red]unknown plan {plan!r}[/red]; plans: {', '.join(runtime.config.plans)}")
        raise typer.Exit(2)
    reason = reserved_tenant_id(tenant)
    if reason:
        err_console.print(f"[red]{reason}[/red]")
        raise typer.Exit(2)
    key = create_key(runtime, tenant, plan, label)
    console.print(f"tenant {tenant}, plan {plan}. The key is shown once; store it now:")
    print(key)


@keys_app.command("revoke")
def revoke(key_id: str = typer.Argument(..., help="key id (first 12 hex of the hash, from 'keys list')"),
           config: str = ConfigOption) -> None:
    """Revoke a key; gateways stop accepting it within \\[gateway] key-cache-s."""
    count = _store(load_runtime(config)).revoke(key_id)
    if not count:
        err_console.print(f"[red]no active key with id {key_id}[/red]")
        raise typer.Exit(1)
    console.print(f"revoked {count} key(s)")


@keys_app.command("list")
def list_keys(tenant: str = typer.Option(None, "--tenant"), config: str = ConfigOption) -> None:
    """List keys (ids, never secrets)."""
    table = Table("key id", "tenant", "plan", "created", "revoked", "label")
    for record in sorted(_store(load_runtime(config)).list(tenant), key=lambda r: r.created_at):
        table.add_row(record.key_id, record.tenant_id, record.plan,
                      time.strftime("%Y-%m-%d %H:%M", time.gmtime(record.created_at)),
                      "yes" if record.revoked else "", record.label)
    console.print(table)


def register(app: typer.Typer) -> None:
    app.add_typer(keys_app, name="keys")
