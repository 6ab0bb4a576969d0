"""What Bedrock prompt caching saves: two workloads priced with and without the gateway's cache points.

    .venv/bin/python bench/prompt_caching.py [--seeds 7 8 9] [--conversations-per-hour 600]

1. Synthetic multi-turn conversations with long shared prefixes (``tierup/conversation_workload.py``
   says how they are generated; one hour each, one row per seed and model).
2. The Azure LLM inference trace (conv, 19,366 requests over 58 minutes, real arrival times and
   prompt/answer lengths) under a stated assumption, since it has no conversation ids: every
   prompt longer than S tokens starts with the same S-token system prompt, and no request resends
   another's history (``tierup/prompt_caching_estimate.py``). Rows for S = 1,024 and 2,048.

Each is priced for the example config's caching models (Amazon Nova Micro: cache reads at a
quarter of the input rate, writes at the input rate; Claude 3.5 Haiku: reads at a tenth, writes at
1.25 x), with a cache entry living five minutes after its last use. Prints a table, writes
bench/results/prompt_caching.json. Needs ../shared/data/azure-llm-2023/ for part 2 (skipped with a
message when absent).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from functions.core.config import load_config  # noqa: E402
from tierup.conversation_workload import generate_conversations  # noqa: E402
from tierup.prompt_caching_estimate import TTL_S, saving_rows, trace_requests  # noqa: E402

TRACE = ROOT.parent / "shared" / "data" / "azure-llm-2023" / "AzureLLMInferenceTrace_conv.csv"
RESULTS = ROOT / "bench" / "results" / "prompt_caching.json"
MODELS = ("us.amazon.nova-micro-v1:0", "us.anthropic.claude-3-5-haiku-20241022-v1:0")
SHARED_PREFIXES = (1024, 2048)


def print_table(rows: list[dict]) -> None:
    print("| workload | model | requests | prompt Mtok | read | written | $ without | $ with | input saved | "
          "bill saved |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        prompt = row["prompt_tokens"]
        print(f"| {row['workload']} | {row['model'].split('.', 1)[1].split('-v1')[0]} | {row['requests']:,} | "
              f"{prompt / 1e6:.2f} | {row['read_tokens'] / prompt:.0%} | {row['written_tokens'] / prompt:.0%} | "
              f"{row['usd_without']:.4f} | {row['usd_with']:.4f} | {row['input_saving']:.0%} | {row['saving']:.0%} |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[7, 8, 9])
    parser.add_argument("--conversations-per-hour", type=float, default=600.0)
    args = parser.parse_args()
    config = load_config(ROOT / "tierup.toml")
    started = time.perf_counter()
    rows: list[dict] = []
    for seed in args.seeds:
        requests = generate_conversations(seed=seed, conversations_per_hour=args.conversations_per_hour)
        rows += saving_rows(f"synthetic conversations, seed {seed}", requests, config.pricing, MODELS)
    if TRACE.exists():
        for shared in SHARED_PREFIXES:
            rows += saving_rows(f"Azure conv trace, shared prefix {shared:,}", trace_requests(TRACE, shared),
                                config.pricing, MODELS)
    else:
        print(f"({TRACE} is absent: the trace rows are skipped)\n")
    print(f"## Prompt caching: the bill with and without cache points (cache entries live {TTL_S:.0f} s)\n")
    print_table(rows)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"args": vars(args), "ttl_s": TTL_S, "rows": rows,
                                   "seconds": round(time.perf_counter() - started, 2)}, indent=1))
    print(f"\nwrote {RESULTS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
