"""Questions whose answer depends on something that is not in their text: "which breed is this
dog?", "what is the song in the link below?", "is this image real?", "see the attached file".
Two such questions may read alike and concern different things, so they are never served from
the semantic cache (the guard says "not cacheable", not "different").

The rules read the grammar of pointing, not a list of topics:
- a demonstrative (this, these, those) that closes the text's first clause, with at most one word
  after it: "what is this?", "which breed is this dog?", "what does this mean?". In a later clause
  it may point back into the text ("I have a cough; how do I stop this?"), and before a unit of
  time it points at the present ("this year"), which the entry's lifetime bounds;
- a demonstrative, "attached", "enclosed", "uploaded" or "above"/"below" before a medium that a
  message can carry (image, photo, video, song, file, link ...), unless a colon follows with the
  thing itself after it ("what does this code do: ...");
- "above" or "below" closing a clause ("the song in the link below", "as mentioned above");
- "the attachment", "in the picture", "in the video": a medium as the head of its phrase;
- "the ... I sent (you)" / "you shared": a thing named by its passing between the writer and the
  reader (sent, attached, uploaded, shared, posted, linked, pasted, forwarded), not to a third
  party ("can they see the message I sent them?" is a general question);
- "the following" with nothing following ("translate the following sentence.").
"""

from __future__ import annotations

from functools import lru_cache

from .tokens import is_content, tokens

#: media that a message can carry or point to (a closed set of carriers, not of topics)
MEDIA = frozenset({
    "image", "picture", "pic", "photo", "photograph", "screenshot", "video", "clip", "song", "audio",
    "recording", "file", "attachment", "document", "pdf", "link", "url", "chart", "graph", "diagram",
    "figure", "page", "post", "message", "email", "text", "passage", "paragraph", "article", "code",
    "snippet", "sentence", "quote", "meme", "gif", "painting", "drawing", "sketch", "map", "table",
    "spreadsheet", "sound", "voice", "tune", "melody", "logo", "symbol", "sign", "tattoo",
})
POINTERS = frozenset({"this", "these", "those", "attached", "enclosed", "uploaded", "above", "below"})
DEMONSTRATIVES = frozenset({"this", "these", "those"})
#: units of time (a closed set): "this year" points at the calendar, not at an attachment
TIME_UNITS = frozenset({
    "time", "moment", "day", "night", "morning", "evening", "afternoon", "week", "weekend", "month",
    "year", "season", "semester", "term", "quarter", "decade", "century", "era", "generation",
    "summer", "winter", "spring", "autumn", "fall",
})
_CLAUSE_END = frozenset({"?", ".", "!", ";", ")"})
#: verbs of passing something between writer and reader
PASSED_ON = frozenset({"sent", "attached", "uploaded", "shared", "posted", "linked", "pasted", "forwarded"})


def _plain(word: str) -> str:
    return word[:-1] if word.endswith("s") and word[:-1] in MEDIA else word


def _ends_clause(toks: tuple[str, ...], i: int) -> bool:
    return i >= len(toks) or toks[i] in _CLAUSE_END or toks[i] == ","


def _colon_follows(toks: tuple[str, ...], i: int) -> bool:
    """A colon later on with something after it: the thing itself is in the text."""
    return ":" in toks[i:-1]


def _to_reader(toks: tuple[str, ...], i: int) -> bool:
    """What follows a verb of passing keeps it between writer and reader: nothing, or "you", "me",
    "here", "earlier", "above", "below"."""
    return _ends_clause(toks, i) or toks[i] in ("you", "u", "me", "here", "earlier", "above", "below")


@lru_cache(maxsize=8192)
def points_outside(text: str) -> bool:
    """The text refers to something it does not contain (see the module's rules)."""
    toks = tokens(text)
    first_clause = True
    for i, token in enumerate(toks):
        nxt = toks[i + 1] if i + 1 < len(toks) else ""
        # a demonstrative closing the first clause, with at most one word after it
        if token in DEMONSTRATIVES and first_clause and nxt not in TIME_UNITS:
            if _ends_clause(toks, i + 1) or (is_content(nxt) and _ends_clause(toks, i + 2)):
                return True
        # a pointer before a medium (one adjective may come between), the thing not following
        # ("that" only as a determiner: "that video games ..." is the conjunction)
        if token in POINTERS or token == "that":
            for j in (i + 1, i + 2):
                if j < len(toks) and _plain(toks[j]) in MEDIA and not _colon_follows(toks, j + 1) \
                        and (j == i + 1 or is_content(toks[i + 1])) \
                        and not (token == "that" and j + 1 < len(toks) and is_content(toks[j + 1])):
                    return True
        # "above"/"below" closing a clause, or "the above"
        if token in ("above", "below") and (_ends_clause(toks, i + 1) or (i and toks[i - 1] == "the")):
            return True
        # a medium heading its phrase after "the attachment" / "in the ..."
        if token == "the" and nxt in ("attachment", "attachments"):
            return True
        if token in ("in", "on") and nxt == "the" and i + 2 < len(toks) and _plain(toks[i + 2]) in MEDIA \
                and _ends_clause(toks, i + 3):
            return True
        # "the song I sent", "the clip you shared"
        if token == "the" and any(toks[k] in ("i", "you") and toks[k + 1] in PASSED_ON and _to_reader(toks, k + 2)
                                  for k in range(i + 2, min(i + 5, len(toks) - 1))):
            return True
        # "the following (sentence)" with nothing after it
        if token == "following" and i and toks[i - 1] == "the" and \
                (_ends_clause(toks, i + 1) or (is_content(nxt) and _ends_clause(toks, i + 2))):
            return True
        first_clause = first_clause and not (token in _CLAUSE_END or token in (",", ":"))
    return False
