"""The Responses API (``/v1/responses``) as the official openai SDK uses it, against the gateway
under uvicorn on moto server (simulated provider)."""

from __future__ import annotations

import dataclasses
import json
import time

import httpx
import openai
import pytest
from pydantic import BaseModel

from functions.adapters.dynamodb.ledger_records import DynamoLedgerRecords
from functions.adapters.dynamodb.responses import DynamoResponseStore
from functions.adapters.dynamodb.usage_aggregates import DynamoUsageAggregates
from functions.core.stored_responses import stored_response
from functions.core.tables import STATE, USAGE
from functions.gateway.composition import build_gateway
from tierup.local_stack import GatewayServer, create_key

from ..support import openai_client
from .test_quotas import _wait_for_fresh_minute

WEATHER_TOOL = {"type": "function", "name": "get_weather", "description": "Current weather in a city",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"},
                                                                "unit": {"type": "string", "enum": ["c", "f"]}},
                               "required": ["city", "unit"], "additionalProperties": False},
                "strict": True}


class Weather(BaseModel):
    city: str
    celsius: float
    conditions: list[str]


@pytest.fixture
def client(gateway):
    return openai_client(gateway.url, gateway.key)


def test_create_with_text_input(client):
    response = client.responses.create(model="chat", input="Hello there", instructions="Be brief.")
    assert response.id.startswith("resp_") and response.object == "response"
    assert response.status == "completed"
    assert response.output_text.startswith("[simulated]")
    assert response.output[0].type == "message" and response.output[0].role == "assistant"
    assert response.usage.input_tokens > 0 and response.usage.output_tokens > 0
    assert response.usage.total_tokens == response.usage.input_tokens + response.usage.output_tokens
    assert response.instructions == "Be brief." and response.model == "chat"


def test_function_tool_round_trip_with_function_call_output(client):
    ask = [{"role": "user", "content": "What is the weather in Paris? Use get_weather."}]
    first = client.responses.create(model="chat", input=ask, tools=[WEATHER_TOOL])
    (call,) = [item for item in first.output if item.type == "function_call"]
    assert call.name == "get_weather" and call.call_id.startswith("call_") and call.id.startswith("fc_")
    assert set(json.loads(call.arguments)) == {"city", "unit"}
    assert first.output_text == ""  # only the call: no message
    # the whole conversation sent back, the SDK's own output items included (store=false apps do this)
    items = ask + [item.model_dump(exclude_none=True) for item in first.output] + [
        {"type": "function_call_output", "call_id": call.call_id, "output": '{"celsius": 21}'}]
    final = client.responses.create(model="chat", input=items, tools=[WEATHER_TOOL], store=False)
    assert final.output_text.startswith("[simulated]")
    assert [item.type for item in final.output] == ["message"]
    assert final.store is False


def test_tool_choice_required_and_named(client):
    other = {**WEATHER_TOOL, "name": "get_time", "parameters": {
        "type": "object", "properties": {"zone": {"type": "string"}}, "required": ["zone"],
        "additionalProperties": False}}
    required = client.responses.create(model="chat", input="hello", tools=[WEATHER_TOOL], tool_choice="required")
    assert [item.name for item in required.output if item.type == "function_call"] == ["get_weather"]
    named = client.responses.create(model="chat", input="hello", tools=[WEATHER_TOOL, other],
                                    tool_choice={"type": "function", "name": "get_time"})
    assert [item.name for item in named.output if item.type == "function_call"] == ["get_time"]
    assert named.tool_choice.name == "get_time"


def test_stream_sends_the_responses_events_in_order(client):
    with client.responses.stream(model="chat", input="Tell me about tiers") as stream:
        events = list(stream)
        final = stream.get_final_response()
    kinds = [event.type for event in events]
    deltas = [event for event in events if event.type == "response.output_text.delta"]
    assert kinds[:4] == ["response.created", "response.in_progress", "response.output_item.added",
                         "response.content_part.added"]
    assert kinds[4:4 + len(deltas)] == ["response.output_text.delta"] * len(deltas) and len(deltas) > 1
    assert kinds[4 + len(deltas):] == ["response.output_text.done", "response.content_part.done",
                                       "response.output_item.done", "response.completed"]
    assert [event.sequence_number for event in events] == list(range(len(events)))
    assert "".join(event.delta for event in deltas) == final.output_text
    assert final.output_text.startswith("[simulated]") and final.status == "completed"
    assert final.usage.output_tokens > 0
    assert client.responses.retrieve(final.id).output_text == final.output_text


def test_streamed_function_calls_arrive_as_argument_deltas(client):
    with client.responses.stream(model="chat", input="Use get_weather for Lima", tools=[WEATHER_TOOL]) as stream:
        events = list(stream)
        final = stream.get_final_response()
    kinds = [event.type for event in events]
    assert kinds[2] == "response.output_item.added" and events[2].item.type == "function_call"
    assert events[2].item.arguments == "" and events[2].item.name == "get_weather"
    pieces = [event.delta for event in events if event.type == "response.function_call_arguments.delta"]
    (done,) = [event for event in events if event.type == "response.function_call_arguments.done"]
    assert len(pieces) > 1 and "".join(pieces) == done.arguments
    assert kinds[-2:] == ["response.output_item.done", "response.completed"]
    (call,) = final.output
    assert call.type == "function_call" and json.loads(call.arguments) == json.loads(done.arguments)


def test_parse_with_a_pydantic_model(client):
    response = client.responses.parse(model="chat", input="Weather in Oslo as JSON", text_format=Weather)
    assert isinstance(response.output_parsed, Weather)
    assert response.text.format.type == "json_schema" and response.text.format.name == "Weather"
    json_object = client.responses.create(model="chat", input="Answer in JSON",
                                          text={"format": {"type": "json_object"}})
    assert isinstance(json.loads(json_object.output_text), dict)


def test_previous_response_id_continues_the_conversation(client):
    first = client.responses.create(model="chat", input="Use get_weather for Rome", tools=[WEATHER_TOOL])
    (call,) = first.output
    # only the new item: the gateway supplies the conversation so far
    final = client.responses.create(model="chat", previous_response_id=first.id, tools=[WEATHER_TOOL], input=[
        {"type": "function_call_output", "call_id": call.call_id, "output": '{"celsius": 25}'}])
    assert final.previous_response_id == first.id
    assert final.output_text.startswith("[simulated]")
    # the answer depends on the stored conversation: without it, the same input is refused
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model="chat", tools=[WEATHER_TOOL], input=[
            {"type": "function_call_output", "call_id": call.call_id, "output": '{"celsius": 25}'}])
    assert caught.value.body["param"] == "input"
    # and a text turn continued twice gives a different answer than the same turn alone
    chained = client.responses.create(model="chat", input="and tomorrow?", previous_response_id=final.id)
    alone = client.responses.create(model="chat", input="and tomorrow?")
    assert chained.output_text != alone.output_text


def test_retrieve_and_delete(client):
    created = client.responses.create(model="chat", input="keep this", metadata={"app": "x"})
    fetched = client.responses.retrieve(created.id)
    assert fetched.id == created.id and fetched.output_text == created.output_text
    assert fetched.metadata == {"app": "x"} and fetched.status == "completed"
    client.responses.delete(created.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(created.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.delete(created.id)


def test_store_false_is_not_kept_and_cannot_be_continued(client):
    unstored = client.responses.create(model="chat", input="forget this", store=False)
    with pytest.raises(openai.NotFoundError) as caught:
        client.responses.retrieve(unstored.id)
    assert caught.value.body["code"] == "response_not_found"
    with pytest.raises(openai.NotFoundError) as caught:
        client.responses.create(model="chat", input="more", previous_response_id=unstored.id)
    assert caught.value.body["param"] == "previous_response_id"
    assert caught.value.body["code"] == "previous_response_not_found"


def test_another_tenant_can_neither_read_nor_continue_a_response(gateway, client):
    mine = client.responses.create(model="chat", input="private to acme")
    theirs = openai_client(gateway.url, create_key(gateway.runtime, "globex", "pro"))
    with pytest.raises(openai.NotFoundError):
        theirs.responses.retrieve(mine.id)
    with pytest.raises(openai.NotFoundError) as caught:
        theirs.responses.create(model="chat", input="continue it", previous_response_id=mine.id)
    assert caught.value.body["param"] == "previous_response_id"
    with pytest.raises(openai.NotFoundError):
        theirs.responses.delete(mine.id)
    assert client.responses.retrieve(mine.id).output_text == mine.output_text  # still there for acme


def test_parameters_a_tier_cannot_honour_are_refused_by_their_responses_name(client):
    with pytest.raises(openai.BadRequestError) as caught:  # the simulated tier has no reasoning effort
        client.responses.create(model="chat", input="hi", reasoning={"effort": "high"})
    assert caught.value.body["param"] == "reasoning.effort"
    assert caught.value.body["code"] == "unsupported_parameter"
    assert "reasoning.effort" in caught.value.body["message"]
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model="chat", input="hi", include=["message.output_text.logprobs"])
    assert caught.value.body["param"] == "include"
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model="chat", input="hi", tools=[{"type": "web_search"}])
    assert caught.value.body["param"] == "tools[0].type"
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model="chat", input="hi", max_output_tokens=10_000_000)
    assert caught.value.body["param"] == "max_output_tokens"
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model="chat", input="hi", extra_body={"frobnicate": 1})
    assert caught.value.body["param"] == "frobnicate"
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model="chat", input=[{"role": "user", "content": [
            {"type": "input_text", "text": "what is this?"}, {"type": "input_file", "file_id": "file-1"}]}])
    assert caught.value.body["param"] == "input[0].content[1]"
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model="chat", input="hi", text={"format": {
            "type": "json_schema", "name": "x", "schema": {"type": "nonsense"}}})
    assert caught.value.body["param"] == "text.format.schema"
    with pytest.raises(openai.BadRequestError) as caught:  # the schema itself left out
        client.responses.create(model="chat", input="hi", text={"format": {"type": "json_schema", "name": "x"}})
    assert caught.value.body["param"] == "text.format.schema"
    # harmless fields are accepted
    assert client.responses.create(model="chat", input="hi", user="u-1", truncation="auto", service_tier="auto",
                                   extra_body={"prompt_cache_key": "k"}).status == "completed"


def test_max_output_tokens_cuts_the_answer_and_says_so(client):
    response = client.responses.create(model="chat", input="a long answer please", max_output_tokens=3)
    assert response.status == "incomplete"
    assert response.incomplete_details.reason == "max_output_tokens"
    assert response.usage.output_tokens == 3
    with client.responses.stream(model="chat", input="a long answer please", max_output_tokens=3) as stream:
        kinds = [event.type for event in stream]
    assert kinds[-1] == "response.incomplete"


PATTERN_SCHEMA = {"type": "json_schema", "name": "code", "strict": True, "schema": {
    "type": "object", "properties": {"code": {"type": "string", "pattern": "^[0-9]{6}$"}},
    "required": ["code"], "additionalProperties": False}}


def test_a_failure_mid_stream_ends_with_error_and_response_failed(gateway, client):
    # the simulated model cannot satisfy a pattern: the answer is refused once it has streamed
    with pytest.raises(openai.APIStatusError) as caught:
        client.responses.create(model="chat", input="a code", text={"format": PATTERN_SCHEMA})
    assert caught.value.status_code == 502 and caught.value.body["code"] == "invalid_structured_output"
    with pytest.raises(openai.APIError) as caught:  # the SDK raises on the error event
        with client.responses.stream(model="chat", input="a code", text={"format": PATTERN_SCHEMA}) as stream:
            for _ in stream:
                pass
    assert "does not match" in str(caught.value)
    raw = httpx.post(f"{gateway.url}/v1/responses", headers={"Authorization": f"Bearer {gateway.key}"},
                     json={"model": "chat", "input": "a code", "stream": True, "text": {"format": PATTERN_SCHEMA}})
    events = [block.split("\n") for block in raw.text.strip().split("\n\n")]
    names = [lines[0].removeprefix("event: ") for lines in events]
    assert names[0] == "response.created" and "response.output_text.delta" in names
    assert names[-2:] == ["error", "response.failed"] and "response.completed" not in names
    error, failed = (json.loads(lines[1].removeprefix("data: ")) for lines in events[-2:])
    assert error["code"] == "invalid_structured_output" and error["error"]["code"] == "invalid_structured_output"
    assert failed["response"]["status"] == "failed"
    assert failed["response"]["error"]["code"] == "invalid_structured_output"
    assert [json.loads(lines[1].removeprefix("data: "))["sequence_number"] for lines in events] == list(
        range(len(events)))


def test_responses_requests_count_against_quotas_and_reach_the_ledger_like_chat(make_runtime):
    runtime = make_runtime({"routes": {"chat": {"cache": {"exact": False, "semantic": False}}},
                            "plans": {"tiny": {"requests-per-minute": 3, "tokens-per-minute": 50_000}}})
    server = GatewayServer(build_gateway(runtime)).start()
    try:
        client = openai_client(server.url, create_key(runtime, "small", "tiny"))
        _wait_for_fresh_minute(10)
        started_minute = int(time.time() // 60)
        created = client.responses.with_raw_response.create(model="chat", input="one")
        assert created.headers["x-ratelimit-remaining-requests"] == "2"
        with client.responses.stream(model="chat", input="two") as stream:
            streamed = stream.get_final_response()
        chat = client.chat.completions.create(model="chat", messages=[{"role": "user", "content": "three"}])
        with pytest.raises(openai.RateLimitError) as refused:
            client.responses.create(model="chat", input="one too many")
        assert refused.value.body["code"] == "requests_per_minute_exceeded"
    finally:
        server.stop()  # flushes the ledger
    usage = created.parse().usage
    tokens = usage.total_tokens + streamed.usage.total_tokens + chat.usage.total_tokens
    day = time.strftime("%Y-%m-%d", time.gmtime(started_minute * 60))
    records = DynamoLedgerRecords(runtime.dynamodb, runtime.table(USAGE)).day("small", day)
    assert sorted(record.outcome for record in records) == ["ok", "ok", "ok", "refused"]
    assert sum(record.prompt_tokens + record.completion_tokens for record in records) == tokens
    rows = DynamoUsageAggregates(runtime.dynamodb, runtime.table(USAGE)).minutes(
        "tenant:small", started_minute, int(time.time() // 60))
    assert sum(row.requests for row in rows) == 3 and sum(row.refused for row in rows) == 1


def test_stored_responses_expire(gateway, client):
    store = DynamoResponseStore(gateway.runtime.dynamodb, gateway.runtime.table(STATE))
    created = client.responses.create(model="chat", input="short-lived")
    kept = store.get("acme", created.id)
    ttl_s = gateway.runtime.config.gateway.responses_ttl_days * 86400
    assert abs(kept.expires_at - (time.time() + ttl_s)) < 60
    store.put(dataclasses.replace(kept, expires_at=int(time.time()) - 1))  # DynamoDB deletes it only eventually
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(created.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.create(model="chat", input="more", previous_response_id=created.id)


def test_cached_answers_serve_the_responses_api_too(client):
    ask = {"model": "chat", "input": "Use get_weather for Lima", "tools": [WEATHER_TOOL], "temperature": 0}
    first = client.responses.with_raw_response.create(**ask)
    again = client.responses.with_raw_response.create(**ask)
    assert (first.headers["x-tierup-cache"], again.headers["x-tierup-cache"]) == ("miss", "hit-exact")
    assert again.headers["x-tierup-tier"] == "cache"
    (call,), (cached,) = first.parse().output, again.parse().output
    assert (cached.call_id, cached.arguments) == (call.call_id, call.arguments)
    assert again.parse().id != first.parse().id  # a new response, with the cached answer
    with client.responses.stream(**ask) as stream:
        kinds = [event.type for event in stream]
        streamed = stream.get_final_response()
    assert "response.function_call_arguments.delta" in kinds and kinds[-1] == "response.completed"
    assert streamed.output[0].arguments == call.arguments


def test_the_dynamodb_store_keeps_tenants_apart(gateway):
    store = DynamoResponseStore(gateway.runtime.dynamodb, gateway.runtime.table(STATE))
    later = int(time.time()) + 600
    # tenant "t" and tenant "t#1" could meet on one key ("response#t#1#2"): the stored tenant decides
    store.put(stored_response("1#2", "t", b"{}", [], later))
    assert store.get("t", "1#2") is not None
    assert store.get("t#1", "2") is None
    assert store.delete("t#1", "2") is False and store.get("t", "1#2") is not None
    assert store.delete("t", "1#2") is True and store.get("t", "1#2") is None
    assert store.delete("t", "1#2") is False


def test_a_state_store_that_does_not_answer_is_a_fast_503_and_store_false_still_works(make_runtime, serve):
    from functions.adapters.aws import AwsClients
    from functions.core.tables import STATE

    runtime = make_runtime()
    app = build_gateway(runtime)
    # the responses' store on an endpoint where nothing listens; the other stores answer
    nowhere = AwsClients(region="us-east-1", endpoint_url="http://127.0.0.1:9")
    app._response_store = DynamoResponseStore(lambda: nowhere.client("dynamodb"), runtime.table(STATE))
    url = serve(app)
    client = openai_client(url, create_key(runtime, "acme", "pro"), timeout=10)
    started = time.monotonic()
    with pytest.raises(openai.APIStatusError) as caught:
        client.responses.create(model="chat", input="keep this")
    assert caught.value.status_code == 503 and caught.value.body["code"] == "storage_unavailable"
    assert int(caught.value.response.headers["retry-after"]) >= 1
    with pytest.raises(openai.APIStatusError) as caught:
        client.responses.retrieve("resp_" + "0" * 48)
    assert caught.value.status_code == 503
    with pytest.raises(openai.APIStatusError) as caught:
        client.responses.create(model="chat", input="more", previous_response_id="resp_" + "0" * 48)
    assert caught.value.status_code == 503
    with pytest.raises(openai.APIError):  # streamed: the answer went out, then the store failed
        with client.responses.stream(model="chat", input="keep this too") as stream:
            for _ in stream:
                pass
    assert time.monotonic() - started < 20
    assert client.responses.create(model="chat", input="not kept", store=False).status == "completed"
