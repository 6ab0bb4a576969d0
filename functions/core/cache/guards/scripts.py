"""Text in scripts other than Latin (CJK, Cyrillic, Arabic, Devanagari, Greek ...).

The embedders the cache ships read English: text in another script reaches them as unknown or
byte-level pieces, so different questions in it embed close to one another (often near 1.0), and
a similarity score says nothing about them. So the guard does not trust the score there: a
semantic hit between texts that hold non-Latin letters is served only when those letters are the
same, in the same order, up to Unicode compatibility forms (full-width, ligatures), case,
spacing and punctuation. The Latin part of such a text is still judged by the other guards.
"""

from __future__ import annotations

import unicodedata
from functools import lru_cache

#: Latin letters: Basic Latin to Latin Extended-B, IPA, Latin Extended Additional, -C, -D and -E
_LATIN_RANGES = ((0x0000, 0x024F), (0x0250, 0x02AF), (0x1E00, 0x1EFF), (0x2C60, 0x2C7F),
                 (0xA720, 0xA7FF), (0xAB30, 0xAB6F))


def _latin(char: str) -> bool:
    code = ord(char)
    return any(low <= code <= high for low, high in _LATIN_RANGES)


@lru_cache(maxsize=8192)
def non_latin_text(text: str) -> str:
    """The text's letters, marks and digits outside the Latin script, normalised (NFKC, case
    folded), in order; "" for a text in Latin script only."""
    if text.isascii():
        return ""  # the usual case, at no cost
    folded = unicodedata.normalize("NFKC", text).casefold()
    return "".join(ch for ch in folded if not _latin(ch) and unicodedata.category(ch)[0] in "LMN")


def script_differs(question: str, cached: str) -> bool:
    """Either text holds non-Latin letters, and they are not the same on both sides."""
    here, there = non_latin_text(question), non_latin_text(cached)
    return (bool(here) or bool(there)) and here != there
