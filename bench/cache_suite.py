"""The semantic cache's near-miss suite: pairs that must not share an answer, and paraphrases
that must, in the shapes that embeddings blur (issue 15).

    .venv/bin/python bench/cache_suite.py build     # writes bench/data/cache_suite.jsonl
    .venv/bin/python bench/cache_suite.py check     # the file is what the seed builds, and big enough
    .venv/bin/python bench/cache_suite.py report    # what the near-miss guards alone do, per shape

Each line is {"a", "b", "must_share", "shape", "split"}. Pairs come from templates filled with
varied vocabulary (seeded, so the file is reproducible) plus a few written by hand; none come from
the Quora pairs the semantic-cache bench evaluates on. Every vocabulary list is shuffled with the
seed and cut in two: pairs drawn from the first half are "dev", from the second "held-out". The
guards are general rules (functions/core/cache/near_miss.py, guards/) written without this suite;
the held-out half is there to show that they were not tuned to the dev half either.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench/data/cache_suite.jsonl"
SEED = 15
MIN_PAIRS = 300

# the vocabulary; each list is split dev / held-out by the seed
sys.path.insert(0, str(Path(__file__).resolve().parent))
from cache_suite_vocab import (  # noqa: E402
    UNITS, ACCOUNTS, GROUPS, ANIMALS, FOODS, AFFIXAL, ACTIVITIES, ADJ_NOUNS, NEG_ACTIONS,
    OPPOSITE_ADJ, OPPOSITE_NOUNS, PLACES, OPPOSITE_VERBS, PRODUCTS, SERVICES, MEDIA, CARRIERS, SCRIPTS,
    QUESTIONS, RANKED)


def _halves(rng: random.Random, items: list) -> tuple[list, list]:
    items = list(items)
    rng.shuffle(items)
    return items[: len(items) // 2], items[len(items) // 2:]


def _pairs_of(items: list) -> list[tuple]:
    return [(x, y) for i, x in enumerate(items) for y in items[i + 1:]]


class Suite:
    def __init__(self, seed: int = SEED):
        self.rng = random.Random(seed)
        self.rows: list[dict] = []

    def add(self, a: str, b: str, must_share: bool, shape: str, split: str) -> None:
        self.rows.append({"a": a, "b": b, "must_share": must_share, "shape": shape, "split": split})

    def sample(self, items: list, k: int) -> list:
        return self.rng.sample(items, min(k, len(items)))

    def each_half(self, vocab: list):
        dev, held = _halves(self.rng, vocab)
        yield "dev", dev
        yield "held-out", held


# -- shapes -----------------------------------------------------------------------------------------


def order_swaps(s: Suite) -> None:
    """Two nouns swapped around one relation (must not share), and rewordings or lists (must)."""
    relations = [
        (UNITS, ["How do I convert {x} to {y}?", "What is the formula to change {x} into {y}?",
                 "Is there an easy way to turn {x} into {y}?"], "How can I convert {x} into {y}?"),
        (ACCOUNTS, ["How do I transfer money from my {x} account to my {y} account?",
                    "Can I move funds from a {x} account into a {y} account?"],
         "How can I move money from my {x} account to my {y} account?"),
        (GROUPS, ["What do {x} think of {y}?", "Why do {x} distrust {y}?", "Do {x} earn more than {y}?",
                  "How can {x} support {y}?"], "What do {x} think about {y}?"),
        (ANIMALS, ["Why do {x} chase {y}?", "Are {x} faster than {y}?", "Can {x} be kept with {y}?"],
         "Why is it that {x} chase {y}?"),
        (FOODS, ["Is {x} healthier than {y}?", "Can I replace {x} with {y} in a recipe?",
                 "Does {x} go well with {y}?"], "Is {x} more healthy than {y}?"),
    ]
    lists = ["Which is healthier, {x} or {y}?", "What is the difference between {x} and {y}?",
             "Should I choose {x} or {y}?", "{X} vs {y}: which is better?"]
    for vocab, templates, paraphrase in relations:
        for split, half in s.each_half(vocab):
            for x, y in s.sample(_pairs_of(half), 12):
                template = s.rng.choice(templates)
                s.add(template.format(x=x, y=y), template.format(x=y, y=x), False, "order", split)
            for x, y in s.sample(_pairs_of(half), 6):
                s.add(templates[0].format(x=x, y=y), paraphrase.format(x=x, y=y), True, "order", split)
            for x, y in s.sample(_pairs_of(half), 6):
                template = s.rng.choice(lists)
                s.add(template.format(x=x, y=y, X=x.capitalize()), template.format(x=y, y=x, X=y.capitalize()),
                      True, "order", split)


def affixal(s: Suite) -> None:
    """A word against its affixal negation (must not), "is it X to ..." against "is ...ing X" (must)."""
    prefixed = [p for p in AFFIXAL if not p[0].endswith("ful")]
    suffixed = [p for p in AFFIXAL if p[0].endswith("ful")]
    for (split, words), (_, acts) in zip(s.each_half(prefixed), s.each_half(ACTIVITIES)):
        for pos, neg in words:
            for act, gerund in s.sample(acts, 3):
                s.add(f"Is it {pos} to {act}?", f"Is it {neg} to {act}?", False, "affixal negation", split)
            act, gerund = s.rng.choice(acts)
            word = s.rng.choice((pos, neg))
            s.add(f"Is it {word} to {act}?", f"Is {gerund} {word}?", True, "affixal negation", split)
            s.add(f"Why is it {word} to {act}?", f"Why is {gerund} considered {word}?", True, "affixal negation", split)
    for (split, words), (_, nouns) in zip(s.each_half(suffixed), s.each_half(ADJ_NOUNS)):
        for pos, neg in words:
            for noun in s.sample(nouns, 3):
                s.add(f"Why are some {noun} {pos}?", f"Why are some {noun} {neg}?", False, "affixal negation", split)
            noun = s.rng.choice(nouns)
            for word in (pos, neg):
                s.add(f"Why are some {noun} {word}?", f"Why are certain {noun} {word}?", True,
                      "affixal negation", split)


def explicit_negation(s: Suite) -> None:
    contrasts = [("Should I {v} my {o}?", "Should I not {v} my {o}?"),
                 ("Why can I {v} my {o}?", "Why can't I {v} my {o}?"),
                 ("What happens if I {v} my {o}?", "What happens if I don't {v} my {o}?"),
                 ("Is it fine to {v} my {o} every week?", "Is it fine to never {v} my {o}?")]
    same = [("Why can't I {v} my {o}?", "Why am I unable to {v} my {o}?"),
            ("What happens if I don't {v} my {o}?", "What happens if I do not {v} my {o}?"),
            ("How do I {v} my {o}?", "How can I {v} my {o}?"),
            ("Should I {v} my {o}?", "Do I need to {v} my {o}?")]
    for split, half in s.each_half(NEG_ACTIONS):
        for v, o in half:
            for a, b in s.sample(contrasts, 3):
                s.add(a.format(v=v, o=o), b.format(v=v, o=o), False, "negation", split)
            for a, b in s.sample(same, 2):
                s.add(a.format(v=v, o=o), b.format(v=v, o=o), True, "negation", split)


def opposites(s: Suite) -> None:
    for (split, adjs), (_, nouns), (_, places) in zip(s.each_half(OPPOSITE_ADJ), s.each_half(OPPOSITE_NOUNS),
                                                      s.each_half(PLACES)):
        for low, high in adjs:
            for noun in s.sample(nouns, 3):
                place = s.rng.choice(places)
                s.add(f"What is the {low} {noun} in {place}?", f"What is the {high} {noun} in {place}?",
                      False, "opposites", split)
            noun, place = s.rng.choice(nouns), s.rng.choice(places)
            word = s.rng.choice((low, high))
            s.add(f"What is the {word} {noun} in {place}?", f"Which {noun} in {place} is the {word}?",
                  True, "opposites", split)
    for split, verbs in s.each_half(OPPOSITE_VERBS):
        for a, b, objects in verbs:
            for obj in objects:
                s.add(f"When is the right time to {a} {obj}?", f"When is the right time to {b} {obj}?",
                      False, "opposites", split)
            obj = s.rng.choice(objects)
            s.add(f"When is the right time to {a} {obj}?", f"When should I {a} {obj}?", True, "opposites", split)
    for (split, products), (_, services) in zip(s.each_half(PRODUCTS), s.each_half(SERVICES)):
        for product in products:
            n = s.rng.choice((100, 200, 300, 500, 800, 1000))
            s.add(f"What are the best {product} under {n} dollars?", f"What are the best {product} over {n} dollars?",
                  False, "opposites", split)
            s.add(f"What are the best {product} under {n} dollars?", f"What are the top {product} under {n} dollars?",
                  True, "opposites", split)
        for service in services:
            s.add(f"Which {service} are open on weekdays?", f"Which {service} are open on weekends?",
                  False, "opposites", split)
            s.add(f"Are {service} busier on weekends?", f"Are {service} busier on weekdays?", False, "opposites", split)
            s.add(f"Which {service} are open on weekends?", f"What {service} are open at weekends?",
                  True, "opposites", split)


def deictic(s: Suite) -> None:
    """Alike questions about something the text does not hold: never shared, even word for word."""
    about_thing = [("Which {attr} is this {thing}?", "What {attr} is this {thing}?"),
                   ("What {attr} of {thing} is in this {carrier}?",
                    "Which {attr} of {thing} is shown in this {carrier}?"),
                   ("Can you identify the {thing} in the {carrier} below?",
                    "What is the {thing} in the {carrier} below?"),
                   ("Which {thing} is this?", "What {thing} is this?"),
                   ("What {attr} is the {thing} in this {carrier}?", "What {attr} is the {thing} in this {carrier}?")]
    about_carrier = [("Is this {carrier} edited?", "Has this {carrier} been edited?"),
                     ("Summarise the attached {carrier}.", "Give me a summary of the attached {carrier}."),
                     ("What does the {carrier} above show?", "What is shown in the {carrier} above?"),
                     ("Where was this {carrier} taken?", "Where was this {carrier} made?"),
                     ("Can you translate the text in this {carrier}?", "Translate the words in this {carrier}.")]
    for (split, things), (_, carriers) in zip(s.each_half(MEDIA), s.each_half(CARRIERS)):
        for thing, attr in things:
            for a, b in s.sample(about_thing, 3):
                carrier = s.rng.choice(carriers)
                words = {"thing": thing, "attr": attr, "carrier": carrier}
                s.add(a.format(**words), b.format(**words), False, "deictic", split)
        for carrier in carriers:
            for a, b in s.sample(about_carrier, 3):
                s.add(a.format(carrier=carrier), b.format(carrier=carrier), False, "deictic", split)


def _reformat(text: str, rng: random.Random) -> str:
    """The same words with other spacing, width or end punctuation."""
    swap = {"?": "？", "？": "?", ";": ";", "؟": "?"}
    choice = rng.randrange(3)
    if choice == 0 and text[-1] in swap:
        return text[:-1] + swap[text[-1]]
    if choice == 1:
        return text[:-1] + " " + text[-1]
    return text.rstrip("?？؟;") + ""


def scripts(s: Suite) -> None:
    """Text in non-Latin scripts: another word (must not), other spacing or punctuation (must), and
    a rewording (must: the cost of refusing what the embedder cannot read)."""
    for name, (template, rewording, words) in SCRIPTS.items():
        for split, half in s.each_half(words):
            for x, y in s.sample(_pairs_of(half), 6):
                s.add(template.format(x), template.format(y), False, "script", split)
            for word in s.sample(half, 3):
                s.add(template.format(word), _reformat(template.format(word), s.rng), True, "script", split)
            word = s.rng.choice(half)
            s.add(template.format(word), rewording.format(word), True, "script rewording", split)
    for split, half in s.each_half(SCRIPTS["zh"][2]):
        for x, y in s.sample(_pairs_of(half), 4):
            s.add(f"{x}比{y}难吗？", f"{y}比{x}难吗？", False, "script", split)


def false_refusals(s: Suite) -> None:
    """Phrasings the first guards refused although the question is the same."""
    for split, half in s.each_half(QUESTIONS):
        for q in half:
            lead = s.rng.choice(("Quick one: {q}?", "Just a quick one - {q}?", "{Q}? Sorry, quick one."))
            s.add(lead.format(q=q, Q=q[0].upper() + q[1:]), q[0].upper() + q[1:] + "?", True, "quick one", split)
    for split, half in s.each_half(RANKED):
        for ranked in half:
            s.add(f"What are the top {ranked}?", f"What are the best {ranked}?", True, "top vs best", split)
            s.add(f"Top 10 {ranked}?", f"What are the 10 best {ranked}?", True, "top vs best", split)
            s.add(f"What are the top {ranked}?", f"What are the worst {ranked}?", False, "opposites", split)


HAND_WRITTEN = [
    ("Convert kg to litres", "convert litres to kg", False, "order"),
    ("What do cats think of humans?", "What do humans think of cats?", False, "order"),
    ("Is it safe to eat raw eggs?", "Is it unsafe to eat raw eggs?", False, "affixal negation"),
    ("Is this medicine suitable for children?", "Is this medicine unsuitable for children?", False, "affixal negation"),
    ("Which breed is this dog?", "What breed is this dog?", False, "deictic"),
    ("What's the name of the song in the link below?", "Name of the song in the link below?", False, "deictic"),
    ("What is this?", "What is this?", False, "deictic"),
    ("What does this error mean?", "What does this error message mean?", False, "deictic"),
    ("Best hotels under 100 euros in Rome?", "Best hotels over 100 euros in Rome?", False, "opposites"),
    ("What is the shortest way to the station?", "What is the longest way to the station?", False, "opposites"),
    ("我喜欢你", "你喜欢我", False, "script"),
    ("Сколько стоит билет?", "Сколько стоит билет ?", True, "script"),
    ("Quick one: what's 15% of 80?", "What's 15% of 80?", True, "quick one"),
    ("Top programming books?", "Best programming books?", True, "top vs best"),
    ("Is tea or coffee better for focus?", "Is coffee or tea better for focus?", True, "order"),
    ("Where is Google's head office?", "Where is the head office of Google?", True, "order"),
    ("How do I stop snoring?", "How can I stop snoring?", True, "negation"),
]


def build(seed: int = SEED) -> list[dict]:
    s = Suite(seed)
    for shape in (order_swaps, affixal, explicit_negation, opposites, deictic, scripts, false_refusals):
        shape(s)
    for a, b, must_share, shape in HAND_WRITTEN:
        s.add(a, b, must_share, shape, "hand-written")
    return s.rows


# -- check and report -------------------------------------------------------------------------------


def load(path: Path = OUT) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def check(rows: list[dict]) -> list[str]:
    """What is wrong with the suite: not what the seed builds, too small, duplicated or malformed."""
    problems = []
    if rows != build():
        problems.append(f"{OUT.name} is not what bench/cache_suite.py builds: run `build`")
    for must_share in (False, True):
        count = sum(r["must_share"] is must_share for r in rows)
        if count < MIN_PAIRS:
            problems.append(f"{count} pairs with must_share={must_share}, under {MIN_PAIRS}")
    keys = Counter((r["a"], r["b"]) for r in rows)
    problems += [f"duplicate pair {k}" for k, n in keys.items() if n > 1]
    for r in rows:
        if not (isinstance(r["a"], str) and isinstance(r["b"], str) and isinstance(r["must_share"], bool)
                and r["shape"] and r["a"].strip() and r["b"].strip()):
            problems.append(f"malformed row {r}")
    return problems


def guard_table(rows: list[dict]) -> list[dict]:
    """Per shape and split: must-not-share pairs the guards block, must-share pairs they block."""
    sys.path.insert(0, str(ROOT))
    from functions.core.cache.near_miss import near_miss_reasons

    table: dict[tuple[str, str], Counter] = {}
    for r in rows:
        blocked = bool(near_miss_reasons(r["b"], r["a"]))  # the cache holds a; b is looked up
        for split in (r["split"], "all"):
            empty = Counter(share=0, share_blocked=0, differ=0, differ_blocked=0)
            counts = table.setdefault((r["shape"], split), empty)
            kind = "share" if r["must_share"] else "differ"
            counts[kind] += 1
            counts[f"{kind}_blocked"] += blocked
    return [{"shape": shape, "split": split, **counts} for (shape, split), counts in sorted(table.items())]


def _cell(blocked: int, total: int) -> str:
    return f"{blocked}/{total} ({100 * blocked / total:.1f}%)" if total else "-"


def report(rows: list[dict]) -> str:
    table = guard_table(rows)
    lines = ["| shape | split | must-not-share blocked | must-share wrongly blocked |", "|---|---|---|---|"]
    for row in table:
        lines.append(f"| {row['shape']} | {row['split']} | {_cell(row['differ_blocked'], row['differ'])} | "
                     f"{_cell(row['share_blocked'], row['share'])} |")
    totals = Counter()
    for row in table:
        if row["split"] == "all":
            totals.update({k: v for k, v in row.items() if k not in ("shape", "split")})
    lines.append(f"| **all** | all | {_cell(totals['differ_blocked'], totals['differ'])} | "
                 f"{_cell(totals['share_blocked'], totals['share'])} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=("build", "check", "report"))
    args = parser.parse_args()
    if args.command == "build":
        rows = build()
        OUT.parent.mkdir(parents=True, exist_ok=True)
        OUT.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
        share = sum(r["must_share"] for r in rows)
        print(f"{len(rows) - share} must-not-share and {share} must-share pairs -> {OUT.relative_to(ROOT)}")
    elif args.command == "check":
        problems = check(load())
        print("\n".join(problems) or "ok")
        sys.exit(1 if problems else 0)
    else:
        print(report(load()))


if __name__ == "__main__":
    main()
