"""Near-miss guards: what embeddings blur must still keep a cached answer from being served."""

from __future__ import annotations

import pytest

from functions.core.cache.near_miss import dates, names, near_miss_reasons, negated, numbers


@pytest.mark.parametrize("question, cached, reason", [
    ("Don't cancel my subscription", "Cancel my subscription", "negation"),
    ("How can I not gain weight?", "How can I gain weight?", "negation"),
    ("What is a 15-year mortgage?", "What is a 30-year mortgage?", "numbers"),
    ("Is the iPhone 7 waterproof?", "Is the iPhone 6 waterproof?", "numbers"),
    ("Which is better, two or three cores?", "Which is better, 2 or 4 cores?", "numbers"),
    ("What happened in January?", "What happened in June?", "dates"),
    ("What should I do before my wedding?", "What should I do after my wedding?", "dates"),
    ("How do I learn Java quickly?", "How do I learn Python quickly?", "names"),
    ("Is NASA hiring?", "Is ESA hiring?", "names"),
    ("Is it safe to drive from Texas to California?", "Is it safe to drive from California to Texas?", "order"),
    ("Why do Poles dislike Russians?", "Why do Russians dislike Poles?", "order"),
    ("Is the M604n better?", "Is the M604dn better?", "numbers"),
    ("What do Indian men think of Indian women?", "What do non-Indian men think of Indian women?", "negation"),
    ("Struggles of women in their forties", "Struggles of women in their fifties", "numbers"),
])
def test_guard_refuses(question, cached, reason):
    assert reason in near_miss_reasons(question, cached)


@pytest.mark.parametrize("question, cached", [
    ("How do I cancel my subscription?", "How can I cancel my subscription?"),
    ("How do I learn python?", "What is the best way to learn Python?"),
    ("What is the best book for building self-esteem?", "Which book is best for building Self Esteem?"),
    ("Where is Google's head office?", "Where is the head office of Google?"),
    ("How to earn 100 dollars online?", "How can I make $100 online?"),
])
def test_guard_lets_paraphrases_through(question, cached):
    assert near_miss_reasons(question, cached) == []


def test_extractors():
    assert negated("I can't log in") and not negated("I can log in")
    assert numbers("Top 10 books of 2016, one per 1,000 pages") == {"10", "2016", "1", "1000"}
    assert dates("Is it open on Sunday or tomorrow?") == {"sunday", "tomorrow"}
    assert names("What does Elon Musk think of NASA? He likes it.") == {"elon", "musk", "nasa"}
