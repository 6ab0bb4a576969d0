"""When a batch's lines go to one Bedrock batch inference job rather than through the worker.

    the route's serverless model has a batch price, the lines for it are at least Bedrock's
    minimum records, the batch is a chat batch, and
        the route holds no reserved replicas            -> a Bedrock job at once (half price)
        it holds some                                   -> the lines take idle reserved capacity
                                                           ($0 more) first; what is left at the
                                                           hand-off time goes to a Bedrock job

The hand-off is halfway between the batch's creation and its deadline margin (the window's end
less ``deadline-margin-s``): the job then has as long to run as reserved had, and a job that has
not finished by the margin is stopped, its unanswered lines running on the interactive tiers
within the margin. No I/O here.
"""

from __future__ import annotations


def handoff_after_s(window_s: float, deadline_margin_s: float) -> float:
    """Seconds after a batch's creation at which lines still waiting for reserved go to Bedrock."""
    return max(0.0, window_s - deadline_margin_s) / 2.0


def bedrock_due(*, has_batch_price: bool, lines: int, min_records: int, promoted: bool, now: float,
                created_at: float, window_s: float, deadline_margin_s: float) -> bool:
    """Whether ``lines`` unanswered chat lines of one model should be handed to a Bedrock job now."""
    if not has_batch_price or lines < min_records:
        return False
    job_deadline = created_at + window_s - deadline_margin_s
    if now >= job_deadline:
        return False  # no time left for a job: the lines run on the interactive tiers
    return not promoted or now >= created_at + handoff_after_s(window_s, deadline_margin_s)
