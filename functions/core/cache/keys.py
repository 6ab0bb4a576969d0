"""Cache keys and scopes: who may be served what.

A cached answer is only ever served to a request with the same *scope*: the tenant (unless the
route explicitly shares across tenants), the route, the route's models, the system prompt, the
earlier turns of the conversation and the sampling parameters. The exact key adds the final user
message; the semantic cache compares only the final user message, within the scope.

No I/O here.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

import orjson

from ..chat import ChatRequest
from ..config import RouteConfig

#: the scope of routes that share answers across tenants (``share-across-tenants = true``)
SHARED_SCOPE = "*shared*"

_SPACES = re.compile(r"\s+")


def normalise_text(text: str) -> str:
    """Whitespace runs collapse to one space; case and punctuation are kept (they can matter)."""
    return _SPACES.sub(" ", text).strip()


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


def cache_keys(route_name: str, route: RouteConfig, tenant_id: str, chat: ChatRequest,
               max_tokens: int) -> CacheKeys:
    scope = tenant_scope(route, tenant_id)
    messages = [(m.role, normalise_text(m.text)) for m in chat.messages]
    last_user = max(i for i, m in enumerate(chat.messages) if m.role == "user")
    question = messages[last_user][1]
    context = messages[:last_user] + [("after", m) for m in messages[last_user + 1:]]
    sampling = {"temperature": chat.temperature, "top_p": chat.top_p, "stop": chat.stop_sequences}
    base = {"scope": scope, "route": route_name, "models": models_of(route), "context": context,
            "sampling": sampling}
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
