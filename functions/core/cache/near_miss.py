"""Cheap guards against semantic near-misses: questions that embeddings place close together
although their answers differ ("cancel my subscription" / "don't cancel my subscription",
"a 30-year mortgage" / "a 15-year mortgage", "learn Java" / "learn Python").

Each guard compares the incoming question with the cached one and names what differs; a
semantic hit is served only when no guard objects. They are deliberately strict: a refused hit
costs one provider call, a wrong hit serves someone a wrong answer.

No I/O here.
"""

from __future__ import annotations

import re
from functools import lru_cache

_WORD = re.compile(r"[A-Za-z][A-Za-z'\-]*|\d+(?:[.,:/]\d+)*(?:st|nd|rd|th|s|k|m|%)?")

NEGATIONS = frozenset({
    "not", "no", "never", "nothing", "nobody", "none", "neither", "nor", "cannot", "without",
    "don't", "doesn't", "didn't", "isn't", "aren't", "wasn't", "weren't", "won't", "wouldn't",
    "can't", "couldn't", "shouldn't", "haven't", "hasn't", "hadn't", "mustn't", "dont", "doesnt",
    "didnt", "isnt", "arent", "cant", "wont", "shouldnt", "stop", "avoid", "unable",
})

NUMBER_WORDS = {
    "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5", "six": "6",
    "seven": "7", "eight": "8", "nine": "9", "ten": "10", "eleven": "11", "twelve": "12",
    "twenty": "20", "thirty": "30", "forty": "40", "fifty": "50", "hundred": "100",
    "thousand": "1000", "million": "1000000", "billion": "1000000000", "first": "1st",
    "teens": "1x", "twenties": "2x", "thirties": "3x", "forties": "4x", "fifties": "5x",
    "sixties": "6x", "seventies": "7x", "eighties": "8x", "nineties": "9x",
    "second": "2nd", "third": "3rd", "half": "0.5", "double": "x2", "twice": "x2",
}

#: "may" and "march" are left out: as verbs they are far more common than as months
DATE_WORDS = frozenset({
    "january", "february", "april", "june", "july", "august", "september", "october", "november",
    "december", "jan", "feb", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec",
    "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday", "today",
    "tomorrow", "yesterday", "tonight", "weekend", "morning", "evening", "night", "daily",
    "weekly", "monthly", "yearly", "annually", "before", "after",
})

#: words that start a question capitalised, or are capitalised without naming anything
_NOT_NAMES = frozenset({"i", "i'm", "i've", "i'd", "i'll", "ok", "okay"})


def _fold(word: str) -> str:
    word = word.lower().replace("\u2019", "'")
    return word[:-2] if word.endswith("'s") else word


@lru_cache(maxsize=8192)
def _words(text: str) -> tuple[str, ...]:
    return tuple(_WORD.findall(text.replace("\u2019", "'")))


def negated(text: str) -> bool:
    """A negation word, or a ``non-`` word ("non-Indian men")."""
    return any(_fold(w) in NEGATIONS or _fold(w).endswith("n't") or _fold(w).startswith("non-")
               for w in _words(text))


_IDENTIFIER = re.compile(r"\b(?=[A-Za-z]*\d)(?=\d*[A-Za-z])[A-Za-z0-9]+\b")


def identifiers(text: str) -> frozenset[str]:
    """Letters-and-digits tokens (model numbers, versions): "M604n", "4G", "iOS10"."""
    return frozenset(m.group(0).lower() for m in _IDENTIFIER.finditer(text))


def numbers(text: str) -> frozenset[str]:
    found = set()
    for word in _words(text):
        folded = _fold(word)
        if folded[0].isdigit():
            found.add(folded.replace(",", ""))
        elif folded in NUMBER_WORDS:
            found.add(NUMBER_WORDS[folded])
    return frozenset(found)


def dates(text: str) -> frozenset[str]:
    return frozenset(_fold(w) for w in _words(text) if _fold(w) in DATE_WORDS)


def names(text: str) -> frozenset[str]:
    """Capitalised words not starting a sentence, and acronyms: a rough named-entity finder."""
    found = set()
    sentence_start = True
    for match in re.finditer(r"\S+", text.replace("\u2019", "'")):
        token = match.group(0)
        for word in _WORD.findall(token):
            if not sentence_start and word[0].isupper() and _fold(word) not in _NOT_NAMES:
                found.add(_fold(word))
            elif len(word) > 1 and word.isupper():
                found.add(_fold(word))
            sentence_start = False
        sentence_start = token[-1] in ".?!:" or sentence_start
    return frozenset(found)


def _folded_words(text: str) -> frozenset[str]:
    words = set()
    for word in _words(text):
        folded = _fold(word)
        words.add(folded)
        words.update(part for part in folded.split("-") if part)
    return frozenset(words)


def _order_of(names_: frozenset[str], text: str) -> list[str]:
    seen: list[str] = []
    for word in _words(text):
        for part in (_fold(word), *_fold(word).split("-")):
            if part in names_ and part not in seen:
                seen.append(part)
    return seen


def near_miss_reasons(question: str, cached: str) -> list[str]:
    """What differs in a way embeddings blur; empty when the cached answer may be served."""
    reasons = []
    if negated(question) != negated(cached):
        reasons.append("negation")
    if numbers(question) != numbers(cached) or identifiers(question) != identifiers(cached):
        reasons.append("numbers")
    if dates(question) != dates(cached):
        reasons.append("dates")
    # A name on either side must appear (in any case) on the other: "learn Java" vs "learn Python".
    question_names, cached_names = names(question), names(cached)
    if not question_names <= _folded_words(cached) or not cached_names <= _folded_words(question):
        reasons.append("names")
    # ... and in the same order: "drive from Texas to California" vs "from California to Texas".
    elif len(shared := question_names | cached_names) > 1 and _order_of(shared, question) != _order_of(shared, cached):
        reasons.append("order")
    return reasons
