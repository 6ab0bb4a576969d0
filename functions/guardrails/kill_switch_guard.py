"""The gateway's kill-switch stage: refuse requests of an engaged scope with a 503 that names the
budget and when it resets.

Flags are held in-process and re-read (one DynamoDB query) at most every ``flag-refresh-s``:
the first request to find the copy stale awaits the re-read, requests arriving meanwhile use
the copy unless it is over twice that age, so a flag set anywhere is honoured within
``flag-refresh-s`` plus one query, without a DynamoDB read per request. A failed re-read keeps
the last copy (the spend counters still hold the caps) and is retried after a second.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from ..core.context import RequestContext
from ..core.errors import BudgetExceededError
from ..core.killswitch import KillSwitchFlag
from ..core.ports import GuardrailStore
from ..core.spend_caps import iso_utc, request_scopes, scope_label

log = logging.getLogger("tierup.killswitch")

_RETRY_AFTER_FAILURE_S = 1.0


def refusal(flag: KillSwitchFlag, now: float) -> BudgetExceededError:
    who = scope_label(flag.scope)
    if flag.until is not None:
        when = f"it resets at {iso_utc(flag.until)}"
        headers = {"retry-after": str(max(1, int(flag.until - now)))}
    else:
        when = "it holds until an operator releases it"
        headers = {}
    return BudgetExceededError(
        f"budget exhausted: {flag.budget} stopped {who} ({flag.reason}); {when} "
        f"(tierup killswitch release --scope {flag.scope})", headers=headers)


class KillSwitchGuard:
    name = "kill-switch"

    def __init__(self, store: GuardrailStore, refresh_s: float, *, clock: Callable[[], float] = time.time,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self._store = store
        self._refresh_s = refresh_s
        self._clock = clock
        self._monotonic = monotonic
        self._flags: dict[str, KillSwitchFlag] = {}
        self._loaded_at = float("-inf")
        self._refreshing: asyncio.Task | None = None

    def note_engaged(self, flag: KillSwitchFlag) -> None:
        """A flag this instance just set: honoured at once, without waiting for the next re-read."""
        self._flags[flag.scope] = flag

    async def refresh(self) -> None:
        if self._refreshing is None or self._refreshing.done():
            self._refreshing = asyncio.create_task(self._reload())
        await asyncio.shield(self._refreshing)

    async def _reload(self) -> None:
        try:
            flags = await asyncio.to_thread(self._store.flags)
        except Exception:
            log.exception("could not re-read kill-switch flags; keeping the last copy")
            self._loaded_at = self._monotonic() - self._refresh_s + _RETRY_AFTER_FAILURE_S
            return
        self._flags = {flag.scope: flag for flag in flags}
        self._loaded_at = self._monotonic()

    async def admit(self, ctx: RequestContext) -> None:
        age = self._monotonic() - self._loaded_at
        if age >= self._refresh_s:
            in_progress = self._refreshing is not None and not self._refreshing.done()
            if not in_progress or age >= 2 * self._refresh_s:
                await self.refresh()
        if not self._flags:
            return
        now = self._clock()
        for scope in request_scopes(ctx.route_name, ctx.tenant.tenant_id):
            flag = self._flags.get(scope)
            if flag is not None and flag.active(now):
                raise refusal(flag, now)

    async def release(self, ctx: RequestContext) -> None:
        return None
