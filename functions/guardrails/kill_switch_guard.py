"""The gateway's kill-switch stage: refuse requests of an engaged scope with a 503 that names the
budget and when it resets.

Flags are held in-process and re-read (one DynamoDB query) at most every ``flag-refresh-s``:
the first request to find the copy stale awaits the re-read, requests arriving meanwhile use
the copy unless it is over twice that age, so a flag set anywhere is honoured within
``flag-refresh-s`` plus one query, without a DynamoDB read per request.

When the flags cannot be read (the store is down, or gives no answer within its deadline) the
stage fails closed: a copy up to twice ``flag-refresh-s`` old is still used (a blip costs
nothing), an older one is not trusted and every request is refused with a 503
``storage_unavailable`` and Retry-After until a re-read succeeds. A failed re-read is tried
again after a second, not by every request, and no request waits longer than one store
deadline for it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from ..adapters.store_calls import call_store
from ..core.context import RequestContext
from ..core.errors import BudgetExceededError, StorageUnavailableError
from ..core.killswitch import KillSwitchFlag
from ..core.ports import GuardrailStore
from ..core.spend_caps import iso_utc, request_scopes, scope_label

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
        #: monotonic time of the last successful read (-inf: never read)
        self._loaded_at = float("-inf")
        #: no re-read is started before this (set after a failure)
        self._next_try_at = float("-inf")
        self._refreshing: asyncio.Task | None = None

    def note_engaged(self, flag: KillSwitchFlag) -> None:
        """A flag this instance just set: honoured at once, without waiting for the next re-read."""
        self._flags[flag.scope] = flag

    def _in_progress(self) -> bool:
        return self._refreshing is not None and not self._refreshing.done()

    async def refresh(self) -> None:
        if not self._in_progress():
            self._refreshing = asyncio.create_task(self._reload())
        await asyncio.shield(self._refreshing)

    async def _reload(self) -> None:
        try:
            flags = await call_store(self._store.flags, store="kill-switch")
        except Exception:  # logged once per interval where it happened; retried after a second
            self._next_try_at = self._monotonic() + _RETRY_AFTER_FAILURE_S
            return
        self._flags = {flag.scope: flag for flag in flags}
        self._loaded_at = self._monotonic()

    async def admit(self, ctx: RequestContext) -> None:
        now_m = self._monotonic()
        age = now_m - self._loaded_at
        if age >= self._refresh_s:
            in_progress = self._in_progress()
            too_old = age >= 2 * self._refresh_s
            if (not in_progress and now_m >= self._next_try_at) or (in_progress and too_old):
                await self.refresh()
        now = self._clock()
        for scope in request_scopes(ctx.route_name, ctx.tenant.tenant_id):
            flag = self._flags.get(scope)
            if flag is not None and flag.active(now):
                raise refusal(flag, now)
        if self._monotonic() - self._loaded_at >= 2 * self._refresh_s:
            raise StorageUnavailableError("kill-switch flags cannot be read, so no request is served "
                                          "(the budgets fail closed); try again shortly")

    async def release(self, ctx: RequestContext) -> None:
        return None
