"""The near-miss suite (bench/data/cache_suite.jsonl) is what its script builds, and the guards
hold on it: they block look-alikes that must not share an answer and let paraphrases through."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def suite():
    spec = importlib.util.spec_from_file_location("cache_suite", ROOT / "bench/cache_suite.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_suite_file_is_reproducible_and_big_enough(suite):
    assert suite.check(suite.load()) == []


def test_guards_on_the_suite(suite):
    rows = suite.guard_table(suite.load())
    overall = {key: sum(r[key] for r in rows if r["split"] == "all")
               for key in ("differ", "differ_blocked", "share", "share_blocked")}
    assert overall["differ_blocked"] >= 0.95 * overall["differ"]
    assert overall["share_blocked"] <= 0.05 * overall["share"]
    never = [r for r in rows if r["split"] == "all" and r["shape"] in ("deictic", "order", "affixal negation")]
    assert all(r["differ_blocked"] == r["differ"] for r in never)
