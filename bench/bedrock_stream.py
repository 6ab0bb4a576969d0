"""Reading Bedrock's blocking ConverseStream answers from asyncio: three ways, side by side.

    .venv/bin/python bench/bedrock_stream.py [--streams 1 16 64] [--events 40] [--event-gap-ms 10]

Each stream is a real boto3 ``converse_stream`` call whose answer is served as event-stream
frames on the wire (``tests/fakes/bedrock_wire.py``), with ``--event-gap-ms`` of blocking wait
before each frame, as a model decoding at ~100 tokens/s does; botocore decodes and parses every
frame. The ways of consuming it:

    on-loop       iterate the EventStream inside the coroutine (blocks the event loop)
    to-thread     ``await asyncio.to_thread(next, it)`` per event (the default executor's few
                  threads are shared by every stream)
    thread-pump   ``iterate_in_thread`` (what ``BedrockProvider.stream`` uses): one reader
                  thread per stream, a bounded buffer to the loop

Reported per cell: wall time for all streams, events/s, the event loop's lag (a 1 ms ticker's
worst delay: what every other request on the instance would wait) and CPU per 1000 events.
``on-loop`` is run only up to 16 streams (it serialises them: 64 would take ~26 s).
Prints a markdown table; writes bench/results/bedrock_stream.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import boto3  # noqa: E402

from functions.adapters.thread_stream import iterate_in_thread  # noqa: E402
from tests.fakes.bedrock_wire import ConverseStreamWire  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "bedrock_stream.json"
MODEL = "meta.llama3-1-8b-instruct-v1:0"
ON_LOOP_MAX_STREAMS = 16


def make_client(events: int, gap_s: float):
    client = boto3.client("bedrock-runtime", region_name="us-east-1", aws_access_key_id="bench",
                          aws_secret_access_key="bench")
    answer = [{"messageStart": {"role": "assistant"}}]
    answer += [{"contentBlockDelta": {"delta": {"text": f" tok{i}"}, "contentBlockIndex": 0}} for i in range(events)]
    answer += [{"messageStop": {"stopReason": "end_turn"}},
               {"metadata": {"usage": {"inputTokens": 10, "outputTokens": events, "totalTokens": 10 + events},
                             "metrics": {"latencyMs": 1}}}]
    ConverseStreamWire(client).answer_every_request(answer, gap_s=gap_s)
    return client


def open_stream(client):
    return client.converse_stream(modelId=MODEL, messages=[{"role": "user", "content": [{"text": "hi"}]}],
                                  inferenceConfig={"maxTokens": 64})["stream"]


async def read_on_loop(client) -> int:
    stream = await asyncio.to_thread(open_stream, client)
    return sum(1 for _ in stream)


async def read_to_thread(client) -> int:
    stream = await asyncio.to_thread(open_stream, client)
    iterator = iter(stream)
    done = object()
    count = 0
    while await asyncio.to_thread(next, iterator, done) is not done:
        count += 1
    return count


async def read_thread_pump(client) -> int:
    count = 0
    async for _ in iterate_in_thread(lambda: open_stream(client), close=lambda s: s.close()):
        count += 1
    return count


WAYS = {"on-loop": read_on_loop, "to-thread": read_to_thread, "thread-pump": read_thread_pump}


async def run_cell(way: str, client, streams: int) -> dict:
    lags: list[float] = []
    stop = asyncio.Event()

    async def ticker():
        while not stop.is_set():
            before = time.perf_counter()
            await asyncio.sleep(0.001)
            lags.append(time.perf_counter() - before - 0.001)

    tick = asyncio.create_task(ticker())
    cpu0, wall0 = time.process_time(), time.perf_counter()
    counts = await asyncio.gather(*(WAYS[way](client) for _ in range(streams)))
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    stop.set()
    await tick
    events = sum(counts)
    lags.sort()
    return {"way": way, "streams": streams, "events": events, "wall_s": wall, "events_per_s": events / wall,
            "loop_lag_p99_ms": lags[int(len(lags) * 0.99) - 1] * 1000 if lags else None,
            "loop_lag_max_ms": lags[-1] * 1000 if lags else None,
            "cpu_ms_per_1000_events": cpu * 1000 / events * 1000}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, nargs="+", default=[1, 16, 64])
    parser.add_argument("--events", type=int, default=40)
    parser.add_argument("--event-gap-ms", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    client = make_client(args.events, args.event_gap_ms / 1000)
    asyncio.run(run_cell("thread-pump", client, 1))  # warm botocore's loaders and the thread pool

    rows = []
    for streams in args.streams:
        for way in WAYS:
            if way == "on-loop" and streams > ON_LOOP_MAX_STREAMS:
                continue
            rounds = [asyncio.run(run_cell(way, client, streams)) for _ in range(args.rounds)]
            row = {key: statistics.median(r[key] for r in rounds) if isinstance(rounds[0][key], float)
                   else rounds[0][key] for key in rounds[0]}
            rows.append(row)

    ideal_s = (args.events + 3) * args.event_gap_ms / 1000
    print(f"\n{args.events} text events per stream, {args.event_gap_ms:g} ms blocking gap before each frame "
          f"(one stream alone takes >= {ideal_s:.2f} s); median of {args.rounds} rounds; "
          f"{os.cpu_count()} CPUs\n")
    print("| streams | way | wall s | events/s | loop lag p99 ms | loop lag max ms | CPU ms / 1000 events |")
    print("|---:|---|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['streams']} | {r['way']} | {r['wall_s']:.2f} | {r['events_per_s']:.0f} | "
              f"{r['loop_lag_p99_ms']:.1f} | {r['loop_lag_max_ms']:.1f} | {r['cpu_ms_per_1000_events']:.0f} |")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"params": vars(args), "ideal_stream_s": ideal_s, "rows": rows}, indent=2))
    print(f"\nwrote {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
