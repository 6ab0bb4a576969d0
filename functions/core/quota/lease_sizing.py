"""How much of a shared limit one instance leases per DynamoDB write.

A lease is a block added to the shared counter with a conditional write (it is admitted only if
the counter stays within the limit), then spent locally by this instance's requests. Its size is
``fraction`` of the room left as last seen, and at least what the request at hand needs. Far from
the limit a write buys many requests; near it, blocks shrink to one request's need, so every
admission is again one exact conditional write. What an instance holds unspent is the quota it
can strand (refuse elsewhere while it sits idle here): at most ``fraction`` of the room left, and
handed back after one idle flush interval.

No I/O here.
"""

from __future__ import annotations

import math


def lease_block(limit: float, seen_used: float, needed: float, fraction: float, *, integral: bool) -> float:
    room = max(limit - seen_used, 0.0)
    block = fraction * room
    if integral:
        block = math.floor(block)
    return max(block, needed)
