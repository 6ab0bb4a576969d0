"""A batch stream replayed with an interactive trace: what the batch costs on tierup's routing, with
the policy seeing the queue and without, against sending it to on-demand.

The trace is replayed through ``decide`` twice (``replay.run_policy``):

* **interactive only**: no batch; the schedule the batch's alternatives are priced against. The
  **blind** routing drains the batch over it (``batch_stream.BatchDrain``): what tierup did before
  ``decide`` was given the backlog, holding replicas for the interactive traffic alone;
* **sees the backlog**: ``decide`` gets the queued work each run, as the promotion runner passes
  the batch store's, and may hold or raise replicas for it.

Each schedule is priced by ``engine.simulate`` (GPU and the interactive spill); a routing's *batch
cost* is what it adds to the interactive-only bill: its Bedrock and on-demand lines, plus what its
schedule costs more than the interactive traffic's (a replica held for the batch is the batch's).
Used by ``tierup simulate --batch-lines`` and ``bench/batch_cost.py``. No I/O here.
"""

from __future__ import annotations

from functions.core.config import RouteConfig, TierupConfig
from functions.core.policy.cost_model import RouteEconomics

from .batch_stream import BatchDrain, BatchStream
from .buckets import Buckets
from .engine import Rules, simulate
from .replay import PolicyRun, run_policy

ROUTINGS = ("blind", "sees_backlog")


def replay_batch(stream: BatchStream, buckets: Buckets, route: str, route_config: RouteConfig, config: TierupConfig,
                 econ: RouteEconomics, interactive: PolicyRun | None = None, rules: Rules = Rules()) -> dict:
    """The batch's cost on-demand, and on tierup's routing with the policy blind to the backlog and
    seeing it; each routing's lines per path, deadline misses, reserved utilisation and whole bill.

    ``interactive``: the trace's own ``run_policy`` when the caller has it already."""
    interactive = interactive or run_policy(route, route_config, config, buckets)
    base = simulate(buckets, econ, interactive.targets, rules)
    row: dict = {"lines": stream.lines}
    for name in ROUTINGS:
        drain = BatchDrain(stream, buckets, config, route, econ)
        if name == "blind":  # decide never sees the batch: the schedule is the interactive one
            drain.advance(0, len(buckets), interactive.targets)
            outcome = base
        else:
            outcome = simulate(buckets, econ, run_policy(route, route_config, config, buckets, batch=drain).targets,
                               rules)
        summary = drain.summary()
        extra_schedule_usd = outcome.cost_usd - base.cost_usd
        row[name] = {**summary, "schedule_extra_usd": round(extra_schedule_usd, 4),
                     "tierup_usd": round(summary["batch_usd"] + extra_schedule_usd, 4),
                     "whole_bill_usd": round(outcome.cost_usd + summary["batch_usd"], 4),
                     "promotions": outcome.promotions, "replica_hours": round(outcome.replica_seconds / 3600, 2)}
    # the batch without Bedrock, on the interactive schedule: reserved and the interactive tiers only
    no_bedrock = BatchDrain(stream, buckets, config, route, econ, interactive_only=True)
    no_bedrock.advance(0, len(buckets), interactive.targets)
    on_demand = stream.lines * no_bedrock.on_demand_line_usd
    row.update({
        "on_demand_usd": round(on_demand, 4), "interactive_bill_usd": round(base.cost_usd, 4),
        "all_on_demand_bill_usd": round(base.cost_usd + on_demand, 4),
        "interactive_only_usd": no_bedrock.summary()["batch_usd"],
    })
    for name in ROUTINGS:
        row[name]["share"] = round(row[name]["tierup_usd"] / on_demand, 4) if on_demand else None
    return row
