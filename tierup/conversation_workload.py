"""A synthetic multi-turn chat workload with long shared prefixes, for pricing prompt caching.

How it is generated (all draws from one ``numpy`` generator seeded with ``seed``, so a seed
always gives the same workload):

- Conversations start as a Poisson process at ``conversations_per_hour`` over ``duration_s``.
- Each belongs to one of ``APPS``, chosen by its weight: an app is a fixed system prompt plus
  tool definitions that every conversation of the app sends first (its shared prefix).
- ``DOCUMENT_SHARE`` of conversations open with a document (log-normal length) sent as its own
  user message ahead of the first question.
- Turns per conversation: geometric (at least one), mean ``MEAN_TURNS``. Each user message and each answer
  is log-normal in tokens (medians ``USER_TOKENS_MEDIAN`` and ``ANSWER_TOKENS_MEDIAN``).
- Between an answer and the next question the user reads and types for a log-normal time
  (median ``THINK_S_MEDIAN``), so a few turns come after the five minutes a cache entry lives.
- The history a turn resends is the document plus every earlier question and answer.

No I/O here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, slots=True)
class PromptRequest:
    """One chat request, as prompt caching sees it."""

    at_s: float
    #: identifies the shared prefix (one app's system prompt and tools)
    prefix_id: str
    #: identifies the conversation whose history the request resends
    conversation_id: str
    shared_tokens: int
    #: tokens before the newest message, after the shared prefix (document, earlier turns)
    history_tokens: int
    #: the newest message's tokens
    new_tokens: int
    output_tokens: int

    @property
    def prompt_tokens(self) -> int:
        return self.shared_tokens + self.history_tokens + self.new_tokens


#: (name, system prompt + tool definitions in tokens, share of conversations)
APPS: tuple[tuple[str, int, float], ...] = (
    ("support-bot", 2_500, 0.5),   # a long policy prompt and a dozen tools
    ("coding-helper", 4_000, 0.3),  # style guide, repository summary and tools
    ("faq", 1_200, 0.2),            # a short prompt with the product FAQ
)
DOCUMENT_SHARE = 0.3
DOCUMENT_TOKENS_MEDIAN = 3_000
MEAN_TURNS = 5.0
USER_TOKENS_MEDIAN = 60
ANSWER_TOKENS_MEDIAN = 250
THINK_S_MEDIAN = 30.0
#: log-normal spreads (sigma of the log)
DOCUMENT_SIGMA, USER_SIGMA, ANSWER_SIGMA, THINK_SIGMA = 0.6, 0.8, 0.6, 1.2
MAX_ANSWER_TOKENS = 2_048


def generate_conversations(seed: int = 7, conversations_per_hour: float = 600.0,
                           duration_s: float = 3_600.0) -> list[PromptRequest]:
    """The workload's requests in time order (see the module docstring for how)."""
    rng = np.random.default_rng(seed)
    expected = conversations_per_hour * duration_s / 3_600.0
    gaps = rng.exponential(3_600.0 / conversations_per_hour, size=int(expected * 2 + 10))
    starts = np.cumsum(gaps)
    starts = starts[starts < duration_s]
    weights = np.array([share for _, _, share in APPS])
    requests: list[PromptRequest] = []
    for number, start in enumerate(starts):
        name, shared, _ = APPS[rng.choice(len(APPS), p=weights / weights.sum())]
        history = int(rng.lognormal(np.log(DOCUMENT_TOKENS_MEDIAN), DOCUMENT_SIGMA)) \
            if rng.random() < DOCUMENT_SHARE else 0
        turns = int(rng.geometric(1.0 / MEAN_TURNS))  # 1, 2, ... with mean MEAN_TURNS
        at = float(start)
        for _ in range(turns):
            question = max(1, int(rng.lognormal(np.log(USER_TOKENS_MEDIAN), USER_SIGMA)))
            answer = min(MAX_ANSWER_TOKENS, max(1, int(rng.lognormal(np.log(ANSWER_TOKENS_MEDIAN), ANSWER_SIGMA))))
            requests.append(PromptRequest(at_s=at, prefix_id=name, conversation_id=f"c{number}",
                                          shared_tokens=shared, history_tokens=history, new_tokens=question,
                                          output_tokens=answer))
            history += question + answer
            at += float(rng.lognormal(np.log(THINK_S_MEDIAN), THINK_SIGMA))
    requests.sort(key=lambda request: request.at_s)
    return requests
