"""A JSON value that matches a JSON schema, chosen deterministically from a seed.

What the simulated provider answers structured-output requests and tool calls with, so that
``tierup dev`` shows both working. It covers the schemas clients send in practice (pydantic's
and the openai SDK's strict schemas: objects, arrays, enums, consts, ``$ref``/``$defs``,
``anyOf``, numeric and length bounds, nullable types); what it cannot satisfy (a ``pattern``,
say) is caught by the validator afterwards, as a real model's answer would be.

No I/O here.
"""

from __future__ import annotations

import hashlib
from typing import Any

_WORDS = ("alpha", "bravo", "cedar", "delta", "ember", "fjord", "garnet", "harbor", "indigo", "juniper",
          "kestrel", "lumen", "meadow", "nimbus", "orchid", "pebble")
#: nesting deeper than this is answered with the smallest value that fits (recursive schemas)
MAX_DEPTH = 8


class _Picker:
    """Deterministic choices from a seed (sha256 in counter mode)."""

    def __init__(self, seed: bytes) -> None:
        self._seed = seed
        self._counter = 0

    def number(self, below: int) -> int:
        self._counter += 1
        digest = hashlib.sha256(self._seed + self._counter.to_bytes(4, "big")).digest()
        return int.from_bytes(digest[:4], "big") % max(below, 1)


def example_for(schema: dict | None, seed: bytes) -> Any:
    """A value matching ``schema`` (an empty object when there is none)."""
    if not schema:
        return {}
    return _value(schema, schema, _Picker(seed), 0)


def _resolve(ref: str, root: dict) -> dict:
    node: Any = root
    for part in ref.removeprefix("#/").split("/"):
        if part:
            node = node.get(part.replace("~1", "/").replace("~0", "~"), {}) if isinstance(node, dict) else {}
    return node if isinstance(node, dict) else {}


def _value(schema: dict, root: dict, pick: _Picker, depth: int) -> Any:
    if "$ref" in schema:
        merged = {**_resolve(schema["$ref"], root), **{k: v for k, v in schema.items() if k != "$ref"}}
        return _value(merged, root, pick, depth + 1)
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][pick.number(len(schema["enum"]))]
    for key in ("anyOf", "oneOf"):
        if schema.get(key):
            options = schema[key]
            # past MAX_DEPTH prefer a branch that ends the recursion (null, a scalar)
            chosen = _shallowest(options) if depth >= MAX_DEPTH else options[pick.number(len(options))]
            return _value(chosen, root, pick, depth + 1)
    if schema.get("allOf"):
        merged: dict = {}
        for part in schema["allOf"]:
            merged.update(_resolve(part["$ref"], root) if "$ref" in part else part)
        merged.update({k: v for k, v in schema.items() if k != "allOf"})
        return _value(merged, root, pick, depth + 1)
    kind = schema.get("type")
    if isinstance(kind, list):
        kinds = [k for k in kind if k != "null"] or ["null"]
        kind = kinds[0] if depth < MAX_DEPTH else ("null" if "null" in kind else kinds[0])
    if kind is None:
        kind = "object" if "properties" in schema else "string"
    return _BY_TYPE.get(kind, _string)(schema, root, pick, depth)


def _shallowest(options: list) -> dict:
    for option in options:
        if isinstance(option, dict) and option.get("type") in ("null", "string", "integer", "number", "boolean"):
            return option
    return options[0]


def _object(schema: dict, root: dict, pick: _Picker, depth: int) -> dict:
    properties = schema.get("properties") or {}
    required = set(schema.get("required") or ())
    out = {}
    for name, sub in properties.items():
        # optional properties are filled too, except past the depth limit (strict schemas
        # list every property as required anyway)
        if name in required or depth < MAX_DEPTH:
            out[name] = _value(sub if isinstance(sub, dict) else {}, root, pick, depth + 1)
    return out


def _array(schema: dict, root: dict, pick: _Picker, depth: int) -> list:
    low = int(schema.get("minItems") or 0)
    high = schema.get("maxItems")
    count = max(low, 0 if depth >= MAX_DEPTH else min(2, high if high is not None else 2))
    items = schema.get("items") if isinstance(schema.get("items"), dict) else {}
    prefix = schema.get("prefixItems") or []
    values = [_value(sub, root, pick, depth + 1) for sub in prefix[:count]]
    values += [_value(items, root, pick, depth + 1) for _ in range(count - len(values))]
    return values


def _string(schema: dict, root: dict, pick: _Picker, depth: int) -> str:
    formats = {"date": "2026-01-15", "date-time": "2026-01-15T12:00:00Z", "time": "12:00:00",
               "email": "someone@example.com", "uri": "https://example.com/", "uuid":
               "00000000-0000-4000-8000-000000000000"}
    if schema.get("format") in formats:
        return formats[schema["format"]]
    text = _WORDS[pick.number(len(_WORDS))]
    low = int(schema.get("minLength") or 0)
    while len(text) < low:
        text += " " + _WORDS[pick.number(len(_WORDS))]
    high = schema.get("maxLength")
    return text[:high] if high is not None else text


def _number(schema: dict, root: dict, pick: _Picker, depth: int, integer: bool = False) -> float | int:
    low = schema.get("minimum", schema.get("exclusiveMinimum"))
    high = schema.get("maximum", schema.get("exclusiveMaximum"))
    if low is None:
        low = 0 if high is None or high >= 0 else high - 10
    if high is None:
        high = low + 100
    if "exclusiveMinimum" in schema and "minimum" not in schema:
        low = low + (1 if integer else (high - low) / 100)
    if "exclusiveMaximum" in schema and "maximum" not in schema:
        high = high - (1 if integer else (high - low) / 100)
    span = max(int(high - low), 0)
    value = low + pick.number(span + 1) if integer else low + (high - low) * pick.number(101) / 100
    step = schema.get("multipleOf")
    if step:
        value = (value // step) * step
        if value < low:
            value += step
    return int(value) if integer else float(value)


def _integer(schema: dict, root: dict, pick: _Picker, depth: int) -> int:
    return int(_number(schema, root, pick, depth, integer=True))


_BY_TYPE = {
    "object": _object,
    "array": _array,
    "string": _string,
    "integer": _integer,
    "number": _number,
    "boolean": lambda schema, root, pick, depth: pick.number(2) == 1,
    "null": lambda schema, root, pick, depth: None,
}
