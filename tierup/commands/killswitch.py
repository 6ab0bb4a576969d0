"""``tierup killswitch status | engage | release``: see, stop and resume spend by scope.

Engage and release print their plan first and apply it only when confirmed (``--yes`` to skip the
question, ``--dry-run`` to only print). Every applied step is audited in the state table.
The gateway function (for hard stops and their release) and the tables come from the deployed
stack's outputs, or from ``TIERUP_GATEWAY_FUNCTION_NAME`` and ``TIERUP_TABLE_*``.

``status`` also says where the live settings disagree with the flags (a hard stop that a person
or a deploy lifted, a gateway stopped with no hard stop engaged), each with the command that
fixes it. Its three reads (flags, the gateway's concurrency, the audit trail) run at once.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import typer
from rich.markup import escape
from rich.table import Table

from functions.core.config.budgets import BUDGET_ACTIONS
from functions.core.gateway_concurrency import concurrency_drift
from functions.core.killswitch import KillSwitchPlan, KillSwitchTrigger, valid_scope
from functions.core.spend_caps import iso_utc
from functions.guardrails.killswitch_executor import KillSwitch
from functions.guardrails.wiring import gpu_control, guardrail_store, kill_switch_for

from .common import ConfigOption, console, err_console, load_runtime

killswitch_app = typer.Typer(help="See, engage and release kill switches (global, route:R, tenant:T).",
                             no_args_is_help=True)

ScopeOption = typer.Option("global", "--scope", "-s", help="global, route:NAME or tenant:ID")


def _scope(runtime, scope: str) -> str:
    kind, _, name = scope.partition(":")
    known = ((kind == "route" and name in runtime.config.routes) or kind == "tenant" or scope == "global")
    if not valid_scope(scope) or not known:
        err_console.print(f"[red]invalid scope {scope!r}[/red]: use global, route:NAME (one of "
                          f"{', '.join(runtime.config.routes)}) or tenant:ID")
        raise typer.Exit(2)
    return scope


def _switch(runtime) -> KillSwitch:
    runtime.read_stack_outputs()
    return kill_switch_for(runtime, gpu=gpu_control(runtime), control_lambda=True)


def _show_plan(plan: KillSwitchPlan) -> None:
    for step in plan.steps:
        console.print(f"  [bold]{step.kind}[/bold]  {escape(step.detail)}")
    for note in plan.notes:
        console.print(f"  [dim]{escape(note)}[/dim]")
    if not plan.steps:
        console.print("  nothing to do")


def _apply(switch: KillSwitch, plan: KillSwitchPlan, yes: bool, dry_run: bool) -> None:
    console.print("plan:")
    _show_plan(plan)
    if dry_run or not plan.steps:
        return
    if not yes and not typer.confirm("apply this plan?"):
        raise typer.Exit(1)
    outcome = switch.execute(plan)
    for line in outcome.done:
        console.print(f"[green]done[/green] {escape(line)}")
    for line in outcome.skipped:
        console.print(f"[yellow]skipped[/yellow] {escape(line)}")
    for line in outcome.failed:
        err_console.print(f"[red]failed[/red] {escape(line)}")
    if outcome.failed:
        raise typer.Exit(1)


@killswitch_app.command("status")
def status(config: str = ConfigOption,
           audit: int = typer.Option(10, help="how many recent audit entries to show")) -> None:
    """Engaged kill switches, the gateway's concurrency, drift between them, and the latest audited actions."""
    runtime = load_runtime(config)
    runtime.read_stack_outputs()
    switch = kill_switch_for(runtime, control_lambda=True)
    with ThreadPoolExecutor(max_workers=2) as pool:  # independent reads: wait for the slowest only
        trail = pool.submit(guardrail_store(runtime).audit_trail, audit) if audit else None
        observed = switch.observe()
        entries = trail.result() if trail else []
    now = time.time()
    table = Table("scope", "state", "action", "budget", "reason", "since", "until", "applied")
    for flag in sorted(observed.flags.values(), key=lambda f: f.scope):
        state = "[red]ENGAGED[/red]" if flag.active(now) else "expired"
        table.add_row(flag.scope, state, flag.action, escape(flag.budget), escape(flag.reason), iso_utc(flag.engaged_at),
                      iso_utc(flag.until) if flag.until else "until released", ", ".join(sorted(flag.applied)))
    if observed.flags:
        console.print(table)
    else:
        console.print("no kill switch is engaged")
    drift = []
    if observed.gateway_function:
        value = observed.gateway_concurrency
        console.print(f"gateway function {observed.gateway_function}: reserved concurrency "
                      f"{'unreserved' if value is None else value}")
        drift = concurrency_drift(observed.flags.values(), observed.gateway_function, value,
                                  observed.configured_concurrency, now)
    elif runtime.config.gateway.hosting == "container":
        console.print("gateway runs in containers ([gateway] hosting): a hard stop is its flags alone, and "
                      "[gateway.container] max-tasks bounds its own cost")
    else:
        console.print("[yellow]gateway function unknown[/yellow] (no stack output, no TIERUP_GATEWAY_FUNCTION_NAME): "
                      "its concurrency is not checked")
    for line in drift:
        console.print(f"[red]DRIFT[/red] {escape(line)}")
    if entries:
        trail_table = Table("when", "scope", "what", "why", "source")
        for entry in entries:
            trail_table.add_row(iso_utc(entry.at), entry.scope, entry.what, escape(entry.why), entry.source)
        console.print(trail_table)


@killswitch_app.command("engage")
def engage(scope: str = ScopeOption,
           action: str = typer.Option("refuse", help=f"one of {', '.join(BUDGET_ACTIONS)}"),
           reason: str = typer.Option("engaged by an operator", help="recorded in the audit trail"),
           yes: bool = typer.Option(False, "--yes", "-y", help="apply without asking"),
           dry_run: bool = typer.Option(False, "--dry-run", help="print the plan only"),
           config: str = ConfigOption) -> None:
    """Stop spend in a scope now; it holds until released."""
    runtime = load_runtime(config)
    scope = _scope(runtime, scope)
    if action not in BUDGET_ACTIONS:
        err_console.print(f"[red]unknown action {action!r}[/red]: one of {', '.join(BUDGET_ACTIONS)}")
        raise typer.Exit(2)
    switch = _switch(runtime)
    trigger = KillSwitchTrigger(scope=scope, action=action, reason=reason, source="cli")
    _apply(switch, switch.plan_engage(trigger), yes, dry_run)


@killswitch_app.command("release")
def release(scope: str = ScopeOption,
            reason: str = typer.Option("released by an operator", help="recorded in the audit trail"),
            yes: bool = typer.Option(False, "--yes", "-y", help="apply without asking"),
            dry_run: bool = typer.Option(False, "--dry-run", help="print the plan only"),
            config: str = ConfigOption) -> None:
    """Let a scope serve again (and restore the gateway's concurrency after a hard stop).

    A spend cap that is still full keeps refusing until its period ends or it is raised."""
    runtime = load_runtime(config)
    scope = _scope(runtime, scope)
    switch = _switch(runtime)
    _apply(switch, switch.plan_release(scope, reason, "cli"), yes, dry_run)


def register(app: typer.Typer) -> None:
    app.add_typer(killswitch_app, name="killswitch")
