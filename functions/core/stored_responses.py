"""Stored Responses (``store`` not false): what is kept for ``GET /v1/responses/{id}`` and for
``previous_response_id``, and how it is packed.

A stored response is the response object as it was returned, and the conversation a
continuation starts from (input and answer, as chat messages, without the instructions). Both
are kept compressed in one item of the ``state`` table, under a key that holds the tenant's id:
a response is only ever found by the tenant that created it, and it expires after
``[gateway] responses-ttl-days``. DynamoDB caps an item at 400 KB, so a conversation that would
not fit is refused before the model is called (400 naming ``store``), never dropped after.

No I/O here.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import orjson

from .chat import Message
from .errors import RequestError

#: packed body + conversation of one stored response: DynamoDB's item limit (400 KB) less the
#: keys and attributes around them
MAX_STORED_BYTES = 380_000
#: room kept for the answer when a request's conversation is checked before the model runs
ANSWER_ROOM_BYTES = 60_000

_messages = None  # the validator of a stored conversation, built on first use (not at cold start)


@dataclass(frozen=True, slots=True)
class StoredResponse:
    response_id: str
    tenant_id: str
    #: the response object, as ``GET /v1/responses/{id}`` returns it (compressed JSON)
    body: bytes
    #: the conversation so far (compressed JSON list of chat messages)
    conversation: bytes
    #: epoch seconds after which it is gone (DynamoDB TTL; readers check it too)
    expires_at: int


def pack(data: bytes) -> bytes:
    return zlib.compress(data, 6)


def unpack(data: bytes) -> bytes:
    return zlib.decompress(data)


def encode_conversation(messages: list[Message]) -> bytes:
    return orjson.dumps([message.model_dump(mode="json", by_alias=True, exclude_none=True) for message in messages])


def decode_conversation(packed: bytes) -> list[Message]:
    global _messages
    if _messages is None:
        from pydantic import TypeAdapter

        _messages = TypeAdapter(list[Message])
    return _messages.validate_json(unpack(packed))


def check_storable(messages: list[Message]) -> None:
    """Refuse, before the model runs, a conversation too large to store with room for its answer."""
    raw = encode_conversation(messages)
    limit = MAX_STORED_BYTES - ANSWER_ROOM_BYTES
    if len(raw) <= limit or len(pack(raw)) <= limit:
        return
    raise RequestError(f"this conversation is too large to store (over {limit} bytes compressed): send "
                       "store=false and pass the whole conversation in input instead of previous_response_id",
                       param="store", code="conversation_too_large")


def stored_response(response_id: str, tenant_id: str, body: bytes, messages: list[Message],
                    expires_at: int) -> StoredResponse:
    packed_body, conversation = pack(body), pack(encode_conversation(messages))
    if len(packed_body) + len(conversation) > MAX_STORED_BYTES:
        raise RequestError("the answer made this conversation too large to store: send store=false and pass "
                           "the whole conversation in input", param="store", code="conversation_too_large")
    return StoredResponse(response_id, tenant_id, packed_body, conversation, expires_at)
