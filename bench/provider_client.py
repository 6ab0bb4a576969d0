"""CPU per call of the HTTP clients the OpenAI-compatible provider could use, side by side.

    .venv/bin/python bench/provider_client.py [--calls 2000] [--rounds 3]

Each client makes the same chat call (non-streamed, and streamed with 20 content chunks) to the
shared harness's fake upstream (``../shared/bench/gateway_overhead/upstream.py``, on CPU 1), from
this process on CPU 0, one call at a time and 16 at once. The figure is this process's CPU time
per call (``time.process_time``), which is what the client costs the gateway's core; the
upstream's CPU is not in it. Clients, interleaved round by round:

    sdk-httpx     openai.AsyncOpenAI, default transport (httpx)
    sdk-aiohttp   openai.AsyncOpenAI(http_client=openai.DefaultAioHttpClient()), raw responses
                  (needs the ``httpx-aiohttp`` package; skipped without it)
    tierup        functions.adapters.openai_compat.OpenAICompatibleProvider (aiohttp, orjson)

Prints a markdown table; writes bench/results/provider_client.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.gateway_process import health_ok  # noqa: E402

HARNESS = ROOT.parent / "shared" / "bench" / "gateway_overhead"
RESULTS = ROOT / "bench" / "results" / "provider_client.json"
CLIENT_CPU, UPSTREAM_CPU = 0, 1
MESSAGES = [{"role": "system", "content": "You are a helpful assistant."},
            {"role": "user", "content": "Explain in two sentences why gateway overhead matters."}]


def sdk_client(base_url: str, transport: str):
    import openai

    kwargs = {"http_client": openai.DefaultAioHttpClient()} if transport == "aiohttp" else {}
    client = openai.AsyncOpenAI(base_url=base_url, api_key="none", max_retries=0, **kwargs)

    async def complete():
        raw = await client.chat.completions.with_raw_response.create(model="m", messages=MESSAGES, max_tokens=64)
        return raw.parse().choices[0].message.content

    async def stream():
        parts = []
        response = await client.chat.completions.create(model="m", messages=MESSAGES, max_tokens=64, stream=True,
                                                        stream_options={"include_usage": True})
        async for chunk in response:
            if chunk.choices and chunk.choices[0].delta.content:
                parts.append(chunk.choices[0].delta.content)
        return "".join(parts)

    return complete, stream, client.close


def tierup_client(base_url: str):
    from functions.adapters.openai_compat import OpenAICompatibleProvider
    from functions.core.chat import Message, ProviderCall

    provider = OpenAICompatibleProvider(base_url, "none")
    call = ProviderCall(model="m", messages=[Message(**m) for m in MESSAGES], max_tokens=64)

    async def complete():
        return (await provider.complete(call)).text

    async def stream():
        return "".join([d.text async for d in provider.stream(call)])

    return complete, stream, provider.close


def clients(base_url: str) -> dict:
    found = {"sdk-httpx": lambda: sdk_client(base_url, "httpx"), "tierup": lambda: tierup_client(base_url)}
    try:
        import httpx_aiohttp  # noqa: F401

        found["sdk-aiohttp"] = lambda: sdk_client(base_url, "aiohttp")
    except ImportError:
        print("sdk-aiohttp skipped: the httpx-aiohttp package is not installed", file=sys.stderr)
    return found


async def cpu_per_call(make, mode: str, calls: int, concurrency: int) -> float:
    complete, stream, close = make()
    action = complete if mode == "json" else stream
    try:
        for _ in range(20):  # connections, lazy imports, caches
            assert await action()
        per_worker = calls // concurrency

        async def worker():
            for _ in range(per_worker):
                await action()

        started = time.process_time()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return (time.process_time() - started) * 1000 / (per_worker * concurrency)
    finally:
        await close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=2000, help="calls per measurement")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if not (HARNESS / "upstream.py").exists():
        print(f"SKIPPED: the shared harness's fake upstream is absent ({HARNESS / 'upstream.py'})")
        return 0
    if len(os.sched_getaffinity(0)) < 2:
        print("SKIPPED: needs 2 CPUs (client on one, upstream on the other)")
        return 0

    import uvloop

    from tierup.local_stack import free_port

    os.sched_setaffinity(0, {CLIENT_CPU})
    port = free_port()
    upstream = subprocess.Popen(["taskset", "-c", str(UPSTREAM_CPU), sys.executable, str(HARNESS / "upstream.py"),
                                 "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        while not health_ok(f"http://127.0.0.1:{port}"):
            if upstream.poll() is not None:
                raise RuntimeError("the fake upstream did not start")
            time.sleep(0.05)
        found = clients(f"http://127.0.0.1:{port}/v1")
        samples: dict = {}
        for _ in range(args.rounds):
            for mode in ("json", "stream"):
                for concurrency in (1, 16):
                    for name, make in found.items():
                        value = uvloop.run(cpu_per_call(make, mode, args.calls, concurrency))
                        samples.setdefault((name, mode, concurrency), []).append(value)
    finally:
        upstream.terminate()
        upstream.wait(timeout=10)

    rows = [{"client": n, "mode": m, "concurrency": c, "cpu_ms_per_call": statistics.median(v),
             "runs": [round(x, 4) for x in v]} for (n, m, c), v in samples.items()]
    print("| client | mode | concurrency | CPU ms per call (median) | runs |")
    print("|---|---|---:|---:|---|")
    for r in sorted(rows, key=lambda r: (r["mode"], r["concurrency"], r["client"])):
        print(f"| {r['client']} | {r['mode']} | {r['concurrency']} | {r['cpu_ms_per_call']:.3f} "
              f"| {', '.join(f'{x:.3f}' for x in r['runs'])} |")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"benchmark": "provider_client",
                                   "utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                                   "calls": args.calls, "rounds": args.rounds, "results": rows}, indent=1))
    print(f"\nwrote {RESULTS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
