"""``tierup batches list | show | cancel``: a tenant's batches, their progress and cost so far."""

from __future__ import annotations

import time

import typer
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn
from rich.table import Table

from functions.adapters.batch_store import BatchStore
from functions.batch.wiring import BUCKET_ENV, QUEUE_ENV
from functions.core.batch import TERMINAL, BatchJob, answered_ok
from functions.core.tables import STATE

from .common import ConfigOption, console, err_console, load_runtime

batches_app = typer.Typer(help="List, follow and cancel batches (the OpenAI Batch API's jobs).",
                          no_args_is_help=True)
TenantOption = typer.Option(..., "--tenant", help="tenant id")


def _store(runtime) -> BatchStore:
    # listing and cancelling read the jobs table only; the bucket and queue are named for completeness
    return BatchStore(runtime.aws.client, table=runtime.table(STATE), bucket=runtime.environ.get(BUCKET_ENV, ""),
                      queue_url=runtime.environ.get(QUEUE_ENV, ""), keep_days=runtime.config.batch.keep_days)


def _when(epoch: int | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.gmtime(epoch)) if epoch else ""


def _progress(store: BatchStore, job: BatchJob) -> tuple[int, int, float]:
    """(lines done, of which failed, USD so far), from the lines' own records: live, not per chunk."""
    lines = [line["record"] for line in store.lines(job.id).values()]
    failed = sum(1 for record in lines if not answered_ok(record))
    cost = sum(record["entry"]["cost_usd"] for record in lines if record.get("entry"))
    return len(lines), failed, cost


def _find(store: BatchStore, tenant: str, batch_id: str) -> BatchJob:
    job = store.job(tenant, batch_id)
    if job is None:
        err_console.print(f"[red]no batch {batch_id} for tenant {tenant}[/red]")
        raise typer.Exit(1)
    return job


@batches_app.command("list")
def list_batches(tenant: str = TenantOption, limit: int = typer.Option(20, "--limit", min=1, max=100),
                 config: str = ConfigOption) -> None:
    """A tenant's batches, newest first."""
    jobs, more = _store(load_runtime(config)).jobs(tenant, after=None, limit=limit)
    table = Table("batch", "status", "endpoint", "lines", "done", "failed", "cost $", "created")
    for job in jobs:
        table.add_row(job.id, job.status, job.endpoint, str(job.total), str(job.completed), str(job.failed),
                      f"{job.cost_usd:.6f}", _when(job.created_at))
    console.print(table)
    if more:
        console.print(f"(more than {limit}; --limit shows up to 100)")


@batches_app.command("show")
def show(batch_id: str = typer.Argument(...), tenant: str = TenantOption,
         watch: bool = typer.Option(False, "--watch", help="follow until the batch finishes"),
         config: str = ConfigOption) -> None:
    """One batch: status, progress (lines done, failed, cost so far) and its files."""
    store = _store(load_runtime(config))
    job = _find(store, tenant, batch_id)
    columns = (TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(),
               TextColumn("{task.completed:.0f}/{task.total:.0f} lines, {task.fields[failed]} failed, "
                          "${task.fields[cost]:.6f}"))
    with Progress(*columns, console=console, transient=False, auto_refresh=False) as bar:
        task = bar.add_task(job.status, total=job.total, failed=0, cost=0.0)
        while True:
            done, failed, cost = _progress(store, job)
            bar.update(task, completed=done, description=job.status, failed=failed, cost=cost)
            bar.refresh()
            if not watch or job.status in TERMINAL:
                break
            time.sleep(1.0)
            job = _find(store, tenant, batch_id)
    console.print(f"{job.id}  {job.endpoint}  window {job.completion_window}  created {_when(job.created_at)}")
    console.print(f"input {job.input_file_id}  output {job.output_file_id or '-'}  errors {job.error_file_id or '-'}")


@batches_app.command("cancel")
def cancel(batch_id: str = typer.Argument(...), tenant: str = TenantOption, config: str = ConfigOption) -> None:
    """Cancel a batch: lines not yet run are not run; the answered ones stay in its output file."""
    store = _store(load_runtime(config))
    job = _find(store, tenant, batch_id)
    if store.move(tenant, batch_id, "cancelling", when=("validating", "in_progress"), at=int(time.time())):
        console.print(f"{batch_id} cancelling; workers stop its lines within a second")
    else:
        console.print(f"{batch_id} is {job.status}: nothing to cancel")


def register(app: typer.Typer) -> None:
    app.add_typer(batches_app, name="batches")
