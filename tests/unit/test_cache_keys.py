"""Cache keys and scopes: what makes two requests the same, and who may share an answer."""

from __future__ import annotations

from functions.core.cache.keys import SHARED_SCOPE, cache_keys, opted_out, plan_cache
from functions.core.chat import ChatRequest
from tests.support import make_config

CONFIG = make_config()
ROUTE = CONFIG.routes["chat"]


def chat(question="How do I reset my password?", system="be brief", **extra) -> ChatRequest:
    messages = [{"role": "system", "content": system}, {"role": "user", "content": question}]
    return ChatRequest.model_validate({"model": "chat", "messages": messages, "temperature": 0, **extra})


def keys(request=None, tenant="acme", route=ROUTE, max_tokens=512):
    return cache_keys("chat", route, tenant, request or chat(), max_tokens)


def test_same_request_same_key_and_whitespace_does_not_matter():
    assert keys().exact == keys(chat("  How do I   reset my password?\n")).exact


def test_tenant_is_part_of_every_key():
    assert keys(tenant="acme").exact != keys(tenant="globex").exact
    assert keys(tenant="acme").semantic_scope != keys(tenant="globex").semantic_scope


def test_sharing_across_tenants_only_where_the_route_opts_in():
    shared = ROUTE.model_copy(update={"cache": ROUTE.cache.model_copy(update={"share_across_tenants": True})})
    assert keys(tenant="acme", route=shared).exact == keys(tenant="globex", route=shared).exact
    assert keys(route=shared).scope == SHARED_SCOPE


def test_system_prompt_sampling_and_max_tokens_change_the_key():
    base = keys()
    assert keys(chat(system="be verbose")).exact != base.exact
    assert keys(chat(system="be verbose")).semantic_scope != base.semantic_scope
    assert keys(chat(top_p=0.5)).exact != base.exact
    assert keys(chat(stop=["\n"])).semantic_scope != base.semantic_scope
    assert keys(max_tokens=16).exact != base.exact
    # The semantic scope leaves out the question (paraphrases share it) and max_tokens.
    assert keys(chat("Reset password how?")).semantic_scope == base.semantic_scope
    assert keys(max_tokens=16).semantic_scope == base.semantic_scope


def test_route_model_change_invalidates():
    other = ROUTE.model_copy(update={"serverless": "meta.llama3-1-70b-instruct-v1:0"})
    assert keys(route=other).exact != keys().exact


def test_earlier_turns_are_part_of_the_scope():
    def convo(previous):
        return ChatRequest.model_validate({"model": "chat", "temperature": 0, "messages": [
            {"role": "user", "content": previous}, {"role": "assistant", "content": "ok"},
            {"role": "user", "content": "and then?"}]})

    assert keys(convo("step one")).semantic_scope != keys(convo("step two")).semantic_scope
    assert keys(convo("step one")).question == "and then?"


def test_plan_needs_determinism_unless_the_route_opts_in():
    assert plan_cache(ROUTE, chat(), {}).lookup
    warm = chat(temperature=0.7)
    assert not plan_cache(ROUTE, warm, {}).active
    opt_in = ROUTE.model_copy(update={"cache": ROUTE.cache.model_copy(update={"cache_nondeterministic": True})})
    assert plan_cache(opt_in, warm, {}).lookup


def test_opt_outs():
    assert opted_out({"cache-control": "no-cache"}, chat()) == (True, False)
    assert opted_out({"cache-control": "max-age=0, no-store"}, chat()) == (True, True)
    assert opted_out({}, chat(tierup={"cache": False})) == (True, True)
    assert opted_out({}, chat(tierup={"cache": True})) == (False, False)
    assert not plan_cache(ROUTE, chat(), {"cache-control": "no-store"}).active


def _sharing(share: bool):
    return ROUTE.model_copy(update={"cache": ROUTE.cache.model_copy(update={"share_across_tenants": share})})


def test_a_tenant_named_like_the_shared_scope_never_meets_the_shared_answers_either_way():
    # The route shared its answers, then stopped: the tenant "*shared*" must not read them ...
    shared_then = keys(tenant="acme", route=_sharing(True))
    marker_tenant_now = keys(tenant=SHARED_SCOPE, route=_sharing(False))
    assert marker_tenant_now.exact != shared_then.exact
    assert marker_tenant_now.semantic_scope != shared_then.semantic_scope
    # ... and, the other way, what that tenant stored is not served once the route shares.
    assert keys(tenant="globex", route=_sharing(True)).exact != marker_tenant_now.exact


def test_unshared_routes_keep_their_keys():
    assert keys(tenant="acme", route=_sharing(False)).exact == keys(tenant="acme").exact


def test_reserved_tenant_ids():
    from functions.core.cache.keys import reserved_tenant_id

    assert "reserved" in reserved_tenant_id(SHARED_SCOPE)
    assert reserved_tenant_id("*anything") is not None
    assert reserved_tenant_id("acme") is None and reserved_tenant_id("a*b") is None


def test_config_refuses_a_tenant_with_a_reserved_id():
    import pytest

    from functions.core.errors import ConfigError

    with pytest.raises(ConfigError, match=r"tenants\.\*shared\*.*reserved"):
        make_config({"tenants": {SHARED_SCOPE: {"plan": "pro"}}})
    assert make_config({"tenants": {"acme": {"plan": "pro"}}}).tenants["acme"].plan == "pro"
