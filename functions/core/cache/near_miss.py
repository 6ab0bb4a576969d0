"""Cheap guards against semantic near-misses: questions that embeddings place close together
although their answers differ ("cancel my subscription" / "don't cancel my subscription",
"a 30-year mortgage" / "a 15-year mortgage", "learn Java" / "learn Python", "how does it
react" / "why does it react", "the best country" / "the worst country").

Each guard compares the incoming question with the cached one and names what differs; a
semantic hit is served only when no guard objects. They are deliberately strict: a refused hit
costs one provider call, a wrong hit serves someone a wrong answer. Every guard is a general
English rule (no list of words fitted to a data set), and each question is analysed once
(``_profile`` is memoised), so a guard costs microseconds per candidate.

No I/O here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from .guards.deictic import points_outside
from .guards.opposites import COMMON_OPPOSITES, affixal_clash, antonym_clash, lemma
from .guards.order import relation_swapped
from .guards.scripts import script_differs
from .guards.tokens import is_content

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

#: words before "one" that make it the pronoun ("how does one", "which one"), not the number
_ONE_PRONOUN_BEFORE = frozenset({
    "which", "the", "no", "any", "every", "each", "some", "this", "that", "another", "such",
    "does", "do", "can", "could", "should", "would", "will", "must", "may", "might", "shall",
    "if", "when", "where", "how", "why", "what",
})
#: words after "one" that make it the pronoun ("one should", "one of them")
_ONE_PRONOUN_AFTER = frozenset({
    "of", "another", "can", "could", "should", "would", "will", "must", "may", "might", "shall",
    "does", "did", "has", "had", "is", "was", "needs", "gets", "knows", "wants", "thing",
})

#: "may" and "march" are left out: as verbs they are far more common than as months
DATE_WORDS = frozenset({
    "january", "february", "april", "june", "july", "august", "september", "october", "november",
    "december", "jan", "feb", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec",
    "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday", "today",
    "tomorrow", "yesterday", "tonight", "weekday", "weekend", "morning", "evening", "night", "daily",
    "weekly", "monthly", "yearly", "annually", "before", "after",
})

#: what a question word asks for. "how", "what" and "which" all ask for a thing or a method
#: ("how do I learn X" = "what is the best way to learn X" = "which way ..."), so they share a
#: kind; a reason, a place, a time and a person are other kinds of answer.
WH_KINDS = {
    "how": "thing", "what": "thing", "which": "thing", "whats": "thing",
    "why": "reason", "where": "place", "when": "time", "who": "person", "whom": "person",
    "whose": "person",
}

#: comparatives and superlatives: "the most famous painting" is not "a famous painting", nor
#: "more stamina" "the most stamina". "the best way to" is left out: it says "how to".
DEGREE_WORDS = frozenset({
    "best", "better", "worst", "worse", "most", "more", "least", "less", "fewest", "fewer",
})

#: the everyday opposites (kept under their first name); WordNet's and the affixal ones are in guards/
ANTONYMS = COMMON_OPPOSITES

#: words that start a question capitalised, or are capitalised without naming anything
_NOT_NAMES = frozenset({"i", "i'm", "i've", "i'd", "i'll", "ok", "okay"})

#: joining words that make two names a list, not a direction: "Messi or Ronaldo"
_COORDINATORS = frozenset({"and", "or", "&", "/", ",", "vs", "versus", "nor"})


def _fold(word: str) -> str:
    word = word.lower().replace("\u2019", "'")
    return word[:-2] if word.endswith("'s") else word


def _singular(word: str) -> str:
    """A light plural fold, enough to match "leaders"/"leader" and "countries"/"country"."""
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


@lru_cache(maxsize=8192)
def _words(text: str) -> tuple[str, ...]:
    return tuple(_WORD.findall(text.replace("\u2019", "'")))


def _hyphen_parts(word: str) -> list[str]:
    """A folded word, hyphenated ones split into their parts ("zero-sum" -> "zero", "sum")."""
    return [part for part in _fold(word).split("-") if part]


@lru_cache(maxsize=8192)
def _parts(text: str) -> tuple[str, ...]:
    """The text's folded words, hyphenated ones split into their parts."""
    return tuple(part for word in _words(text) for part in _hyphen_parts(word))


def negations(text: str) -> int:
    """How many negations: a negation word, an ``n't`` word, or a ``non-`` word. The "not" of
    "... or not?" and "why or why not?" asks both ways and negates nothing."""
    count = 0
    folded = [_fold(w) for w in _words(text)]
    for i, word in enumerate(folded):
        if word == "not" and (folded[i - 1:i] == ["or"] or folded[max(i - 2, 0):i] == ["or", "why"]):
            continue
        if word in NEGATIONS or word.endswith("n't") or word.startswith("non-"):
            count += 1
    return count


def negated(text: str) -> bool:
    """A negation word, or a ``non-`` word ("non-Indian men")."""
    return negations(text) > 0


_IDENTIFIER = re.compile(r"\b(?=[A-Za-z]*\d)(?=\d*[A-Za-z])[A-Za-z0-9]+\b")


def identifiers(text: str) -> frozenset[str]:
    """Letters-and-digits tokens (model numbers, versions): "M604n", "4G", "iOS10"."""
    return frozenset(m.group(0).lower() for m in _IDENTIFIER.finditer(text))


def _is_pronoun_one(parts: tuple[str, ...], i: int) -> bool:
    """"one" as the pronoun: "how does one ...", "which one", "one should", "one of", and after a
    describing word with no noun to count after it: "a quick one", "the best one for me"."""
    before = parts[i - 1] if i > 0 else ""
    after = parts[i + 1] if i + 1 < len(parts) else ""
    if before in _ONE_PRONOUN_BEFORE or after in _ONE_PRONOUN_AFTER:
        return True
    return bool(before) and is_content(before) and before not in NUMBER_WORDS and not (after and is_content(after))


def numbers(text: str) -> frozenset[str]:
    """Numerals and number words ("two", "first", "forties"); "one" only where it counts."""
    found = set()
    parts = _parts(text)
    for i, word in enumerate(parts):
        if word[0].isdigit():
            found.add(word.replace(",", ""))
        elif word in NUMBER_WORDS and not (word == "one" and _is_pronoun_one(parts, i)):
            found.add(NUMBER_WORDS[word])
    return frozenset(found)


def dates(text: str) -> frozenset[str]:
    """Calendar words, plurals folded ("weekdays" -> "weekday")."""
    return frozenset(w for w in map(_singular, _parts(text)) if w in DATE_WORDS)


def names(text: str) -> frozenset[str]:
    """Capitalised words not starting a sentence, and acronyms: a rough named-entity finder.
    Hyphenated names count by their parts ("Myers-Briggs" -> "myers", "briggs")."""
    found = set()
    sentence_start = True
    for match in re.finditer(r"\S+", text.replace("\u2019", "'")):
        token = match.group(0)
        for word in _WORD.findall(token):
            capitalised = not sentence_start and word[0].isupper() and _fold(word) not in _NOT_NAMES
            if capitalised or (len(word) > 1 and word.isupper()):
                found.update(_hyphen_parts(word))
            sentence_start = False
        sentence_start = token[-1] in ".?!:" or sentence_start
    return frozenset(found)


def wh_kind(text: str) -> str | None:
    """What the question's first question word asks for (``WH_KINDS``); None for a yes/no question."""
    for word in _parts(text):
        if word in WH_KINDS:
            return WH_KINDS[word]
    return None


def degree(text: str) -> frozenset[str]:
    """Comparatives and superlatives (``DEGREE_WORDS``), except in "the best way(s) to"."""
    parts = _parts(text)
    return frozenset(w for i, w in enumerate(parts) if w in DEGREE_WORDS
                     and not (i + 1 < len(parts) and parts[i + 1] in ("way", "ways")))


def graded(text: str) -> frozenset[tuple[str, str]]:
    """Degree said either way: ("more", "healthy") for "more healthy" and for "healthier", ("most",
    "big") for "most big" and "biggest" (inflected forms of adjectives that have an opposite)."""
    parts, found = _parts(text), set()
    for i, word in enumerate(parts):
        if word in ("more", "most"):
            found.add((word, parts[i + 1] if i + 1 < len(parts) else ""))
        elif word.endswith(("er", "est")) and (base := lemma(word)) != word:
            found.add(("more" if word.endswith("er") else "most", base))
    return frozenset(found)


def _same_degree(q: _Profile, c: _Profile) -> bool:
    """The degree words differ but say the same: "the top universities" are the best ones, and
    "healthier" is "more healthy"."""
    differing = q.degree ^ c.degree
    if differing <= {"more", "most"} and q.graded == c.graded:
        return True
    return differing == {"best"} and "top" in (c.words if "best" in q.degree else q.words)


def _coordinated(names_: frozenset[str], text: str) -> set[frozenset[str]]:
    """Pairs of names joined as a list ("Messi or Ronaldo", "Chinese culture and Western
    culture", "an INTP and an INTJ"): their order carries no meaning. One word may follow the
    first name, and an article the joining word."""
    raw = re.findall(r"[A-Za-z0-9'\-]+|[,&/]", text.replace("\u2019", "'"))
    tokens = [_singular(_fold(t)) for t in raw]
    pairs = set()
    for i, token in enumerate(tokens):
        if token not in names_:
            continue
        for gap in (1, 2):  # NAME COORD [the] NAME, or NAME word COORD [the] NAME
            j = i + gap
            if j < len(tokens) and tokens[j] in _COORDINATORS:
                k = j + 1 + (j + 1 < len(tokens) and tokens[j + 1] in ("the", "a", "an"))
                if k < len(tokens) and tokens[k] in names_ and tokens[k] != token:
                    pairs.add(frozenset((token, tokens[k])))
    return pairs


def _order_of(names_: frozenset[str], text: str) -> list[str]:
    seen: list[str] = []
    for part in map(_singular, _parts(text)):
        if part in names_ and part not in seen:
            seen.append(part)
    return seen


def _order_differs(shared: frozenset[str], question: str, cached: str) -> bool:
    """Two names in one order here and the other there, unless both texts list them."""
    q_order, c_order = _order_of(shared, question), _order_of(shared, cached)
    if q_order == c_order:
        return False
    listed = _coordinated(shared, question) & _coordinated(shared, cached)
    c_rank = {name: i for i, name in enumerate(c_order)}
    common = [n for n in q_order if n in c_rank]
    return any(c_rank[x] > c_rank[y] and frozenset((x, y)) not in listed
               for i, x in enumerate(common) for y in common[i + 1:])


@dataclass(frozen=True)
class _Profile:
    negations: int
    numbers: frozenset[str]
    identifiers: frozenset[str]
    dates: frozenset[str]
    names: frozenset[str]
    words: frozenset[str]  # folded words and their hyphen parts, singular
    wh: str | None
    degree: frozenset[str]
    graded: frozenset[tuple[str, str]]


@lru_cache(maxsize=8192)
def _profile(text: str) -> _Profile:
    words = {_singular(p) for p in _parts(text)} | {_fold(w) for w in _words(text)}
    return _Profile(negations(text), numbers(text), identifiers(text), dates(text),
                    frozenset(_singular(n) for n in names(text)), frozenset(words), wh_kind(text),
                    degree(text), graded(text))


def not_cacheable_reason(text: str) -> str | None:
    """Why a question may never share a semantic answer, whatever it is compared with: it points at
    something its text does not hold ("which breed is this dog?", "the song in the link below")."""
    return "not cacheable: refers to something outside the text" if points_outside(text) else None


def near_miss_reasons(question: str, cached: str) -> list[str]:
    """What differs in a way embeddings blur; empty when the cached answer may be served. A
    question that may share no answer at all gets a single "not cacheable: ..." reason."""
    reason = not_cacheable_reason(question) or not_cacheable_reason(cached)
    if reason:
        return [reason]
    q, c = _profile(question), _profile(cached)
    reasons = []
    # text the embedder cannot read must match as text: "我喜欢你" / "你喜欢我"
    if script_differs(question, cached):
        reasons.append("script")
    # "stop" vs "can't stop" is a change of meaning as much as "stop" vs "keep going".
    if q.negations != c.negations:
        reasons.append("negation")
    if q.numbers != c.numbers or q.identifiers != c.identifiers:
        reasons.append("numbers")
    if q.dates != c.dates:
        reasons.append("dates")
    # A name on either side must appear (in any case) on the other: "learn Java" vs "learn Python".
    if not q.names <= c.words or not c.names <= q.words:
        reasons.append("names")
    # ... and in the same order: "drive from Texas to California" vs "from California to Texas".
    elif len(shared := q.names | c.names) > 1 and _order_differs(shared, question, cached):
        reasons.append("order")
    # ... and any two words around one relation: "convert litres to kg" vs "kg to litres".
    if "order" not in reasons and relation_swapped(question, cached):
        reasons.append("order")
    # "How does it react?" asks for a process, "Why does it react?" for a reason.
    if q.wh != c.wh and q.wh is not None and c.wh is not None:
        reasons.append("question word")
    if q.degree != c.degree and not _same_degree(q, c):
        reasons.append("degree")
    if antonym_clash(q.words, c.words):
        reasons.append("opposites")
    # "is it safe" / "is it unsafe", "useful" / "useless"
    if affixal_clash(q.words, c.words):
        reasons.append("affixal negation")
    return reasons
