"""``tierup doctor``: check the account before and after a deploy; each finding says ok, the
problem and how to fix it, or what could not be checked (no credentials, unreachable)."""

from __future__ import annotations

import typer

from ..doctor.run import run_doctor
from .common import ConfigOption, console, load_runtime

_STYLE = {"ok": "[green]ok[/green]       ", "problem": "[red]problem[/red]  ",
          "unchecked": "[yellow]unchecked[/yellow]"}


def register(app: typer.Typer) -> None:
    @app.command()
    def doctor(config: str = ConfigOption,
               region: str = typer.Option(None, "--region", help="the stack's region (default: $AWS_REGION)"),
               modal: bool = typer.Option(True, "--modal/--no-modal", help="also check the GPU tier on Modal")) -> None:
        """Check quotas, Bedrock models, alerts and the GPU tier against your accounts; exit 1 on a problem."""
        runtime = load_runtime(config)
        findings = run_doctor(runtime, region=region, with_modal=modal)
        for finding in findings:
            console.print(f"{_STYLE[finding.status]} {finding.check}: {finding.detail}", markup=True, highlight=False)
            if finding.fix:
                console.print(f"           fix: {finding.fix}", markup=False, highlight=False)
        counts = {status: sum(f.status == status for f in findings) for status in ("ok", "problem", "unchecked")}
        console.print(f"{counts['ok']} ok, {counts['problem']} problems, {counts['unchecked']} not checked")
        raise typer.Exit(1 if counts["problem"] else 0)
