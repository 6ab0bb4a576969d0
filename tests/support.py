"""Helpers for tests: configs derived from the example tierup.toml, and an openai client."""

from __future__ import annotations

import copy
import threading
import tomllib
import uuid
from pathlib import Path
from typing import Self

from functions.core.config import TierupConfig, parse_config

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE_CONFIG = ROOT / "tierup.toml"

#: the simulated provider at full speed, so tests wait on nothing but the code under test
FAST_SIMULATED = {"ttft-ms": 0, "tokens-per-s": 1_000_000, "answer-tokens": 16}


def deep_merge(base: dict, overrides: dict) -> dict:
    merged = copy.deepcopy(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def example_config_data() -> dict:
    return tomllib.loads(EXAMPLE_CONFIG.read_text())


#: the GPU economics the policy tests' hand-computed expectations assume (an L40S at the figures
#: tierup.toml quoted before its calibration, no CPU or memory billed): the policy's behaviour is
#: tested on fixed numbers, not on whatever tierup.toml is calibrated to
POLICY_TEST_ECONOMICS = {"pricing": {"cpu-usd-per-core-s": 0.0, "memory-usd-per-gib-s": 0.0, "gpus": {
    "L40S": {"prefill-tokens-per-s": 20000, "decode-tokens-per-s": 2500, "max-concurrent-requests": 64}}}}


def make_config(overrides: dict | None = None, *, fast: bool = True) -> TierupConfig:
    """The example config, with a unique project name (so tables never collide) and overrides."""
    data = example_config_data()
    data["project"] = "t" + uuid.uuid4().hex[:10]
    if fast:
        data["simulated"] = dict(FAST_SIMULATED)
    return parse_config(deep_merge(data, overrides or {}))


def openai_client(base_url: str, key: str, **kwargs):
    from openai import OpenAI

    return OpenAI(base_url=f"{base_url}/v1", api_key=key, max_retries=0, **kwargs)


def cli_config(tmp_path: Path, runtime, monkeypatch, moto_endpoint: str, *, columns: int = 250) -> Path:
    """The example config file renamed to ``runtime``'s project, so the ``tierup`` CLI finds the
    tables the test wrote on the same moto server; the terminal is wide enough for its tables."""
    config_file = tmp_path / "tierup.toml"
    config_file.write_text(EXAMPLE_CONFIG.read_text().replace('project = "tierup"',
                                                              f'project = "{runtime.config.project}"', 1))
    monkeypatch.setenv("TIERUP_AWS_ENDPOINT", moto_endpoint)
    monkeypatch.setenv("COLUMNS", str(columns))
    return config_file


def assert_streams_and_refuses_unknown_keys(url: str, key: str) -> None:
    """What the gateway must do for the openai SDK however it was started (Lambda's start script,
    a container task): stream a chat completion in chunks, and answer an unknown key with 401."""
    import pytest

    chunks = list(openai_client(url, key).chat.completions.create(model="chat", stream=True,
                                                                  messages=[{"role": "user", "content": "Hello"}]))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.startswith("[simulated]")
    assert len(chunks) > 2  # streamed, not one buffered body

    with pytest.raises(Exception) as refused:
        openai_client(url, "tu-not-a-key").chat.completions.create(
            model="chat", messages=[{"role": "user", "content": "Hello"}])
    assert getattr(refused.value, "status_code", None) == 401


class BackgroundLoad:
    """Client threads that send requests for as long as a ``with`` block runs. A subclass adds its
    senders (loops that run until ``self._stop`` is set) and notes what they saw."""

    #: how long leaving the block waits for each thread's request in flight
    join_timeout_s = 10.0

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def add_sender(self, send, *args) -> None:
        self._threads.append(threading.Thread(target=send, args=args, daemon=True))

    def __enter__(self) -> Self:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=self.join_timeout_s)
