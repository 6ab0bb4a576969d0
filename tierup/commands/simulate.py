"""``tierup simulate``: replay traffic through the policy and the baselines, and compare their cost.

Replays a public trace (``--trace``), your own request log (``--trace-file``, JSONL or CSV) or the
deployment's own usage ledger (``--from-ledger``), request by request on 10-second buckets;
tierup's schedule comes from the same ``decide`` the policy Lambda runs, and every policy is
priced under the same rules (``tierup/simulate/engine.py``). Each policy's whole bill adds the
gateway's own AWS bill on the configured host (``tierup/simulate/report.py``, ``GatewayBill``, says
what it assumes). ``--prompt-caching`` adds what Bedrock prompt caching saves on a synthetic
multi-turn conversation workload with long shared prefixes (``tierup/conversation_workload.py``).
``--batch-lines`` adds a batch stream to each trace, drained bucket by bucket as the batch tier
routes it (``tierup/simulate/batch_stream.py``), with the policy blind to its backlog and seeing it
(``tierup/simulate/batch_replay.py``), against sending it to on-demand.
"""

from __future__ import annotations

import time
from pathlib import Path

import typer
from rich.table import Table

from .common import ConfigOption, console, err_console, load_runtime


def register(app: typer.Typer) -> None:
    @app.command()
    def simulate(trace: str = typer.Option("azure-conv", "--trace",
                                           help="azure-conv | azure-code | servegen:CHUNK | all"),
                 trace_file: Path = typer.Option(None, "--trace-file",
                                                 help="JSONL or CSV of requests: timestamp, input_tokens, "
                                                      "output_tokens (prefix_hash optional)"),
                 from_ledger: bool = typer.Option(False, "--from-ledger",
                                                  help="replay the deployment's usage ledger for --route"),
                 days: int = typer.Option(7, "--days", help="with --from-ledger: the last N UTC days"),
                 route: str = typer.Option("chat", "--route", help="the route whose prices and GPU are used"),
                 max_replicas: int = typer.Option(None, "--max-replicas",
                                                  help="override the route's max-replicas"),
                 seed: int = typer.Option(0, "--seed", help="seed for ServeGen arrivals and token lengths"),
                 plot_path: Path = typer.Option(None, "--plot",
                                                help="PNG of demand, replicas and cost (one per trace, suffixed)"),
                 prompt_caching: bool = typer.Option(False, "--prompt-caching",
                                                     help="also price the synthetic conversation workload with "
                                                          "and without Bedrock prompt caching"),
                 batch_lines: int = typer.Option(None, "--batch-lines", min=1,
                                                 help="also price a batch of N chat lines arriving in the trace"),
                 batch_deadline_h: float = typer.Option(24.0, "--batch-deadline-h", min=0.01,
                                                        help="the batch's completion window, in hours"),
                 batch_arrive_h: float = typer.Option(0.0, "--batch-arrive-h", min=0.0,
                                                      help="hours into the trace the batch arrives"),
                 batch_prompt: int = typer.Option(800, "--batch-prompt", min=1, help="prompt tokens per batch line"),
                 batch_completion: int = typer.Option(200, "--batch-completion", min=1,
                                                      help="completion tokens per batch line"),
                 config: str = ConfigOption) -> None:
        """Compare always-serverless, always-reserved, a reactive autoscaler, tierup and the hindsight optimum."""
        from functions.core.errors import StorageUnavailableError
        from functions.core.policy.cost_model import economics_for
        from tierup.simulate.buckets import from_requests
        from tierup.simulate.replay import compare
        from tierup.simulate.report import GatewayBill, plot, policy_rows, totals
        from tierup.simulate.request_files import TraceFileError, from_ledger as ledger_requests, read_trace_file
        from tierup.simulate.traces import TraceNotFound, load_trace, trace_names

        runtime = load_runtime(config)
        cfg = runtime.config
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

        loaded = []
        try:
            if trace_file is not None or from_ledger:
                if trace_file is not None:
                    requests, name = read_trace_file(trace_file), trace_file.name
                else:
                    requests, name = ledger_requests(_ledger_entries(runtime, days), route), f"ledger:{route}"
                if len(requests.arrival_s) == 0:
                    err_console.print(f"[red]no requests[/red] for route {route!r} in {name}")
                    raise typer.Exit(2)
                loaded.append((name, from_requests(econ.capacity, requests.arrival_s, requests.prompt_tokens,
                                                   requests.completion_tokens)))
            else:
                names = trace_names() if trace == "all" else [trace]
                if not names:
                    err_console.print("[red]no traces found[/red] (shared/data or $TIERUP_DATA)")
                    raise typer.Exit(2)
                loaded.extend((name, load_trace(name, econ.capacity, seed)) for name in names)
        except (TraceFileError, TraceNotFound) as exc:
            err_console.print(f"[red]{exc}[/red]")
            raise typer.Exit(2) from None
        except StorageUnavailableError as exc:
            err_console.print(f"[red]the usage ledger cannot be read[/red]: {exc}")
            raise typer.Exit(1) from None

        stream = None
        if batch_lines is not None:
            from tierup.simulate.batch_stream import BatchStream

            stream = BatchStream(batch_lines, batch_arrive_h * 3600, batch_deadline_h * 3600, batch_prompt,
                                 batch_completion)
            for name, buckets in loaded:
                if stream.arrive_s >= len(buckets) * buckets.bucket_s:
                    err_console.print(f"[red]--batch-arrive-h {batch_arrive_h:g}[/red] is past the end of {name} "
                                      f"({len(buckets) * buckets.bucket_s / 3600:.1f} h)")
                    raise typer.Exit(2)

        comparisons, all_rows = [], []
        for name, buckets in loaded:
            policy_run = None
            if stream is not None:
                from tierup.simulate.replay import run_policy

                policy_run = run_policy(route, route_config, cfg, buckets)
            comparison = compare(name, route, route_config, cfg, buckets, policy_run=policy_run)
            comparisons.append(comparison)
            gateway = GatewayBill.for_trace(buckets, cfg)
            all_rows.append(policy_rows(comparison, gateway))
            console.print(_table(name, all_rows[-1], gateway))
            if stream is not None:
                from tierup.simulate.batch_replay import replay_batch

                console.print(_batch_table(name, stream, replay_batch(stream, buckets, route, route_config, cfg, econ,
                                                                      interactive=policy_run)))
            if plot_path is not None:
                target = plot_path if len(loaded) == 1 else plot_path.with_name(
                    f"{plot_path.stem}-{name.replace(':', '-')}{plot_path.suffix}")
                console.print(f"plot: {plot(comparison, buckets, target)}")
        if len(comparisons) > 1:
            console.print(_totals_table(totals(comparisons, all_rows)))
        if prompt_caching:
            console.print(_prompt_caching_table(cfg, seed))


def _batch_table(name: str, stream, row: dict) -> Table:
    table = Table(title=f"{name}: a batch of {stream.lines:,} lines ({stream.prompt_tokens} + "
                        f"{stream.completion_tokens} tokens each) arriving {stream.arrive_s / 3600:g} h in, due "
                        f"within {stream.window_s / 3600:g} h ('USD': what the batch adds to the bill; 'bill': the "
                        "whole bill)")
    for column in ("routing", "path", "on reserved", "Bedrock batch", "on-demand", "missed", "USD", "vs on-demand",
                   "saved", "bill"):
        table.add_column(column, justify="left" if column in ("routing", "path") else "right", no_wrap=True)
    on_demand = row["on_demand_usd"]

    def share(usd: float) -> str:
        return f"{usd / on_demand:.1%}" if on_demand else "-"

    table.add_row("all on-demand", "on-demand", "0", "0", f"{stream.lines:,}", "0", f"{on_demand:,.4f}",
                  share(on_demand), f"{0:,.4f}", f"{row['all_on_demand_bill_usd']:,.2f}")
    for routing, label in (("blind", "tierup, blind"), ("sees_backlog", "tierup")):
        run = row[routing]
        table.add_row(label, run["path"], f"{run['on_reserved']:,}", f"{run['bedrock_lines']:,}",
                      f"{run['on_demand_lines']:,}", f"{run['deadline_misses']:,}", f"{run['tierup_usd']:,.4f}",
                      share(run["tierup_usd"]), f"{on_demand - run['tierup_usd']:,.4f}",
                      f"{run['whole_bill_usd']:,.2f}")

    def utilisation(run: dict) -> str:
        before, after = run["reserved_utilisation_before"], run["reserved_utilisation_after"]
        return f"{before:.1%} -> {after:.1%}" if before is not None else "- (none held)"

    table.caption = ("'tierup, blind': the policy not given the backlog; 'tierup': it sees the backlog and may hold "
                     f"or raise replicas for it (their cost is in its USD). Reserved replicas' utilisation over the "
                     f"window: blind {utilisation(row['blind'])}, tierup {utilisation(row['sees_backlog'])}")
    return table


def _prompt_caching_table(cfg, seed: int) -> Table:
    """What prompt caching saves on the synthetic conversation workload, for each model the
    config prices cache reads and writes of."""
    from tierup.conversation_workload import generate_conversations
    from tierup.prompt_caching_estimate import TTL_S, saving_rows

    models = sorted(cfg.pricing.prompt_cache_priced_models)
    requests = generate_conversations(seed=seed)
    rows = saving_rows("synthetic conversations", requests, cfg.pricing, models)
    table = Table(title=f"prompt caching: {len(requests):,} requests of multi-turn conversations with long shared "
                        f"prefixes (one hour, seed {seed}; cache entries live {TTL_S:.0f} s)")
    for column in ("model", "prompt Mtok", "read", "written", "USD without", "USD with", "input saved", "bill saved"):
        table.add_column(column, justify="left" if column == "model" else "right", no_wrap=True)
    for row in rows:
        prompt = row["prompt_tokens"]
        table.add_row(row["model"], f"{prompt / 1e6:.2f}", f"{row['read_tokens'] / prompt:.0%}",
                      f"{row['written_tokens'] / prompt:.0%}", f"{row['usd_without']:,.4f}",
                      f"{row['usd_with']:,.4f}", f"{row['input_saving']:.0%}", f"{row['saving']:.0%}")
    if not rows:
        table.caption = "no model in [pricing] has prompt-cache read and write prices"
    return table


def _ledger_entries(runtime, days: int) -> list:
    """Every tenant's ledger records of the last ``days`` UTC days."""
    from functions.adapters.dynamodb.ledger_records import DynamoLedgerRecords
    from functions.core.tables import USAGE

    from .usage import tenant_plans

    records = DynamoLedgerRecords(runtime.dynamodb, runtime.table(USAGE))
    now = time.time()
    day_names = sorted({time.strftime("%Y-%m-%d", time.gmtime(now - 86400 * back)) for back in range(days)})
    return [entry for tenant in sorted(tenant_plans(runtime, None)) for day in day_names
            for entry in records.day(tenant, day)]


def _table(name: str, rows: list[dict], gateway) -> Table:
    table = Table(title=f"{name}: {rows[0]['requests']:,} requests ('USD': model and GPU; 'vs opt': USD / hindsight "
                        f"optimum; 'total': with the gateway's own bill)")
    for column in ("policy", "USD", "vs opt", "gateway", "total", "reserved", "spilled", "cold", "throttled",
                   "promos"):
        table.add_column(column, justify="left" if column == "policy" else "right", no_wrap=True)
    for row in rows:
        ratio = f"{row['vs_hindsight']:.3f}" if row["vs_hindsight"] is not None else "-"
        table.add_row(row["policy"], f"{row['cost_usd']:,.2f}", ratio, f"{row['gateway_usd']:,.2f}",
                      f"{row['total_usd']:,.2f}", f"{row['reserved_share']:.1%}", f"{row['spilled_share']:.1%}",
                      f"{row['cold_share']:.2%}", f"{row['throttled_share']:.2%}", str(row["promotions"]))
    host = f"Lambda {gateway.memory_mb} MB" if gateway.hosting == "lambda" else gateway.hosting
    table.caption = (f"gateway: {host}, each request held {gateway.mean_stream_s:.1f} s on average "
                     "(its time on a full GPU replica); the same for every policy but refused requests")
    return table


def _totals_table(summary: dict[str, dict]) -> Table:
    optimum = summary["hindsight"]["cost_usd"]
    table = Table(title="all traces")
    for column in ("policy", "USD", "vs opt", "gateway", "total", "reserved", "cold", "throttled", "promos"):
        table.add_column(column, justify="left" if column == "policy" else "right", no_wrap=True)
    for policy, row in summary.items():
        table.add_row(policy, f"{row['cost_usd']:,.2f}", f"{row['cost_usd'] / optimum:.3f}" if optimum else "-",
                      f"{row['gateway_usd']:,.2f}", f"{row['total_usd']:,.2f}",
                      f"{row['reserved_share']:.1%}", f"{row['cold_share']:.2%}",
                      f"{row['throttled_share']:.2%}", str(row["promotions"]))
    return table
