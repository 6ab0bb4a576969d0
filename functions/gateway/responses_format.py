"""Answers rendered as the Responses API's objects and stream events. Pure functions of their inputs.

A streamed response is the event sequence OpenAI sends, each event numbered
(``sequence_number`` from 0) and named on its ``event:`` line:

    response.created, response.in_progress
    per text answer:  response.output_item.added (message), response.content_part.added,
                      response.output_text.delta..., response.output_text.done,
                      response.content_part.done, response.output_item.done
    per tool call:    response.output_item.added (function_call),
                      response.function_call_arguments.delta..., response.function_call_arguments.done,
                      response.output_item.done
    response.completed (or response.incomplete when the answer was cut short)

A failure after the stream started ends it with an ``error`` event (with a nested ``error``
object too, which the openai SDK raises on) and ``response.failed``. There is no ``[DONE]``.
"""

from __future__ import annotations

import time

import orjson

from ..core.chat import Completion, FinishReason, StreamAssembler, StreamDelta, Usage
from ..core.responses_request import ResponsesRequest

#: how an answer that was cut short is reported (``incomplete_details.reason``)
_INCOMPLETE = {"length": "max_output_tokens", "content_filter": "content_filter"}


def usage_json(usage: Usage) -> dict:
    return {"input_tokens": usage.prompt_tokens,
            "input_tokens_details": {"cached_tokens": usage.cached_tokens,
                                     "cache_write_tokens": usage.cache_write_tokens},
            "output_tokens": usage.completion_tokens, "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": usage.total_tokens}


def output_text_part(text: str, logprobs: list | None = None) -> dict:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": logprobs or []}


def message_item(item_id: str, status: str, content: list[dict]) -> dict:
    return {"id": item_id, "type": "message", "status": status, "role": "assistant", "content": content}


def function_call_item(item_id: str, call_id: str, name: str, arguments: str, status: str) -> dict:
    return {"id": item_id, "type": "function_call", "status": status, "call_id": call_id, "name": name,
            "arguments": arguments}


def _item_status(finish_reason: FinishReason | None) -> str:
    return "incomplete" if finish_reason in _INCOMPLETE else "completed"


class ResponseShape:
    """One response's object: the fields echoed from the request (as OpenAI echoes them), its id
    and the ids of its output items."""

    def __init__(self, response_id: str, request: ResponsesRequest, route: str) -> None:
        self.response_id = response_id
        self._suffix = response_id.removeprefix("resp_")
        text_format = request.text.format if request.text is not None else None
        choice = request.tool_choice
        self._echo = {
            "id": response_id, "object": "response", "created_at": int(time.time()),
            "background": False, "instructions": request.instructions,
            "max_output_tokens": request.max_output_tokens, "max_tool_calls": None,
            "metadata": request.metadata or {}, "model": route,
            "parallel_tool_calls": request.parallel_tool_calls is not False,
            "previous_response_id": request.previous_response_id,
            "reasoning": {"effort": request.reasoning.effort if request.reasoning else None, "summary": None},
            "service_tier": "default", "store": request.stored,
            "temperature": 1.0 if request.temperature is None else request.temperature,
            "text": {"format": text_format.model_dump(by_alias=True, exclude_none=True) if text_format
                     else {"type": "text"}},
            "tool_choice": choice.model_dump() if choice is not None and not isinstance(choice, str)
            else (choice or "auto"),
            "tools": [{"type": "function", "name": tool.name, "description": tool.description,
                       "parameters": tool.parameters, "strict": tool.strict is not False}
                      for tool in request.tools or ()],
            "top_logprobs": request.top_logprobs or 0,
            "top_p": 1.0 if request.top_p is None else request.top_p,
            "truncation": request.truncation or "disabled", "user": request.user,
        }

    @property
    def message_id(self) -> str:
        return f"msg_{self._suffix}"

    def call_item_id(self, index: int) -> str:
        return f"fc_{self._suffix}_{index}"

    def body(self, status: str, output: list[dict], *, usage: Usage | None = None, error: dict | None = None,
             finish_reason: FinishReason | None = None) -> dict:
        reason = _INCOMPLETE.get(finish_reason) if finish_reason else None
        return {**self._echo, "status": "incomplete" if reason else status,
                "completed_at": int(time.time()) if status == "completed" else None,
                "error": error, "incomplete_details": {"reason": reason} if reason else None,
                "output": output, "usage": usage_json(usage) if usage is not None else None}

    def completed(self, completion: Completion) -> dict:
        """A whole answer as the response object."""
        status = _item_status(completion.finish_reason)
        output = []
        if completion.text or completion.refusal is not None or not completion.tool_calls:
            content = []
            if completion.refusal is not None:
                content.append({"type": "refusal", "refusal": completion.refusal})
            if completion.text or completion.refusal is None:
                logprobs = (completion.logprobs or {}).get("content")
                content.append(output_text_part(completion.text, logprobs))
            output.append(message_item(self.message_id, status, content))
        output.extend(function_call_item(self.call_item_id(index), call.id, call.name, call.arguments, "completed")
                      for index, call in enumerate(completion.tool_calls))
        return self.body("completed", output, usage=completion.usage, finish_reason=completion.finish_reason)


class ResponseEventWriter:
    """Renders one streamed answer as the Responses API's events (``event: ...\\ndata: ...\\n\\n``)."""

    def __init__(self, shape: ResponseShape) -> None:
        self._shape = shape
        self._sequence = 0
        self._output: list[dict] = []
        #: the item being streamed: ("message", text pieces, logprobs) or ("call", item)
        self._open: tuple | None = None
        self._calls = 0
        self._finish: FinishReason | None = None
        self._usage: Usage | None = None
        self._answer = StreamAssembler()

    def _event(self, kind: str, body: dict) -> bytes:
        data = orjson.dumps({"type": kind, "sequence_number": self._sequence, **body})
        self._sequence += 1
        return b"event: " + kind.encode() + b"\ndata: " + data + b"\n\n"

    def start(self) -> bytes:
        created = self._shape.body("in_progress", [])
        return self._event("response.created", {"response": created}) + \
            self._event("response.in_progress", {"response": created})

    def render(self, delta: StreamDelta) -> bytes:
        self._answer.add(delta)
        out = b""
        if delta.text:
            if self._open is None or self._open[0] != "message":
                out += self._close() + self._open_message()
            self._open[1].append(delta.text)
            if delta.logprobs:
                self._open[2].extend(delta.logprobs)
            out += self._event("response.output_text.delta", {
                "item_id": self._shape.message_id, "output_index": len(self._output), "content_index": 0,
                "delta": delta.text, "logprobs": delta.logprobs or []})
        for piece in delta.tool_calls or ():
            if piece.id is not None:
                out += self._close() + self._open_call(piece.id, piece.name or "")
            if piece.arguments and self._open is not None and self._open[0] == "call":
                item = self._open[1]
                item["arguments"] += piece.arguments
                out += self._event("response.function_call_arguments.delta", {
                    "item_id": item["id"], "output_index": len(self._output), "delta": piece.arguments})
        if delta.finish_reason is not None:
            self._finish, self._usage = delta.finish_reason, delta.usage
            if self._open is None and not self._output:  # an empty answer is still one message
                out += self._open_message()
            out += self._close()
        return out

    def _open_message(self) -> bytes:
        self._open = ("message", [], [])
        index, item_id = len(self._output), self._shape.message_id
        return self._event("response.output_item.added", {
            "output_index": index, "item": message_item(item_id, "in_progress", [])}) + \
            self._event("response.content_part.added", {
                "item_id": item_id, "output_index": index, "content_index": 0, "part": output_text_part("")})

    def _open_call(self, call_id: str, name: str) -> bytes:
        item = function_call_item(self._shape.call_item_id(self._calls), call_id, name, "", "in_progress")
        self._calls += 1
        self._open = ("call", item)
        return self._event("response.output_item.added", {"output_index": len(self._output), "item": item})

    def _close(self) -> bytes:
        """The events that finish the item being streamed, if any."""
        if self._open is None:
            return b""
        index = len(self._output)
        if self._open[0] == "message":
            _, pieces, logprobs = self._open
            item_id, text = self._shape.message_id, "".join(pieces)
            part = output_text_part(text, logprobs)
            item = message_item(item_id, _item_status(self._finish), [part])
            out = self._event("response.output_text.done", {
                "item_id": item_id, "output_index": index, "content_index": 0, "text": text, "logprobs": logprobs}) + \
                self._event("response.content_part.done", {
                    "item_id": item_id, "output_index": index, "content_index": 0, "part": part})
        else:
            item = {**self._open[1], "status": "completed"}
            out = self._event("response.function_call_arguments.done", {
                "item_id": item["id"], "output_index": index, "arguments": item["arguments"]})
        self._open = None
        self._output.append(item)
        return out + self._event("response.output_item.done", {"output_index": index, "item": item})

    def final_body(self) -> dict:
        """The finished response object (what is stored, and what ``response.completed`` carries)."""
        return self._shape.body("completed", self._output, usage=self._usage, finish_reason=self._finish)

    def answer(self) -> Completion:
        """The whole answer streamed so far (what a continuation starts from)."""
        return self._answer.completion(self._finish or "stop", self._usage or Usage(), "")

    def completed(self, body: dict) -> bytes:
        kind = "response.incomplete" if body["status"] == "incomplete" else "response.completed"
        return self._event(kind, {"response": body})

    def failed(self, error: dict) -> bytes:
        """``error`` is OpenAI's error object (message, type, param, code). The item being
        streamed is left out of the failed response: it never finished."""
        failed = self._shape.body("failed", self._output, usage=self._usage,
                                  error={"code": error.get("code") or "server_error", "message": error["message"]})
        return self._event("error", {"code": error.get("code"), "message": error["message"],
                                           "param": error.get("param"), "error": error}) + \
            self._event("response.failed", {"response": failed})
