"""Cache keys and scopes: who may be served what.

A cached answer is only ever served to a request with the same *scope*: the tenant (unless the
route explicitly shares across tenants), the route, the route's models, the system prompt, the
earlier turns of the conversation (tool calls and results, and a hash of each image, included), the
sampling parameters, and whatever else shapes the answer: tools, tool_choice, response_format,
seed, logprobs and the like. The exact key adds the final user message; the semantic cache compares
only the final user message's text, within the scope (its images are part of the scope).

No I/O here.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

import orjson

from ..chat import ChatRequest, Message
from ..config import RouteConfig
from ..config.cache import RESERVED_TENANT_PREFIX

#: the scope of routes that share answers across tenants (``share-across-tenants = true``)
SHARED_SCOPE = "*shared*"

_SPACES = re.compile(r"\s+")


def normalise_text(text: str) -> str:
    """Whitespace runs collapse to one space; case and punctuation are kept (they can matter)."""
    return _SPACES.sub(" ", text).strip()


def reserved_tenant_id(tenant_id: str) -> str | None:
    """Why ``tenant_id`` cannot be a tenant's id, or None when it can: an id spelled like the shared
    scope's marker would read the answers shared across tenants (key creation refuses it)."""
    if tenant_id.startswith(RESERVED_TENANT_PREFIX):
        return (f"tenant id {tenant_id!r} is reserved: ids starting with {RESERVED_TENANT_PREFIX!r} name the "
                f"cache's shared scope ({SHARED_SCOPE})")
    return None


def tenant_scope(route: RouteConfig, tenant_id: str) -> str:
    return SHARED_SCOPE if route.cache.share_across_tenants else tenant_id


def models_of(route: RouteConfig) -> str:
    """The route's models on every tier: a config change of model invalidates its answers."""
    return "|".join(m or "" for m in (route.serverless, route.serverless_gpu, route.overflow))


def _digest(payload: object) -> str:
    return hashlib.sha256(orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)).hexdigest()


@dataclass(frozen=True, slots=True)
class CacheKeys:
    #: who the answer belongs to: a tenant id, or SHARED_SCOPE
    scope: str
    #: hash of everything but the final user message: the semantic cache's partition
    semantic_scope: str
    #: hash of the whole request: the exact cache's key
    exact: str
    #: the final user message, normalised: what the semantic cache embeds and compares
    question: str


#: request fields that shape the answer besides messages and sampling (None/unset ones are left out,
#: so a plain request's keys are what they were before these fields existed)
_SHAPING_FIELDS = ("tools", "tool_choice", "parallel_tool_calls", "response_format", "seed", "presence_penalty",
                   "frequency_penalty", "logprobs", "top_logprobs", "logit_bias", "reasoning_effort")


def _message_key(message: Message) -> tuple:
    """A message as the cache sees it: role and normalised text, plus tool calls, the tool call it
    answers and its images' content hashes when it has them."""
    key: tuple = (message.role, normalise_text(message.text))
    if message.tool_calls:
        key += (tuple((call.id, call.function.name, call.function.arguments) for call in message.tool_calls),)
    if message.tool_call_id:
        key += (message.tool_call_id,)
    images = message.images
    if images:
        # a data URL holds the image's bytes, so its hash is a hash of the content
        key += (tuple(hashlib.sha256(part.image_url.url.encode()).hexdigest() for part in images),)
    return key


def _shaping(chat: ChatRequest) -> dict:
    shaping = {}
    for name in _SHAPING_FIELDS:
        value = getattr(chat, name)
        if value is None:
            continue
        if name == "tools":
            value = [tool.model_dump(mode="json", by_alias=True) for tool in value]
        elif hasattr(value, "model_dump"):  # tool_choice by name, response_format
            value = value.model_dump(mode="json", by_alias=True)
        shaping[name] = value
    return shaping


def cache_keys(route_name: str, route: RouteConfig, tenant_id: str, chat: ChatRequest,
               max_tokens: int) -> CacheKeys:
    scope = tenant_scope(route, tenant_id)
    messages = [_message_key(m) for m in chat.messages]
    last_user = max(i for i, m in enumerate(chat.messages) if m.role == "user")
    question = messages[last_user][1]
    context = messages[:last_user] + [("after", m) for m in messages[last_user + 1:]]
    if len(messages[last_user]) > 2:  # the question's images belong to the scope; its text is the question
        context.append(("question", messages[last_user][2:]))
    sampling = {"temperature": chat.temperature, "top_p": chat.top_p, "stop": chat.stop_sequences}
    base = {"scope": scope, "route": route_name, "models": models_of(route), "context": context,
            "sampling": sampling}
    if route.cache.share_across_tenants:
        # the sharing setting is part of the key, so that a tenant whose id equals the shared marker
        # (refused at key creation, but perhaps created before) never meets the shared answers, in
        # either direction, when a route's setting changes; unshared routes keep their keys
        base["shared"] = True
    shaping = _shaping(chat)
    if shaping:
        base["shaping"] = shaping
    semantic_scope = _digest(base)
    exact = _digest({**base, "question": question, "max_tokens": max_tokens})
    return CacheKeys(scope=scope, semantic_scope=semantic_scope, exact=exact, question=question)


@dataclass(frozen=True, slots=True)
class CachePlan:
    """What the cache may do for one request."""

    lookup: bool
    store: bool
    exact: bool
    semantic: bool

    @property
    def active(self) -> bool:
        return self.lookup or self.store


BYPASS = CachePlan(lookup=False, store=False, exact=False, semantic=False)


def opted_out(headers: dict[str, str], chat: ChatRequest) -> tuple[bool, bool]:
    """(skip lookup, skip store) from ``Cache-Control`` and the body's ``"tierup": {"cache": false}``.

    ``no-cache`` means "do not answer from the cache" (the fresh answer may still be stored);
    ``no-store`` and the body field mean "leave the cache alone entirely".
    """
    directives = {d.strip().lower() for d in headers.get("cache-control", "").split(",")}
    extra = (chat.model_extra or {}).get("tierup")
    body_off = isinstance(extra, dict) and extra.get("cache") is False
    no_store = body_off or "no-store" in directives
    return no_store or "no-cache" in directives, no_store


def plan_cache(route: RouteConfig, chat: ChatRequest, headers: dict[str, str]) -> CachePlan:
    settings = route.cache
    if not (settings.exact or settings.semantic):
        return BYPASS
    if not (chat.deterministic or settings.cache_nondeterministic):
        return BYPASS
    skip_lookup, skip_store = opted_out(headers, chat)
    return CachePlan(lookup=not skip_lookup, store=not skip_store, exact=settings.exact,
                     semantic=settings.semantic)
