"""Cache points in a Converse request: after the stable prefix, for models with a prompt cache.

``converse_mapping`` builds the request and says where the conversation's stable part ends (the
end of the message before the newest one); this module counts the stable parts and marks those
long enough with a ``cachePoint`` block (``core.prompt_cache`` says where and for which models).
Pure: it edits the request dict it is given, nothing else.
"""

from __future__ import annotations

import orjson

from ..core.chat import Message
from ..core.prompt_cache import place_cache_points, prompt_cache_support
from ..core.tokens import count_request_tokens, count_tokens, schema_tokens


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
    system = request.get("system") or []
    tools_tokens = schema_tokens(orjson.dumps(tools).decode()) if tools else 0
    system_tokens = sum(count_tokens(block.get("text", "")) for block in system)
    history_tokens = count_request_tokens(history) if history and history_end is not None else 0
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
