"""The response cache on DynamoDB (``cache`` table: pk, sk, TTL on ``expires_at``).

Item layout (one table, three item types):

    pk = "x#<exact key>" | "s#<entry id>"   sk = "answer"          the answer (B), question, TTL
    pk = "b#<scope>#<table>#<bucket>"       sk = "<ms>#<entry id>" an LSH bucket listing (vector)
    pk = "stats#<route>"                    sk = "day#YYYY-MM-DD"   hit/miss/saved counters
    pk = "calib#<route>#<embedder>"         sk = "bins"             right/wrong counts per similarity
                                                                    bin (r<bin>, w<bin>), no TTL

An answer item may also hold ``wrong_at``: the highest similarity at which it answered a paraphrase
wrongly. Every item but the counters and calibrations carries ``tenant`` and ``route`` so that ``purge`` can find it.
Bucket queries read newest first with a ``Limit``: the read bound of a lookup.
This module never decides what is servable; it only stores and fetches.
"""

from __future__ import annotations

import time

from botocore.exceptions import ClientError

from ...core.errors import CacheError
from ...core.ports import BucketItem
from .numbers import number
from .storage_errors import translates_storage_errors
from .table_store import TableStore

ANSWER_SK = "answer"
CALIBRATION_SK = "bins"
#: counters are kept this long
STATS_TTL_S = 400 * 86400


class DynamoCacheStore(TableStore):
    @translates_storage_errors("cache")
    def get_answer(self, entry_key: str) -> tuple[bytes, str, int, float] | None:
        item = self._client.get_item(TableName=self._table, Key={"pk": {"S": entry_key}, "sk": {"S": ANSWER_SK}},
                                     ProjectionExpression="body, question, expires_at, wrong_at").get("Item")
        if not item:
            return None
        wrong_at = float(item["wrong_at"]["N"]) if "wrong_at" in item else 0.0
        return item["body"]["B"], item["question"]["S"], int(item["expires_at"]["N"]), wrong_at

    @translates_storage_errors("cache")
    def mark_wrong(self, entry_key: str, similarity: float) -> None:
        try:
            self._client.update_item(
                TableName=self._table, Key={"pk": {"S": entry_key}, "sk": {"S": ANSWER_SK}},
                UpdateExpression="SET wrong_at = :s",
                ConditionExpression="attribute_exists(pk) AND (attribute_not_exists(wrong_at) OR wrong_at < :s)",
                ExpressionAttributeValues={":s": number(round(similarity, 4))})
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise

    @translates_storage_errors("cache")
    def add_calibration(self, calibration_key: str, right: dict[int, float], wrong: dict[int, float]) -> None:
        counts = {f"r{i}": c for i, c in right.items()} | {f"w{i}": c for i, c in wrong.items()}
        if not counts:
            return
        names = {f"#c{i}": name for i, name in enumerate(counts)}
        values = {f":c{i}": number(v) for i, v in enumerate(counts.values())}
        adds = ", ".join(f"#c{i} :c{i}" for i in range(len(counts)))
        self._client.update_item(TableName=self._table, Key={"pk": {"S": f"calib#{calibration_key}"},
                                                             "sk": {"S": CALIBRATION_SK}},
                                 UpdateExpression=f"ADD {adds}", ExpressionAttributeNames=names,
                                 ExpressionAttributeValues=values)

    @translates_storage_errors("cache")
    def read_calibration(self, calibration_key: str) -> tuple[dict[int, float], dict[int, float]]:
        item = self._client.get_item(TableName=self._table, Key={"pk": {"S": f"calib#{calibration_key}"},
                                                                 "sk": {"S": CALIBRATION_SK}}).get("Item")
        return _bins(item or {})

    @translates_storage_errors("cache")
    def read_calibrations(self) -> dict[str, tuple[dict[int, float], dict[int, float]]]:
        return {item["pk"]["S"].removeprefix("calib#"): _bins(item)
                for item in self._scan("begins_with(pk, :p)", {":p": {"S": "calib#"}})}

    @translates_storage_errors("cache")
    def put_answer(self, entry_key: str, body: bytes, question: str, expires_at: int, *,
                   scope: str, route: str) -> None:
        self._client.put_item(TableName=self._table, Item={
            "pk": {"S": entry_key}, "sk": {"S": ANSWER_SK}, "body": {"B": body}, "question": {"S": question},
            "expires_at": number(expires_at), "tenant": {"S": scope}, "route": {"S": route}})

    @translates_storage_errors("cache")
    def put_bucket_items(self, bucket_keys: list[str], item: BucketItem, *, scope: str, route: str) -> None:
        sort_key = f"{int(time.time() * 1000):013d}#{item.entry_key}"
        requests = [{"PutRequest": {"Item": {
            "pk": {"S": key}, "sk": {"S": sort_key}, "entry": {"S": item.entry_key}, "vector": {"B": item.vector},
            "question": {"S": item.question}, "expires_at": number(item.expires_at),
            "tenant": {"S": scope}, "route": {"S": route}}}} for key in bucket_keys]
        self._batch_write(requests)

    @translates_storage_errors("cache")
    def query_bucket(self, bucket_key: str, limit: int) -> list[BucketItem]:
        items = self._client.query(
            TableName=self._table, KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": bucket_key}}, ScanIndexForward=False, Limit=limit,
            ProjectionExpression="entry, vector, question, expires_at")["Items"]
        return [BucketItem(entry_key=i["entry"]["S"], vector=i["vector"]["B"], question=i["question"]["S"],
                           expires_at=int(i["expires_at"]["N"])) for i in items]

    @translates_storage_errors("cache")
    def add_stats(self, route: str, day: str, counts: dict[str, float]) -> None:
        names = {f"#c{i}": name for i, name in enumerate(counts)}
        values = {f":c{i}": number(v) for i, v in enumerate(counts.values())}
        values[":ttl"] = number(int(time.time()) + STATS_TTL_S)
        adds = ", ".join(f"#c{i} :c{i}" for i in range(len(counts)))
        self._client.update_item(TableName=self._table, Key={"pk": {"S": f"stats#{route}"}, "sk": {"S": f"day#{day}"}},
                                 UpdateExpression=f"ADD {adds} SET expires_at = :ttl",
                                 ExpressionAttributeNames=names, ExpressionAttributeValues=values)

    @translates_storage_errors("cache")
    def read_stats(self, route: str | None = None) -> dict[str, dict[str, float]]:
        totals: dict[str, dict[str, float]] = {}
        for item in self._scan("begins_with(pk, :p)", {":p": {"S": f"stats#{route}" if route else "stats#"}}):
            name = item["pk"]["S"].removeprefix("stats#")
            if route and name != route:
                continue
            row = totals.setdefault(name, {})
            for attr, value in item.items():
                if "N" in value and attr != "expires_at":
                    row[attr] = row.get(attr, 0.0) + float(value["N"])
        return totals

    @translates_storage_errors("cache")
    def purge(self, scope: str | None = None, route: str | None = None, *, dry_run: bool = False) -> int:
        conditions, values = ["attribute_exists(tenant)"], {}
        if scope is not None:
            conditions.append("tenant = :t")
            values[":t"] = {"S": scope}
        if route is not None:
            conditions.append("#r = :r")
            values[":r"] = {"S": route}
        keys = [{"pk": i["pk"], "sk": i["sk"]} for i in self._scan(" AND ".join(conditions), values or None,
                                                                   names={"#r": "route"} if route else None)]
        if not dry_run:
            self._batch_write([{"DeleteRequest": {"Key": key}} for key in keys])
        return len(keys)

    # -- helpers ------------------------------------------------------------------------

    def _scan(self, condition: str, values: dict | None, names: dict | None = None):
        kwargs = {"TableName": self._table, "FilterExpression": condition}
        if values:
            kwargs["ExpressionAttributeValues"] = values
        if names:
            kwargs["ExpressionAttributeNames"] = names
        for page in self._client.get_paginator("scan").paginate(**kwargs):
            yield from page["Items"]

    def _batch_write(self, requests: list[dict]) -> None:
        client = self._client
        for start in range(0, len(requests), 25):
            pending = {self._table: requests[start:start + 25]}
            for attempt in range(8):
                unprocessed = client.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}
                if not unprocessed:
                    break
                pending = unprocessed
                time.sleep(0.05 * 2 ** attempt)  # DynamoDB's advice for unprocessed items: back off
            else:
                raise CacheError("DynamoDB left cache writes unprocessed after retries")


def _bins(item: dict) -> tuple[dict[int, float], dict[int, float]]:
    """(right, wrong) counts per bin from a calibration item's ``r<bin>`` / ``w<bin>`` attributes."""
    right, wrong = {}, {}
    for attr, value in item.items():
        if "N" in value and attr[:1] in ("r", "w") and attr[1:].isdigit():
            (right if attr[0] == "r" else wrong)[int(attr[1:])] = float(value["N"])
    return right, wrong
