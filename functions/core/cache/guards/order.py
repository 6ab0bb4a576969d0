"""Argument order around a relation: "convert litres to kg" / "convert kg to litres", "transfer
from savings to current" / the reverse, "what do teachers think of parents" / the reverse.

Two content words that both questions share, one before the other in one question and after it
in the other, ask a different question when the same relation sits between them in both (the
words between, articles left out: "to", "think of", "hate"), or a directional preposition alone
does in both ("litres to kg" / "kg into litres"). Words joined as a list ("A and B", "A or B", "between A and B") may
come in any order, and a possessive reads as its "of" form ("Google's office" = "the office of
Google"), so those reorderings pass. Capitalised or not, any two words count.
"""

from __future__ import annotations

from functools import lru_cache

from .tokens import ARTICLES, COORDINATORS, PUNCTUATION, is_content, singular, tokens

#: prepositions that give a relation its direction (a closed class)
DIRECTIONAL = frozenset({"to", "from", "into", "onto", "than", "towards", "toward", "against"})
#: a longer stretch between two words is no longer one relation between them
_MAX_RELATION = 4


def _possessive_owner(token: str) -> str | None:
    if token.endswith("'s") and len(token) > 2 and token not in ("it's", "let's", "that's", "what's"):
        return token[:-2]
    if token.endswith("s'") and len(token) > 2:
        return token[:-1]
    return None


@lru_cache(maxsize=8192)
def relational_sequence(text: str) -> tuple[str, ...]:
    """The text's tokens, content words singular, possessives in their "of" form: "Google's head
    office" -> "head office of google"."""
    toks, out, i = tokens(text), [], 0
    while i < len(toks):
        owner = _possessive_owner(toks[i])
        if owner is not None:
            j = i + 1
            while j < len(toks) and is_content(toks[j]):
                j += 1
            out += [singular(t) for t in toks[i + 1:j]] + ["of", singular(owner)]
            i = j
            continue
        out.append(singular(toks[i]) if is_content(toks[i]) else toks[i])
        i += 1
    return tuple(out)


@lru_cache(maxsize=8192)
def _single_positions(sequence: tuple[str, ...]) -> dict[str, int]:
    """Where each content word stands, for words that occur once (a repeated one has no order)."""
    seen: dict[str, int] = {}
    repeated = set()
    for i, token in enumerate(sequence):
        if is_content(token):
            if token in seen:
                repeated.add(token)
            seen[token] = i
    return {word: i for word, i in seen.items() if word not in repeated}


def _relation(sequence: tuple[str, ...], start: int, end: int) -> tuple[str, ...] | None:
    """The words strictly between two positions, articles left out; None where they are no single
    relation: nothing, a list ("and", "or", ","), a clause break, or too long a stretch."""
    between = tuple(t for t in sequence[start + 1:end] if t not in ARTICLES)
    if not between or len(between) > _MAX_RELATION:
        return None
    if any(t in COORDINATORS or t in PUNCTUATION for t in between):
        return None
    return between


def relation_swapped(question: str, cached: str) -> bool:
    """Two shared words in swapped order around the same relation (or a lone directional one each)."""
    q_seq, c_seq = relational_sequence(question), relational_sequence(cached)
    q_at, c_at = _single_positions(q_seq), _single_positions(c_seq)
    shared = sorted((w for w in q_at if w in c_at), key=q_at.__getitem__)
    if shared == sorted(shared, key=c_at.__getitem__):
        return False  # the usual case: nothing swapped
    for i, first in enumerate(shared):
        for second in shared[i + 1:]:
            if c_at[second] > c_at[first]:
                continue
            here = _relation(q_seq, q_at[first], q_at[second])
            there = _relation(c_seq, c_at[second], c_at[first])
            if here is None or there is None:
                continue
            if here == there or (len(here) == len(there) == 1 and {*here, *there} <= DIRECTIONAL):
                return True
    return False
