"""Streamed chunks as the openai SDK reads them: fields left out for their bytes parse as before."""

from __future__ import annotations

import orjson
from openai.types.chat import ChatCompletionChunk

from functions.core.chat import StreamDelta, Usage
from functions.gateway.openai_format import ChunkWriter


def _events(data: bytes) -> list[dict]:
    return [orjson.loads(part[len(b"data: "):]) for part in data.split(b"\n\n") if part]


def _stream(simulated: bool, logprobs: list | None = None) -> list[dict]:
    writer = ChunkWriter("r1", "chat", simulated=simulated, include_usage=True)
    out = writer.render(StreamDelta(text="Hello", logprobs=logprobs))
    out += writer.render(StreamDelta(text=" world"))
    out += writer.render(StreamDelta(finish_reason="stop", usage=Usage(prompt_tokens=3, completion_tokens=2)))
    return _events(out)


def _as_openai_sends_it(event: dict) -> dict:
    """The same event with every optional field OpenAI sends as null written out."""
    full = {**event, "system_fingerprint": event.get("system_fingerprint")}
    full["choices"] = [{"logprobs": None, **choice} for choice in event["choices"]]
    return full


def test_chunks_leave_out_fields_that_would_be_null_in_every_chunk():
    events = _stream(simulated=False)
    assert all("system_fingerprint" not in event for event in events)
    assert all("logprobs" not in choice for event in events for choice in event["choices"])
    # what clients test against null stays: finish_reason until the last choice, usage until the end
    assert [choice["finish_reason"] for event in events for choice in event["choices"]] == [None, None, None, "stop"]
    assert all("usage" in event for event in events)


def test_the_openai_sdk_reads_the_short_chunks_as_it_reads_the_full_ones():
    for simulated in (False, True):
        for event in _stream(simulated, logprobs=[{"token": "Hello", "logprob": -0.1, "bytes": None,
                                                   "top_logprobs": []}]):
            short = ChatCompletionChunk.construct(**event)  # as the SDK's stream builds each chunk
            parsed = ChatCompletionChunk.model_validate(event)
            full = ChatCompletionChunk.model_validate(_as_openai_sends_it(event))
            assert parsed.model_dump() == full.model_dump()
            assert short.system_fingerprint == full.system_fingerprint
            for choice, full_choice in zip(parsed.choices, full.choices):
                assert choice.logprobs == full_choice.logprobs
                assert choice.finish_reason == full_choice.finish_reason


def test_logprobs_and_the_simulated_fingerprint_are_still_sent_when_they_say_something():
    events = _stream(simulated=True, logprobs=[{"token": "Hello", "logprob": -0.1, "bytes": None, "top_logprobs": []}])
    assert all(event["system_fingerprint"] == "tierup-simulated" for event in events)
    assert events[1]["choices"][0]["logprobs"] == {"content": [{"token": "Hello", "logprob": -0.1, "bytes": None,
                                                                "top_logprobs": []}]}
