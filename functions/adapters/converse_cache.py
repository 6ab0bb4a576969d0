"""Cache points in a Converse request: after the stable prefix, for models with a prompt cache.

``converse_mapping`` builds the request and says where the conversation's stable part ends (the
end of the message before the newest one); this module counts the stable parts and marks those
long enough with a ``cachePoint`` block (``core.prompt_cache`` says where and for which models).
Pure: it edits the request dict it is given, nothing else.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

import orjson

from ..core.chat import Message
from ..core.prompt_cache import place_cache_points, prompt_cache_support
from ..core.tokens import TOKENS_PER_MESSAGE, count_tokens, schema_tokens

#: texts shorter than this are counted each time (cheap); longer ones are remembered
_REMEMBER_FROM_CHARS = 512
#: long texts whose counts are remembered: a system prompt or a document comes back every turn
_REMEMBERED_TEXTS = 512
_counts: OrderedDict[int, int] = OrderedDict()
_counts_lock = threading.Lock()


def cache_point() -> dict:
    """A fresh block each time: boto3 must not see one dict in several places of a request."""
    return {"cachePoint": {"type": "default"}}


def mark_cache_points(request: dict, history: list[Message], history_end: tuple[int, int] | None) -> None:
    """Add cache points to ``request`` (the keyword arguments of ``converse``) after its tools, its
    system prompt and its earlier turns, each where the prefix up to it is long enough.

    ``history`` are the client's messages before the newest one (system ones left out) and
    ``history_end`` where they end in ``request["messages"]``: (message index, block index). A
    model without a prompt cache gets none: it would refuse the unknown block.
    """
    support = prompt_cache_support(request["modelId"])
    if support is None:
        return
    tools = request.get("toolConfig", {}).get("tools") or []
    tools_json = orjson.dumps(tools).decode() if tools else ""
    system_texts = [block.get("text", "") for block in request.get("system") or []]
    history_texts = _texts(history) if history_end is not None else []
    # A token is at least one UTF-8 byte: a prefix with fewer bytes than the minimum is short,
    # whatever it holds, and most prompts are decided here without tokenizing them at all.
    if sum(len(text.encode()) for text in (tools_json, *system_texts, *history_texts)) < support.min_tokens:
        return
    tools_tokens = schema_tokens(tools_json) if tools else 0
    system_tokens = sum(_tokens(text) for text in system_texts)
    history_tokens = sum(_tokens(text) + TOKENS_PER_MESSAGE for text in history_texts)
    system = request.get("system") or []
    after_tools, after_system, after_history = place_cache_points(
        [(tools_tokens, support.caches_tools), (system_tokens, True), (history_tokens, history_end is not None)],
        support)
    if after_tools:
        tools.append(cache_point())
    if after_system:
        system.append(cache_point())
    if after_history:
        assert history_end is not None
        message, block = history_end
        request["messages"][message]["content"].insert(block, cache_point())


def _texts(messages: list[Message]) -> list[str]:
    """The text a model reads in ``messages``: their content and their tool calls (images, a few
    hundred tokens each, are left out: a point they would have earned is missed, never wrong)."""
    texts = []
    for message in messages:
        texts.append(message.text)
        texts.extend(call.function.arguments for call in message.tool_calls or ())
    return texts


def _tokens(text: str) -> int:
    """``count_tokens(text)``, remembered for long texts by their hash (a collision would only
    misplace a cache point, which Bedrock then ignores)."""
    if len(text) < _REMEMBER_FROM_CHARS:
        return count_tokens(text)
    key = hash(text)
    with _counts_lock:
        known = _counts.get(key)
        if known is not None:
            _counts.move_to_end(key)
            return known
    counted = count_tokens(text)
    with _counts_lock:
        _counts[key] = counted
        if len(_counts) > _REMEMBERED_TEXTS:
            _counts.popitem(last=False)
    return counted
