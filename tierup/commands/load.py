"""``tierup load``: drive a route at a steady request rate with the openai SDK, and show which tier
served each second's requests (``x-tierup-tier``), so a promotion and a demotion can be watched.

Open loop: requests start on schedule (``rate`` per second) whether or not earlier ones have
answered, as real clients do; a bounded pool caps how many are in flight at once.
"""

from __future__ import annotations

import os
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import typer
from rich.table import Table

from .common import console, err_console

QUESTION = "Summarise why reserved GPUs pay off only under sustained load."


def prompt_messages(prompt_words: int) -> list[dict]:
    """A question preceded by ``prompt_words`` words of context: prompt size drives token cost."""
    context = " ".join(f"fact{i % 97}" for i in range(prompt_words))
    return [{"role": "user", "content": f"{context}\n\n{QUESTION}" if prompt_words else QUESTION}]


class LoadTally:
    """Outcomes per second of the run, thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.by_tier: Counter = Counter()
        self.errors: Counter = Counter()
        self.spills: Counter = Counter()
        self.latencies: list[float] = []
        self.window: Counter = Counter()

    def ok(self, tier: str, spill: str | None, latency_s: float) -> None:
        with self._lock:
            self.by_tier[tier] += 1
            self.window[tier] += 1
            if spill:
                self.spills[spill] += 1
            self.latencies.append(latency_s)

    def failed(self, reason: str) -> None:
        with self._lock:
            self.errors[reason] += 1
            self.window["error"] += 1

    def take_window(self) -> Counter:
        with self._lock:
            window, self.window = self.window, Counter()
        return window


def _send(client, route: str, messages: list[dict], max_tokens: int, tally: LoadTally) -> None:
    import openai

    started = time.perf_counter()
    try:
        raw = client.chat.completions.with_raw_response.create(model=route, messages=messages,
                                                               max_tokens=max_tokens)
        tally.ok(raw.headers.get("x-tierup-tier", "?"), raw.headers.get("x-tierup-spill"),
                 time.perf_counter() - started)
    except openai.APIStatusError as exc:
        tally.failed(str(exc.status_code))
    except openai.APIConnectionError:
        tally.failed("connection")


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else 0.0


def register(app: typer.Typer) -> None:
    @app.command()
    def load(rate: float = typer.Option(5.0, "--rate", min=0.01, help="requests per second"),
             duration: float = typer.Option(60.0, "--duration", min=0.1, help="seconds to run"),
             route: str = typer.Option("chat", "--route", help="route (the OpenAI model name)"),
             max_tokens: int = typer.Option(32, "--max-tokens", min=1),
             prompt_words: int = typer.Option(200, "--prompt-words", min=0, help="context words per prompt"),
             concurrency: int = typer.Option(64, "--concurrency", min=1, help="most requests in flight"),
             base_url: str = typer.Option(None, "--base-url",
                                          help="default: $OPENAI_BASE_URL, else the local gateway"),
             api_key: str = typer.Option(None, "--api-key", help="default: $OPENAI_API_KEY")) -> None:
        """Send ROUTE requests at RATE per second for DURATION seconds; print tiers per second."""
        from openai import OpenAI

        key = api_key or os.environ.get("OPENAI_API_KEY")
        if not key:
            err_console.print("[red]no API key[/red]: pass --api-key or export OPENAI_API_KEY "
                              "(tierup dev prints one)")
            raise typer.Exit(2)
        url = base_url or os.environ.get("OPENAI_BASE_URL") or "http://127.0.0.1:8000/v1"
        client = OpenAI(base_url=url, api_key=key, max_retries=0, timeout=60)
        tally = LoadTally()
        messages = prompt_messages(prompt_words)
        console.print(f"{rate:g} req/s to route [bold]{route}[/bold] at {url} for {duration:g} s")
        start = time.monotonic()
        next_report = start + 1
        sent = 0
        with ThreadPoolExecutor(max_workers=concurrency) as pool:
            while (now := time.monotonic()) < start + duration:
                due = int((now - start) * rate) + 1
                for _ in range(due - sent):
                    pool.submit(_send, client, route, messages, max_tokens, tally)
                sent = max(sent, due)
                if now >= next_report:
                    window = tally.take_window()
                    counts = "  ".join(f"{k}={v}" for k, v in sorted(window.items()))
                    console.print(f"t+{now - start:4.0f}s  {counts}")
                    next_report += 1
                time.sleep(min(0.05, max(0.0, start + sent / rate - time.monotonic())))
        table = Table("tier", "requests", title=f"{sent} requests sent")
        for tier, count in tally.by_tier.most_common():
            table.add_row(tier, str(count))
        for reason, count in tally.errors.most_common():
            table.add_row(f"error {reason}", str(count))
        console.print(table)
        if tally.spills:
            console.print("spilled: " + ", ".join(f"{k} {v}" for k, v in tally.spills.items()))
        console.print(f"latency p50 {_percentile(tally.latencies, 0.5) * 1000:.0f} ms, "
                      f"p99 {_percentile(tally.latencies, 0.99) * 1000:.0f} ms")
