"""The response cache as a client sees it: the openai SDK against the gateway on moto server,
with the local all-MiniLM-L6-v2 embedder for the semantic cache."""

from __future__ import annotations

import time

import pytest

from tierup.local_stack import create_key

from ..support import EXAMPLE_CONFIG, openai_client

SYSTEM = {"role": "system", "content": "You are a helpful support agent."}
CONFIG_ARGS = ["--config", str(EXAMPLE_CONFIG)]


def ask(client, question: str, **kwargs):
    raw = client.chat.completions.with_raw_response.create(
        model="chat", messages=[SYSTEM, {"role": "user", "content": question}], temperature=0, **kwargs)
    return raw.headers["x-tierup-cache"], raw.parse()


@pytest.fixture
def cached_gateway(make_runtime, serve):
    """The gateway with exact and semantic caching on route ``chat``; keys for two tenants."""
    from functions.gateway.composition import build_gateway

    def start(cache: dict | None = None):
        settings = {"exact": True, "semantic": True, "ttl-s": 3600, **(cache or {})}
        runtime = make_runtime({"routes": {"chat": {"cache": settings}}})
        url = serve(build_gateway(runtime))
        return type("Cached", (), {"url": url, "runtime": runtime,
                                   "acme": openai_client(url, create_key(runtime, "acme", "pro")),
                                   "globex": openai_client(url, create_key(runtime, "globex", "pro"))})

    return start


def test_repeated_request_is_an_exact_hit_and_costs_no_tokens(cached_gateway):
    gw = cached_gateway()
    status, first = ask(gw.acme, "How do I reset my password?")
    assert status == "miss" and first.usage.completion_tokens > 0
    status, second = ask(gw.acme, "How do I reset my password?")
    assert status == "hit-exact"
    assert second.choices[0].message.content == first.choices[0].message.content
    assert second.usage.prompt_tokens == 0 and second.usage.completion_tokens == 0
    assert second.usage.prompt_tokens_details.cached_tokens == first.usage.total_tokens


def test_same_request_from_another_tenant_is_a_miss(cached_gateway):
    gw = cached_gateway()
    assert ask(gw.acme, "What is on my invoice this month?")[0] == "miss"
    assert ask(gw.globex, "What is on my invoice this month?")[0] == "miss"
    assert ask(gw.globex, "What is on my invoice this month?")[0] == "hit-exact"


def test_routes_that_opt_in_share_across_tenants(cached_gateway):
    gw = cached_gateway({"share-across-tenants": True})
    assert ask(gw.acme, "What are your opening hours?")[0] == "miss"
    assert ask(gw.globex, "What are your opening hours?")[0] == "hit-exact"


def test_expired_entry_is_a_miss(cached_gateway):
    gw = cached_gateway({"ttl-s": 1, "semantic": False})
    assert ask(gw.acme, "Which plan am I on?")[0] == "miss"
    assert ask(gw.acme, "Which plan am I on?")[0] == "hit-exact"
    time.sleep(2.1)  # moto, like DynamoDB, still holds the item: the reader must refuse it
    assert ask(gw.acme, "Which plan am I on?")[0] == "miss"


def test_paraphrase_hits_the_semantic_cache(cached_gateway):
    gw = cached_gateway()
    status, first = ask(gw.acme, "How can I cancel my subscription?")
    assert status == "miss"
    status, second = ask(gw.acme, "How do I cancel my subscription?")
    assert status == "hit-semantic"
    assert second.choices[0].message.content == first.choices[0].message.content


@pytest.mark.parametrize("variant", [
    "How can I not cancel my subscription?",
    "How can I cancel my 2 subscriptions?",
])
def test_negated_or_number_changed_question_is_not_a_semantic_hit(cached_gateway, variant):
    # Both variants are above this threshold for all-MiniLM-L6-v2 (0.98 and 0.94): only the
    # near-miss guards stand between them and the cached answer.
    gw = cached_gateway({"similarity-threshold": 0.9})
    assert ask(gw.acme, "How can I cancel my subscription?")[0] == "miss"
    assert ask(gw.acme, variant)[0] == "miss"


def test_without_guards_the_embedding_alone_would_serve_the_negation(cached_gateway):
    gw = cached_gateway({"similarity-threshold": 0.9, "near-miss-guards": False})
    assert ask(gw.acme, "How can I cancel my subscription?")[0] == "miss"
    assert ask(gw.acme, "How can I not cancel my subscription?")[0] == "hit-semantic"


def test_semantic_cache_is_isolated_per_tenant(cached_gateway):
    gw = cached_gateway()
    assert ask(gw.acme, "How can I cancel my subscription?")[0] == "miss"
    assert ask(gw.globex, "How do I cancel my subscription?")[0] == "miss"


def test_stream_is_cached_once_complete_and_a_hit_is_served_as_a_stream(cached_gateway):
    gw = cached_gateway()
    messages = [SYSTEM, {"role": "user", "content": "Tell me about your refund policy."}]

    def stream():
        with gw.acme.chat.completions.with_streaming_response.create(
                model="chat", messages=messages, temperature=0, stream=True,
                stream_options={"include_usage": True}) as response:
            chunks = list(response.parse())
            return response.headers["x-tierup-cache"], chunks

    status, chunks = stream()
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert status == "miss" and text
    status, chunks = stream()
    assert status == "hit-exact"
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == text
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["stop"]
    assert chunks[-1].usage.completion_tokens == 0


def test_opt_outs_bypass_the_cache(cached_gateway):
    gw = cached_gateway()
    assert ask(gw.acme, "Where is my order?")[0] == "miss"
    assert ask(gw.acme, "Where is my order?", extra_headers={"Cache-Control": "no-cache"})[0] == "bypass"
    assert ask(gw.acme, "Where is my order?", extra_body={"tierup": {"cache": False}})[0] == "bypass"
    assert ask(gw.acme, "Where is my order?")[0] == "hit-exact"


def test_non_deterministic_requests_are_not_cached_unless_the_route_opts_in(cached_gateway):
    gw = cached_gateway()
    messages = [{"role": "user", "content": "Write me a poem."}]
    for _ in range(2):
        raw = gw.acme.chat.completions.with_raw_response.create(model="chat", messages=messages, temperature=0.7)
        assert raw.headers["x-tierup-cache"] == "bypass"


def test_cli_stats_and_purge_by_tenant(make_runtime, serve):
    from typer.testing import CliRunner

    from functions.core.tables import CACHE
    from functions.gateway.composition import build_gateway
    from tierup.cli import app

    # No in-memory layer, so that a purge takes effect at once (otherwise within l1-ttl-s).
    runtime = make_runtime({"routes": {"chat": {"cache": {"semantic": False}}}, "cache": {"l1-ttl-s": 0}})
    url = serve(build_gateway(runtime))
    acme = openai_client(url, create_key(runtime, "acme", "pro"))
    globex = openai_client(url, create_key(runtime, "globex", "pro"))
    for client in (acme, globex):
        assert ask(client, "Do you ship abroad?")[0] == "miss"
        assert ask(client, "Do you ship abroad?")[0] == "hit-exact"
    env = {"TIERUP_AWS_ENDPOINT": runtime.environ["TIERUP_AWS_ENDPOINT"],
           "TIERUP_TABLE_CACHE": runtime.table(CACHE)}
    runner = CliRunner()
    planned = runner.invoke(app, ["cache", "purge", "--tenant", "acme", "--dry-run", *CONFIG_ARGS], env=env)
    assert planned.exit_code == 0 and "plan: delete 1 cache item(s) of tenant acme" in planned.output
    assert ask(acme, "Do you ship abroad?")[0] == "hit-exact"  # a dry run deletes nothing
    done = runner.invoke(app, ["cache", "purge", "--tenant", "acme", *CONFIG_ARGS], env=env)
    assert done.exit_code == 0 and "deleted 1 item(s)" in done.output
    assert ask(acme, "Do you ship abroad?")[0] == "miss"
    assert ask(globex, "Do you ship abroad?")[0] == "hit-exact"
    bad = runner.invoke(app, ["cache", "purge", "--route", "nope", *CONFIG_ARGS], env=env)
    assert bad.exit_code == 2


def test_cli_stats_show_hits_and_savings(make_runtime):
    from typer.testing import CliRunner

    from functions.adapters.dynamodb.cache import DynamoCacheStore
    from functions.core.tables import CACHE
    from tierup.cli import app

    runtime = make_runtime()
    store = DynamoCacheStore(runtime.dynamodb, runtime.table(CACHE))
    store.add_stats("chat", "2026-01-01", {"hit_exact": 3, "miss": 1, "tokens_saved": 120, "usd_saved": 0.5})
    store.add_stats("chat", "2026-01-02", {"hit_semantic": 1, "miss": 3})
    env = {"TIERUP_AWS_ENDPOINT": runtime.environ["TIERUP_AWS_ENDPOINT"], "TIERUP_TABLE_CACHE": runtime.table(CACHE)}
    result = CliRunner().invoke(app, ["cache", "stats", *CONFIG_ARGS], env=env, terminal_width=200)
    assert result.exit_code == 0, result.output
    row = next(line for line in result.output.splitlines() if " chat " in line)
    assert "50.0%" in row and "120" in row and "0.5000" in row


def test_reserved_tenant_ids_are_refused_at_key_creation(make_runtime):
    from typer.testing import CliRunner

    from functions.core.cache.keys import SHARED_SCOPE
    from functions.core.tables import KEYS
    from tierup.cli import app

    runtime = make_runtime()
    with pytest.raises(ValueError, match="reserved"):
        create_key(runtime, SHARED_SCOPE, "pro")
    env = {"TIERUP_AWS_ENDPOINT": runtime.environ["TIERUP_AWS_ENDPOINT"], "TIERUP_TABLE_KEYS": runtime.table(KEYS)}
    result = CliRunner().invoke(app, ["keys", "create", "--tenant", SHARED_SCOPE, "--plan", "pro", *CONFIG_ARGS],
                                env=env, terminal_width=200)
    assert result.exit_code == 2 and "reserved" in result.output



def test_cli_stats_show_the_measured_wrong_share_of_bounded_routes(make_runtime, tmp_path):
    from typer.testing import CliRunner

    from functions.adapters.dynamodb.cache import DynamoCacheStore
    from functions.core.cache.calibration import bin_of
    from functions.core.tables import CACHE
    from tierup.cli import app

    config = tmp_path / "tierup.toml"
    config.write_text(EXAMPLE_CONFIG.read_text().replace("# max-wrong-hit-rate = 0.01", "max-wrong-hit-rate = 0.05"))
    runtime = make_runtime()
    store = DynamoCacheStore(runtime.dynamodb, runtime.table(CACHE))
    store.add_calibration("chat#all-MiniLM-L6-v2", {bin_of(0.95): 396.0, bin_of(0.85): 50.0},
                          {bin_of(0.95): 4.0, bin_of(0.85): 50.0})
    store.add_stats("chat", "2026-01-01", {"calibration": 7, "calibration_tokens": 900})
    env = {"TIERUP_AWS_ENDPOINT": runtime.environ["TIERUP_AWS_ENDPOINT"], "TIERUP_TABLE_CACHE": runtime.table(CACHE)}
    result = CliRunner().invoke(app, ["cache", "stats", "--config", str(config)], env=env, terminal_width=250)
    assert result.exit_code == 0, result.output
    row = next(line for line in result.output.splitlines() if "MiniLM" in line)
    assert "5.00%" in row and "0.950" in row and "400" in row and "1.00% [" in row and "900" in row


@pytest.mark.parametrize("shared_first", [True, False])
def test_a_tenant_named_like_the_shared_scope_never_meets_shared_answers_when_sharing_changes(
        make_runtime, serve, shared_first):
    """A key for the tenant "*shared*" made before such ids were refused (written to the key table
    directly): when the route's sharing setting changes, neither side is served the other's answer."""
    import time as clock

    from functions.adapters.dynamodb.keys import DynamoKeyStore
    from functions.core.cache.keys import SHARED_SCOPE
    from functions.core.keys import ApiKeyRecord, generate_api_key, hash_api_key
    from functions.core.tables import KEYS
    from functions.gateway.composition import Runtime, build_gateway

    first = make_runtime({"routes": {"chat": {"cache": {"semantic": False, "share-across-tenants": shared_first}}},
                          "cache": {"l1-ttl-s": 0}})
    marker_key = generate_api_key()
    DynamoKeyStore(first.dynamodb, first.table(KEYS)).put(ApiKeyRecord(
        key_hash=hash_api_key(marker_key), tenant_id=SHARED_SCOPE, plan="pro", created_at=int(clock.time())))
    acme_key = create_key(first, "acme", "pro")
    route = first.config.routes["chat"]
    flip = {"share_across_tenants": not shared_first}
    route = route.model_copy(update={"cache": route.cache.model_copy(update=flip)})
    flipped = first.config.model_copy(update={"routes": {**first.config.routes, "chat": route}})
    second = Runtime(config=flipped, environ=first.environ)
    asker, prober = (acme_key, marker_key) if shared_first else (marker_key, acme_key)
    url = serve(build_gateway(first))
    assert ask(openai_client(url, asker), "Do you ship to Norway?")[0] == "miss"
    assert ask(openai_client(url, asker), "Do you ship to Norway?")[0] == "hit-exact"
    url = serve(build_gateway(second))  # the same tables, the route's sharing setting flipped
    assert ask(openai_client(url, prober), "Do you ship to Norway?")[0] == "miss"
