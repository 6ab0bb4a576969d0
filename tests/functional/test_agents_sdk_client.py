"""The OpenAI Agents SDK (``openai-agents``) as the gateway's client: an agent that calls a
function tool, over the Responses API (the SDK's default), run and streamed, and chained with
``previous_response_id``; against the gateway under uvicorn on moto server (simulated provider)."""

from __future__ import annotations

import asyncio
import json

import httpx

import pytest
from agents import Agent, OpenAIResponsesModel, Runner, function_tool, set_tracing_disabled
from openai import AsyncOpenAI


@pytest.fixture
def weather_agent(gateway):
    set_tracing_disabled(True)  # the SDK would export traces to OpenAI otherwise
    asked: list[str] = []

    @function_tool
    def get_weather(city: str) -> str:
        """Current weather in a city."""
        asked.append(city)
        return f"21 C and sunny in {city}"

    def build(bodies: list | None = None) -> Agent:
        # built inside the event loop that uses it: the client's connections belong to that loop
        async def keep(request: httpx.Request) -> None:
            if bodies is not None:
                bodies.append(json.loads(request.content))

        client = AsyncOpenAI(base_url=f"{gateway.url}/v1", api_key=gateway.key, max_retries=0,
                             http_client=httpx.AsyncClient(event_hooks={"request": [keep]}))
        return Agent(name="weather", instructions="Answer questions about the weather.", tools=[get_weather],
                     model=OpenAIResponsesModel(model="chat", openai_client=client))

    return build, asked


QUESTION = "What is the weather in Paris? Use get_weather."


def test_agent_calls_a_function_tool_through_the_responses_api(weather_agent):
    build, asked = weather_agent
    result = asyncio.run(Runner.run(build(), QUESTION))
    assert len(asked) == 1 and isinstance(asked[0], str)
    kinds = [item.type for item in result.new_items]
    assert kinds == ["tool_call_item", "tool_call_output_item", "message_output_item"]
    assert result.final_output.startswith("[simulated]")
    assert all(response.response_id.startswith("resp_") for response in result.raw_responses)


def test_agent_chains_responses_with_previous_response_id(weather_agent):
    build, asked = weather_agent
    bodies: list[dict] = []
    result = asyncio.run(Runner.run(build(bodies), QUESTION, auto_previous_response_id=True))
    assert len(asked) == 1 and result.final_output.startswith("[simulated]")
    first, second = bodies
    assert "previous_response_id" not in first
    # the second turn sends only the tool's output: the gateway holds the rest
    assert second["previous_response_id"] == result.raw_responses[0].response_id
    assert [item["type"] for item in second["input"]] == ["function_call_output"]


def test_agent_streamed_run(weather_agent):
    build, asked = weather_agent

    async def run() -> tuple[list[str], str]:
        streamed = Runner.run_streamed(build(), QUESTION)
        names = [event.name async for event in streamed.stream_events() if event.type == "run_item_stream_event"]
        return names, streamed.final_output

    names, final = asyncio.run(run())
    assert names == ["tool_called", "tool_output", "message_output_created"]
    assert len(asked) == 1 and final.startswith("[simulated]")
