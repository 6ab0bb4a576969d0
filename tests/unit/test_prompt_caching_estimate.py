"""The prompt-caching estimate (``tierup/prompt_caching_estimate.py``) on hand-worked cases, and
the synthetic conversation workload it is run on."""

from __future__ import annotations

import pytest

from functions.core.config import ModelPrice
from functions.core.prompt_cache import PromptCacheSupport
from tierup.conversation_workload import PromptRequest, generate_conversations
from tierup.prompt_caching_estimate import cache_use, estimate_prompt_caching, saving_rows, trace_requests

CLAUDE = PromptCacheSupport(min_tokens=1024, max_points=4, caches_tools=True)
#: Claude 3.5 Haiku on Bedrock: $0.80 in, $4 out, $0.08 cache read, $1.00 cache write
HAIKU = ModelPrice.model_validate({"input-per-mtok": 0.8, "output-per-mtok": 4.0, "cache-read-per-mtok": 0.08,
                                   "cache-write-per-mtok": 1.0})


def turn(at_s: float, history: int, conversation: str = "c1", shared: int = 2000) -> PromptRequest:
    return PromptRequest(at_s=at_s, prefix_id="app", conversation_id=conversation, shared_tokens=shared,
                         history_tokens=history, new_tokens=50, output_tokens=250)


# A conversation on a 2,000-token system prompt:
#   t=0    first turn: the system prompt is written                        read 0,     written 2,000
#   t=60   300 tokens of history, short of a point of its own: reads it    read 2,000, written 0
#   t=120  1,400 tokens of history get a point: read system, write history read 2,000, written 1,400
#   t=500  everything expired at 420 (120 + 300): all written again       read 0,     written 4,000
CONVERSATION = [turn(0, 0), turn(60, 300), turn(120, 1400), turn(500, 2000)]


def test_reads_and_writes_follow_the_cache_points_and_the_five_minute_life():
    assert cache_use(CONVERSATION, CLAUDE) == (4, 2050 + 2350 + 3450 + 4050, 4000, 7400, 1000)


def test_a_conversation_reads_its_own_history_and_another_only_the_shared_prefix():
    requests = [turn(0, 1500), turn(10, 1500, conversation="c2"), turn(20, 1800)]
    # c1 writes 3,500; c2 reads the 2,000 shared and writes its own 1,500 history; c1 then reads its
    # 3,500 and writes the 300 of history since
    assert cache_use(requests, CLAUDE)[2:4] == (2000 + 3500, 3500 + 1500 + 300)


def test_the_bill_with_and_without_caching_at_the_model_s_rates():
    estimate = estimate_prompt_caching(CONVERSATION, HAIKU, CLAUDE)
    # prompt 11,900: without, 11,900 x 0.80 = 9,520; with, 500 plain x 0.80 + 4,000 read x 0.08 +
    # 7,400 written x 1.00 = 400 + 320 + 7,400 = 8,120; answers 1,000 x 4 = 4,000 either way
    assert estimate.input_usd_without == pytest.approx(9520e-6)
    assert estimate.input_usd_with == pytest.approx(8120e-6)
    assert estimate.usd_without == pytest.approx(13520e-6)
    assert estimate.saving == pytest.approx(1 - 12120 / 13520)


def test_a_model_without_a_prompt_cache_saves_nothing():
    estimate = estimate_prompt_caching(CONVERSATION, HAIKU, None)
    assert (estimate.read_tokens, estimate.written_tokens, estimate.saving) == (0, 0, 0.0)


def test_a_trace_without_conversations_shares_only_the_assumed_system_prompt(tmp_path):
    trace = tmp_path / "trace.csv"
    trace.write_text("TIMESTAMP,ContextTokens,GeneratedTokens\n"
                     "2023-11-16 18:15:46.6805900,3000,10\n"
                     "2023-11-16 18:15:50.9951690,500,20\n"
                     "2023-11-16 18:16:01.0000000,2500,30\n")
    requests = trace_requests(trace, shared_tokens=2000)
    assert [(r.at_s, r.shared_tokens, r.new_tokens) for r in requests] == [
        (0.0, 2000, 1000), (pytest.approx(4.314578), 0, 500), (pytest.approx(14.31941), 2000, 500)]
    # the first writes the shared 2,000, the third reads them; the short one shares nothing
    assert cache_use(requests, CLAUDE)[2:4] == (2000, 2000)


def test_the_synthetic_workload_is_fixed_by_its_seed_and_resends_its_history():
    first, again, other = generate_conversations(seed=3), generate_conversations(seed=3), generate_conversations(seed=4)
    assert first == again and first != other
    assert all(a.at_s <= b.at_s for a, b in zip(first, first[1:]))
    by_conversation: dict[str, list[PromptRequest]] = {}
    for request in first:
        by_conversation.setdefault(request.conversation_id, []).append(request)
    for turns in by_conversation.values():
        for before, after in zip(turns, turns[1:]):
            assert after.history_tokens == before.history_tokens + before.new_tokens + before.output_tokens
            assert after.shared_tokens == before.shared_tokens


def test_saving_rows_price_each_model_at_its_configured_rates():
    from tests.support import make_config

    config = make_config()
    rows = saving_rows("one conversation", CONVERSATION, config.pricing,
                       ["us.anthropic.claude-3-5-haiku-20241022-v1:0", "us.meta.llama3-1-8b-instruct-v1:0"])
    # Claude 3.5 Haiku needs 2,048 tokens a point: the 2,000-token system prompt gets none, so the
    # second turn writes 2,300 (system and history) at its history point and the third reads them
    assert [row["model"].split(".")[1] for row in rows] == ["anthropic", "meta"]
    assert rows[0]["read_tokens"] == 2300 and rows[0]["usd_with"] < rows[0]["usd_without"]
    assert rows[1]["read_tokens"] == 0 and rows[1]["saving"] == 0.0
