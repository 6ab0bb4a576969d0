"""Every number tierup writes to DynamoDB is in plain fixed-point notation: ``2e-08`` (what
``repr`` gives an embedding's cost) cannot be added by moto and stops every later flush."""

from __future__ import annotations

import math
import re

import pytest

from functions.adapters.dynamodb.cache import DynamoCacheStore
from functions.adapters.dynamodb.counters import DynamoCounterStore
from functions.adapters.dynamodb.guardrails import DynamoGuardrailStore
from functions.adapters.dynamodb.keys import DynamoKeyStore
from functions.adapters.dynamodb.ledger_records import DynamoLedgerRecords
from functions.adapters.dynamodb.numbers import number, number_text
from functions.adapters.dynamodb.quota_holds import DynamoQuotaHoldStore
from functions.adapters.dynamodb.route_table import DynamoRouteTable
from functions.adapters.dynamodb.usage_aggregates import DynamoUsageAggregates
from functions.core.keys import ApiKeyRecord
from functions.core.killswitch import AuditEntry, KillSwitchFlag
from functions.core.ports import BucketItem, MinuteUsage, WriteBatch
from functions.core.route_table import RouteEntry
from functions.core.usage_ledger import LedgerEntry

PLAIN = re.compile(r"^-?\d+(\.\d+)?$")
TINY = 2e-08


@pytest.mark.parametrize(("value", "text"), [
    (2e-08, "0.00000002"), (1e-13, "0"), (-0.0, "0"), (0.1 + 0.2, "0.3"), (12.5, "12.5"), (-3e-07, "-0.0000003"),
    (1e21, "1000000000000000000000"), (7, "7"), (2**63 + 1, str(2**63 + 1)), (1_795_000_000.123, "1795000000.123"),
])
def test_numbers_are_plain_fixed_point(value, text):
    assert number_text(value) == text
    assert number(value) == {"N": text}


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_numbers_without_a_dynamodb_form_are_refused_before_any_write(value):
    with pytest.raises(ValueError):
        number(value)


class RecordingClient:
    """Records every call's arguments; answers with what the adapters read back."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict]] = []

    def __getattr__(self, operation):
        def call(**kwargs):
            self.calls.append((operation, kwargs))
            return {"Attributes": {"v": {"N": "1"}, "used": {"N": "1"}}, "Items": [], "Responses": {}}

        return call


def _numbers(value):
    if isinstance(value, dict):
        for key, inner in value.items():
            if key == "N":
                yield inner
            else:
                yield from _numbers(inner)
    elif isinstance(value, (list, tuple)):
        for inner in value:
            yield from _numbers(inner)


def _entry() -> LedgerEntry:
    return LedgerEntry(request_id="r1", at=1_795_000_000.000001, tenant_id="acme", route="embed", tier="serverless",
                       outcome="ok", status=200, error_code=None, cache_status="bypass", prompt_tokens=1,
                       completion_tokens=0, cached_tokens=0, cost_usd=TINY, latency_ms=1e-05)


def test_every_adapter_writes_plain_numbers():
    client = RecordingClient()
    factory = lambda: client  # noqa: E731
    DynamoUsageAggregates(factory, "t").add(
        [MinuteUsage(minute=29_916_666, scope="route:embed", requests=1, cost_usd=TINY, by_tier={"serverless": 1})],
        WriteBatch("w1", 3))
    counters = DynamoCounterStore(factory, "t", clock=lambda: 1_795_000_000.5)
    counters.try_add("k", TINY, 1e-07, 1_795_000_100)
    counters.add("k", -TINY, 1_795_000_100)
    holds = DynamoQuotaHoldStore(factory, "t")
    holds.acquire("k", "h1", TINY, 1e-07, 1_795_000_000.25, 1_795_000_100)
    holds.settle("k", "h1", TINY, 3e-09, 1_795_000_000.25, 1_795_000_100)
    guardrails = DynamoGuardrailStore(factory, "t")
    guardrails.put_flag(KillSwitchFlag(scope="global", action="refuse", reason="r", budget="b", source="s",
                                       engaged_at=1e-05, until=1_795_000_000.000001))
    guardrails.mark_once("alert#x", 1_795_000_100)
    guardrails.append_audit(AuditEntry(at=1_795_000_000.000001, scope="global", what="w", why="y", source="s"))
    cache = DynamoCacheStore(factory, "t")
    cache.add_stats("chat", "2026-01-01", {"hit_exact": 1, "usd_saved": TINY})
    cache.put_answer("x#k", b"{}", "q", 1_795_000_100, scope="acme", route="chat")
    cache.put_bucket_items(["b#1"], BucketItem("s#k", b"\x01", "q", 1_795_000_100), scope="acme", route="chat")
    DynamoLedgerRecords(factory, "t").put_many([_entry()])
    DynamoRouteTable(factory, "t").write_route(RouteEntry(route="chat", since_s=1e-06, release_at_s=TINY))
    DynamoKeyStore(factory, "t").put(ApiKeyRecord(key_hash="h", tenant_id="acme", plan="pro", created_at=1))
    written = [text for _, kwargs in client.calls for text in _numbers(kwargs)]
    assert len(client.calls) >= 13 and len(written) > 30
    assert [text for text in written if not PLAIN.match(text)] == []
