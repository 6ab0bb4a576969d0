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
    return any(_fold(w) in NEGATIONS or _fold(w).endswith("n't") for w in _words(text))


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


def near_miss_reasons(question: str, cached: str) -> list[str]:
    """What differs in a way embeddings blur; empty when the cached answer may be served."""
    reasons = []
    if negated(question) != negated(cached):
        reasons.append("negation")
    if numbers(question) != numbers(cached):
        reasons.append("numbers")
    if dates(question) != dates(cached):
        reasons.append("dates")
    # A name on either side must appear (in any case) on the other: "learn Java" vs "learn Python".
    if not names(question) <= _folded_words(cached) or not names(cached) <= _folded_words(question):
        reasons.append("names")
    return reasons
