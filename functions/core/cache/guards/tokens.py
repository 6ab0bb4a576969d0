"""Lower-cased word and punctuation tokens, and English's closed word classes, for the guards."""

from __future__ import annotations

import re
from functools import lru_cache

_TOKEN = re.compile(r"[A-Za-z][A-Za-z'\-]*|\d+(?:[.,:/]\d+)*[A-Za-z%]*|[?.!,;:()&/]")

#: closed-class English: articles, determiners, pronouns, auxiliaries, prepositions, conjunctions
#: and question words. A finite inventory of the grammar, not of any data set; everything else
#: is a content word (a noun, a verb, an adjective or an adverb).
FUNCTION_WORDS = frozenset("""
a an the this that these those some any each every all both either neither no none another other
such what which who whom whose when where why how whats i me my mine we us our ours you your yours
he him his she her hers it its they them their theirs one ones oneself myself yourself itself
themselves ourselves himself herself is am are was were be been being do does did done doing have
has had having can could shall should will would may might must ought not nor and or but if then
so because as than to of in on at by for with without from into onto over under about above below
between among through during before after since until up down out off upon within against toward
towards across along around behind beyond near via per vs versus there here just very too also
i'm i've i'd i'll it's don't doesn't didn't can't isn't aren't wasn't won't
""".split())

#: quantifiers: a closed class beside the determiners
QUANTIFIERS = frozenset({"many", "much", "few", "several", "enough", "lot", "lots", "plenty"})
#: joining words that make two words a list, whose order carries no meaning ("A or B")
COORDINATORS = frozenset({"and", "or", "&", "/", ",", "vs", "versus", "nor", "between", "among"})
ARTICLES = frozenset({"a", "an", "the", "some", "any", "my", "your", "our", "their", "his", "her", "its"})
PUNCTUATION = frozenset("?.!,;:()&/")


def fold(word: str) -> str:
    return word.lower().replace("\u2019", "'")


@lru_cache(maxsize=8192)
def tokens(text: str) -> tuple[str, ...]:
    """Folded words, numbers and punctuation, in order."""
    return tuple(fold(t) for t in _TOKEN.findall(text.replace("\u2019", "'")))


def is_content(token: str) -> bool:
    return token not in FUNCTION_WORDS and token not in PUNCTUATION and token[0].isalpha()


def singular(word: str) -> str:
    """A light plural fold, enough to match "weekdays"/"weekday" and "countries"/"country"."""
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word
