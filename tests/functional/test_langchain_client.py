"""LangChain's ``ChatOpenAI`` as the client (as apps use it): tools bound with ``bind_tools``, a
tool round trip, and ``with_structured_output``, against the gateway (simulated provider)."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, Field

langchain_openai = pytest.importorskip("langchain_openai")


class get_weather(BaseModel):  # noqa: N801  (LangChain names the tool after the class)
    """Current weather in a city."""

    city: str = Field(description="the city")


class Forecast(BaseModel):
    city: str
    celsius: float
    summary: str


@pytest.fixture
def llm(gateway):
    return langchain_openai.ChatOpenAI(model="chat", base_url=f"{gateway.url}/v1", api_key=gateway.key,
                                       max_retries=0, temperature=0)


def test_bind_tools_round_trip(llm):
    from langchain_core.messages import HumanMessage, ToolMessage

    with_tools = llm.bind_tools([get_weather])
    question = HumanMessage("What's the weather in Paris? Use get_weather.")
    called = with_tools.invoke([question])
    (call,) = called.tool_calls
    assert call["name"] == "get_weather" and isinstance(call["args"]["city"], str)
    final = with_tools.invoke([question, called, ToolMessage("21 C and sunny", tool_call_id=call["id"])])
    assert final.tool_calls == [] and final.content.startswith("[simulated]")


def test_bind_tools_streamed(llm):
    chunks = list(llm.bind_tools([get_weather], tool_choice="get_weather").stream("weather in Rome"))
    merged = chunks[0]
    for chunk in chunks[1:]:
        merged += chunk
    assert [c["name"] for c in merged.tool_calls] == ["get_weather"]


def test_with_structured_output(llm):
    forecast = llm.with_structured_output(Forecast).invoke("Forecast for Oslo")
    assert isinstance(forecast, Forecast)
    as_tool = llm.with_structured_output(Forecast, method="function_calling").invoke("Forecast for Oslo")
    assert isinstance(as_tool, Forecast)
