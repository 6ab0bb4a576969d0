"""Which chat parameters tierup accepts, ignores or refuses, and which tier honours which.

The rule: nothing that could change an answer is silently dropped. So a request's fields fall
in three groups:

* **honoured by every tier**: ``model``, ``messages`` (text), ``max_tokens`` /
  ``max_completion_tokens``, ``temperature``, ``top_p``, ``stop``, ``stream``,
  ``stream_options``, ``n = 1``;
* **honoured by some tiers** (``TIER_PARAMS``): a provider lists what it honours in its
  ``supported_params``; a request that uses one its tier cannot honour gets a 400 naming the
  parameter and the tier (``unsupported_on``), and a fallback tier that cannot honour it is
  skipped rather than tried;
* **accepted and ignored** (``IGNORED_PARAMS``): fields that never change an answer.

Anything else is refused with a 400 naming it (``check_chat_request``).

No I/O here.
"""

from __future__ import annotations

from collections.abc import Sequence

from .chat import ChatRequest
from .errors import RequestError
from .structured_output import check_request_schemas, needs_check

#: Fields accepted and ignored, because they never change the answer. Documented in README.md.
IGNORED_PARAMS: dict[str, str] = {
    "user": "an end-user id for the caller's own abuse tracking; tierup has its own tenant ids",
    "safety_identifier": "the newer name of `user`",
    "metadata": "tags for OpenAI's stored completions; tierup stores none (the ledger keeps its own)",
    "store": "only `false` (or null): tierup never stores completions for later retrieval",
    "service_tier": "OpenAI's processing tier; tierup's own routing decides where a request runs",
    "prompt_cache_key": "a provider prompt-cache hint; tierup's cache keys on the request itself",
    "tierup": "tierup's own options (`{\"cache\": false}`)",
}

#: Parameters only some tiers honour: the name a provider lists in ``supported_params``, which
#: is the OpenAI parameter name (images and n > 1 have names of their own).
TIER_PARAMS = ("tools", "tool_choice", "parallel_tool_calls", "response_format", "images", "seed",
               "presence_penalty", "frequency_penalty", "logprobs", "top_logprobs", "logit_bias",
               "reasoning_effort", "n")

#: what each kind of provider honours
ALL_PARAMS = frozenset(TIER_PARAMS) - {"n"}  # one choice per request, whatever the tier (README)

_KNOWN_FIELDS = frozenset(ChatRequest.model_fields)


def check_chat_request(chat: ChatRequest) -> None:
    """The checks pydantic's schema cannot express; raises ``RequestError`` naming the field.

    Cheap for a plain request: a few attribute reads.
    """
    extra = chat.model_extra
    if extra:
        unknown = sorted(name for name in extra if name not in IGNORED_PARAMS)
        if unknown:
            raise RequestError(f"unsupported parameter {unknown[0]!r}: tierup does not know it, and a field "
                               "that could change the answer is never silently ignored",
                               param=unknown[0], code="unsupported_parameter")
    if chat.store:
        raise RequestError("store=true is not supported: tierup does not store completions for later "
                           "retrieval (send false or leave it out)", param="store", code="unsupported_parameter")
    if chat.top_logprobs is not None and not chat.logprobs:
        raise RequestError("top_logprobs requires logprobs=true", param="top_logprobs")
    if chat.tools is not None or chat.tool_choice is not None:
        _check_tools(chat)
    if needs_check(chat.response_format, chat.tools):
        check_request_schemas(chat.response_format, chat.tools)
    for index, message in enumerate(chat.messages):
        if message.role == "tool":
            if not message.tool_call_id:
                raise RequestError("a tool message needs the tool_call_id it answers",
                                   param=f"messages[{index}].tool_call_id")
        elif message.tool_calls is not None and message.role != "assistant":
            raise RequestError("only assistant messages carry tool_calls", param=f"messages[{index}].tool_calls")


def _check_tools(chat: ChatRequest) -> None:
    names = [tool.function.name for tool in chat.tools or ()]
    if len(set(names)) != len(names):
        raise RequestError("tool names must be unique", param="tools")
    choice = chat.tool_choice
    if choice is None or choice in ("auto", "none"):
        return
    if not names:
        raise RequestError("tool_choice needs tools to choose from", param="tool_choice")
    if not isinstance(choice, str) and choice.function.name not in names:
        raise RequestError(f"tool_choice names {choice.function.name!r}, which is not among the tools",
                           param="tool_choice")


def requested_params(chat: ChatRequest) -> list[tuple[str, str]]:
    """The tier-dependent parameters a request uses: (name in ``supported_params``, the field to
    name in an error). Values that change nothing (a zero penalty, ``logprobs: false``,
    ``response_format: text``, ``tool_choice: none`` without tools) do not count."""
    used: list[tuple[str, str]] = []
    if chat.tools:
        used.append(("tools", "tools"))
        if chat.tool_choice is not None and chat.tool_choice != "auto":
            used.append(("tool_choice", "tool_choice"))
        if chat.parallel_tool_calls is False:
            used.append(("parallel_tool_calls", "parallel_tool_calls"))
    if chat.response_format is not None and chat.response_format.type != "text":
        used.append(("response_format", "response_format"))
    if chat.seed is not None:
        used.append(("seed", "seed"))
    if chat.presence_penalty:
        used.append(("presence_penalty", "presence_penalty"))
    if chat.frequency_penalty:
        used.append(("frequency_penalty", "frequency_penalty"))
    if chat.logprobs:
        used.append(("logprobs", "logprobs"))
        if chat.top_logprobs:
            used.append(("top_logprobs", "top_logprobs"))
    if chat.logit_bias:
        used.append(("logit_bias", "logit_bias"))
    if chat.reasoning_effort is not None:
        used.append(("reasoning_effort", "reasoning_effort"))
    if chat.n > 1:
        used.append(("n", "n"))
    for index, message in enumerate(chat.messages):
        if message.content is not None and not isinstance(message.content, str):
            for part_index, part in enumerate(message.content):
                if part.type == "image_url":
                    used.append(("images", f"messages[{index}].content[{part_index}]"))
                    break
    return used


def unsupported_on(used: Sequence[tuple[str, str]], supported: frozenset[str]) -> tuple[str, str] | None:
    """The first of ``used`` that a provider honouring ``supported`` cannot honour, or None."""
    for name, param in used:
        if name not in supported:
            return name, param
    return None


def passthrough_params(chat: ChatRequest) -> dict:
    """The sampling parameters handed to a tier that honours them, by OpenAI name."""
    params: dict = {}
    for name in ("seed", "presence_penalty", "frequency_penalty", "logprobs", "top_logprobs", "logit_bias",
                 "reasoning_effort"):
        value = getattr(chat, name)
        if value is not None:
            params[name] = value
    return params


def refusal_message(name: str, param: str, tier: str, route: str) -> str:
    if name == "n":
        return (f"n > 1 is not supported on any tier (here {tier}, route {route!r}): tierup answers with one "
                "choice per request; send n requests instead")
    what = "image content parts" if name == "images" else param
    return f"{what} cannot be honoured by the {tier} tier that serves route {route!r} now"


def supported_params(provider) -> frozenset[str]:
    """What a provider honours; a provider that does not say honours plain requests only."""
    return getattr(provider, "supported_params", frozenset())


def honouring_targets(chat: ChatRequest, route: str, targets: list) -> list:
    """``targets`` less those that cannot honour the request. The first target is the tier the
    route is on now: if it cannot, the request is refused (400 naming the parameter and the tier)
    rather than moved to a tier it was not meant for."""
    used = requested_params(chat)
    if not used:
        return targets
    refused = unsupported_on(used, supported_params(targets[0].provider))
    if refused is not None:
        name, param = refused
        raise RequestError(refusal_message(name, param, targets[0].tier, route), param=param,
                           code="unsupported_parameter")
    return [target for target in targets if unsupported_on(used, supported_params(target.provider)) is None]
