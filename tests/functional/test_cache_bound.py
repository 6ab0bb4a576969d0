"""A route with ``max-wrong-hit-rate``, as a client sees it: the openai SDK against the gateway on
moto server, the local all-MiniLM-L6-v2 embedder, and an OpenAI-compatible upstream on 127.0.0.1
whose answers are known (questions about the same thing get the same answer), so that every
semantic hit can be judged."""

from __future__ import annotations

import time

import pytest
from aiohttp import web

from functions.adapters.dynamodb.cache import DynamoCacheStore
from functions.adapters.dynamodb.ledger_records import DynamoLedgerRecords
from functions.core.cache.calibration import bin_of
from functions.core.tables import CACHE, USAGE
from functions.gateway.cache_calibration import calibration_key
from functions.gateway.composition import build_gateway
from tierup.local_stack import GatewayServer, create_key

from ..openai_upstream import ScriptedUpstream
from ..support import openai_client

MODEL = "known-answers"
#: things a support bot is asked to export; each has its own answer
THINGS = ["invoices", "contacts", "orders", "calendar events", "photos", "playlists", "bookmarks", "passwords",
          "timesheets", "expense reports", "customer reviews", "survey results", "chat history", "tax forms",
          "shipping labels", "payroll records", "inventory counts", "meeting notes", "email templates",
          "training videos", "sales leads", "product images", "budget plans", "purchase orders"]
#: ways to ask the same thing (the answer depends only on the thing)
FORMS = ["How do I export my {} to CSV?", "How can I export my {} as a CSV file?", "how do i export my {} to csv",
         "What is the way to export my {} to CSV?"]


def truth(question: str) -> str:
    """The one right answer: the thing the question is about decides it."""
    for thing in sorted(THINGS, key=len, reverse=True):
        if thing in question.lower():
            return f"Open {thing}, then choose Export > CSV."
    return "I do not know."


class KnownAnswers(ScriptedUpstream):
    async def _chat(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        question = body["messages"][-1]["content"]
        self.requests.append({"body": body})
        answer = truth(question if isinstance(question, str) else question[0]["text"])
        return web.json_response({"id": "c", "object": "chat.completion", "model": MODEL, "choices": [
            {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": answer}}],
            "usage": {"prompt_tokens": 20, "completion_tokens": 9, "total_tokens": 29}})


@pytest.fixture
def bounded(make_runtime, monkeypatch):
    """The gateway on a bounded route (stats and observations written at once); stop() flushes."""
    import functions.gateway.cache_calibration as calibration
    import functions.gateway.cache_stats as stats

    monkeypatch.setattr(calibration, "FLUSH_S", 0.0)
    monkeypatch.setattr(stats, "STATS_FLUSH_S", 0.0)
    upstream = KnownAnswers().start()
    servers = []

    def start(cache: dict, seed=None):
        runtime = make_runtime({"tiers": {"serverless": {"provider": "openai", "base-url": upstream.url}},
                                "routes": {"chat": {"serverless": MODEL, "cache": {
                                    "exact": True, "semantic": True, **cache}}},
                                "cache": {"embedder": "local"},
                                "pricing": {"models": {MODEL: {"input-per-mtok": 1.0, "output-per-mtok": 4.0}}}},
                               environ={"TIERUP_PROVIDER": ""})
        store = DynamoCacheStore(runtime.dynamodb, runtime.table(CACHE))
        if seed:
            store.add_calibration(calibration_key("chat", "all-MiniLM-L6-v2"), *seed)
        server = GatewayServer(build_gateway(runtime)).start()
        servers.append(server)
        client = {t: openai_client(server.url, create_key(runtime, t, "pro")) for t in ("acme", "globex")}
        return type("Bounded", (), {"runtime": runtime, "store": store, "server": server, "client": client,
                                    "upstream": upstream})

    yield start
    for server in servers:
        server.stop()
    upstream.stop()


def ask(client, question: str):
    raw = client.chat.completions.with_raw_response.create(
        model="chat", messages=[{"role": "user", "content": question}], temperature=0)
    return raw.headers["x-tierup-cache"], raw.parse()


def test_calibration_updates_the_estimate_and_is_charged(bounded):
    # A threshold already proven at 0.90 and up; every would-be hit is checked (share 1).
    gw = bounded({"max-wrong-hit-rate": 0.05, "calibration-share": 1.0},
                 seed=({bin_of(0.90): 300.0}, {}))
    acme = gw.client["acme"]
    assert ask(acme, FORMS[0].format("invoices"))[0] == "miss"
    calls = len(gw.upstream.requests)
    status, answer = ask(acme, FORMS[1].format("invoices"))
    assert status == "calibration"                                   # the model was asked anyway ...
    assert len(gw.upstream.requests) == calls + 1
    assert answer.usage.prompt_tokens == 20 and answer.usage.completion_tokens == 9   # ... and billed
    gw.server.stop()  # flushes observations, counters and the ledger
    right, wrong = gw.store.read_calibration(calibration_key("chat", "all-MiniLM-L6-v2"))
    assert sum(right.values()) == 301 and not wrong                  # the estimate moved
    stats = gw.store.read_stats("chat")["chat"]
    assert stats["calibration"] == 1 and stats["calibration_tokens"] == 29 and stats["observed_right"] == 1
    day = time.strftime("%Y-%m-%d", time.gmtime())
    records = DynamoLedgerRecords(gw.runtime.dynamodb, gw.runtime.table(USAGE)).day("acme", day)
    calibration = [r for r in records if r.cache_status == "calibration"]
    assert len(calibration) == 1 and calibration[0].provider_tokens == (20, 9) and calibration[0].cost_usd > 0


def test_the_bound_holds_on_a_stream_with_known_answers(bounded):
    """Learn from the first half of the things, then ask about the rest: every semantic hit served
    is judged against the known answer; the share of wrong ones stays within the bound."""
    bound = 0.1
    gw = bounded({"max-wrong-hit-rate": bound, "calibration-share": 0.1, "calibration-floor": 0.7})
    acme = gw.client["acme"]
    served = wrong = 0
    for thing in THINGS:
        for form in FORMS:
            status, answer = ask(acme, form.format(thing))
            if status == "hit-semantic":
                served += 1
                wrong += answer.choices[0].message.content != truth(form.format(thing))
    gw.server.stop()
    right_seen, wrong_seen = gw.store.read_calibration(calibration_key("chat", "all-MiniLM-L6-v2"))
    assert sum(right_seen.values()) + sum(wrong_seen.values()) > 20  # it learnt from the stream
    assert served > 0, "no semantic hit at all: the bound was kept by serving nothing"
    assert wrong / served <= bound, (wrong, served)


def test_cross_tenant_probes_stay_misses(bounded):
    # Everything is proven servable; still, another tenant's cache is never consulted.
    gw = bounded({"max-wrong-hit-rate": 0.05, "calibration-share": 0.0}, seed=({bin_of(0.80): 1000.0}, {}))
    acme, globex = gw.client["acme"], gw.client["globex"]
    for thing in THINGS[:4]:
        assert ask(acme, FORMS[0].format(thing))[0] == "miss"
    assert ask(acme, FORMS[1].format(THINGS[0]))[0] == "hit-semantic"  # the paraphrase is servable
    for thing in THINGS[:4]:
        for form in FORMS[:2]:
            status, answer = ask(globex, form.format(thing))
            assert status in ("miss", "hit-semantic", "hit-exact")
            if form == FORMS[0]:  # globex's first question on each thing: nothing of its own yet
                assert status == "miss"
