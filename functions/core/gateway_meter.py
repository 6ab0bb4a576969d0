"""Counts the AWS units each request makes the gateway use, as it runs. No I/O here.

A request's ``RequestMeter`` is current (a context variable) from the moment the app receives it
to the moment its response has gone out; the adapters report what the request caused to the
current meter: DynamoDB request units (from ``ConsumedCapacity``), bytes of log and metric lines.
Work done for many requests at once (a background flush of ledger pages and aggregates) has no
current meter: its units go to the gateway's *pool*, as do a request's units counted after its
ledger entry was made (the flush that writes what it owes, just before its response completes)
and those of a request that never reaches the ledger (an unknown API key). Each ledger entry
takes its own units and empties the pool, so every unit DynamoDB reported lands in exactly one
ledger entry: per request exactly, for shared work on the next request recorded.

Lambda duration is the wall time from receiving the request to its response's last byte, at the
function's memory size (``AWS_LAMBDA_FUNCTION_MEMORY_SIZE``): up to the stream's end on the
request's own entry, and the rest (settling its guards, writing what it owes, the final ``[DONE]``)
through the pool, on the next. Off Lambda (a container, ``tierup dev``) nothing is billed per
invocation and only storage and logs are counted.

With ``cpu_profile`` on (``bench/gateway_cost.py`` turns it on), each request's CPU is also split
in two: the *critical path*, before the provider is called (auth, admission, the prompt's tokens)
and after its last token until the response completes (writing what the request owes), which
lengthens the billed duration and the user's wait; and the rest, spent while the model generates
(relaying each chunk between tokens), which overlaps time billed anyway. Off, it costs nothing.
"""

from __future__ import annotations

import math
import platform
import threading
import time
from contextvars import ContextVar, Token

from .gateway_cost import LAMBDA_PLATFORM_LOG_BYTES, GatewayUnits, gateway_cost_usd, lambda_gb_seconds, lambda_units

_current: ContextVar["RequestMeter | None"] = ContextVar("tierup_request_meter", default=None)


class _Units:
    """Units added from several threads (store calls run on worker threads)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._units = GatewayUnits()
        #: response bytes, kept apart as a plain count: added once per streamed chunk, where a
        #: ``GatewayUnits`` sum each time would cost more CPU than the chunk's own rendering
        self._egress = 0

    def add(self, units: GatewayUnits) -> None:
        with self._lock:
            self._units = self._units + units

    def add_egress(self, nbytes: int) -> None:
        with self._lock:
            self._egress += nbytes

    def take(self) -> GatewayUnits:
        with self._lock:
            units, self._units = self._units, GatewayUnits()
            egress, self._egress = self._egress, 0
        return units + GatewayUnits(egress_bytes=egress) if egress else units


class RequestMeter(_Units):
    def __init__(self, gateway: "GatewayMeter") -> None:
        super().__init__()
        self.gateway = gateway
        self.started = time.perf_counter()
        #: milliseconds billed to the request's own entry (its duration up to the entry)
        self.settled_ms: int | None = None
        self.closed = False
        #: process CPU seconds at arrival, at the provider's call and at its last token (profiling only)
        self.cpu_marks: list[float] | None = [time.process_time()] if gateway.cpu_profile is not None else None

    @property
    def settled(self) -> bool:
        return self.settled_ms is not None

    def elapsed_ms(self) -> int:
        """Milliseconds since the request arrived, rounded up as Lambda bills them."""
        return math.ceil((time.perf_counter() - self.started) * 1000)


def lambda_arch(machine: str | None = None) -> str:
    """``arm64`` or ``x86_64``: the Lambda price list's names for the host's processor."""
    machine = (machine or platform.machine()).lower()
    return "arm64" if machine in ("aarch64", "arm64") else "x86_64"


class GatewayMeter:
    #: the meter of the gateway built last: log lines written outside any request count there
    latest: "GatewayMeter | None" = None

    def __init__(self, *, memory_mb: int | None = None, arch: str = "arm64", cpu_profile: bool = False) -> None:
        self.memory_mb = memory_mb
        self.arch = arch
        #: per finished request, its CPU seconds before the provider's call, while the model
        #: generated, and after its last token (``cpu_split``)
        self.cpu_profile: list[tuple[float, float, float]] | None = [] if cpu_profile else None
        self._pool = _Units()
        GatewayMeter.latest = self

    @classmethod
    def from_environ(cls, environ: dict) -> "GatewayMeter":
        memory = environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
        return cls(memory_mb=int(memory) if memory else None, arch=lambda_arch(),
                   cpu_profile=bool(environ.get("TIERUP_CPU_PROFILE")))

    def start(self) -> tuple[RequestMeter, Token]:
        meter = RequestMeter(self)
        return meter, _current.set(meter)

    def finish(self, meter: RequestMeter, token: Token) -> None:
        """The response has gone out: what the request caused since its entry goes to the pool."""
        meter.closed = True
        if meter.cpu_marks is not None and self.cpu_profile is not None:
            self.cpu_profile.append(cpu_split(meter.cpu_marks, time.process_time()))
        if self.memory_mb is not None:  # the invocation's time not on its entry yet (all of it if none)
            tail_ms = meter.elapsed_ms() - (meter.settled_ms or 0)
            self._pool.add(GatewayUnits(invocations=0 if meter.settled else 1,
                                        gb_seconds=lambda_gb_seconds(tail_ms, self.memory_mb),
                                        log_bytes=0 if meter.settled else LAMBDA_PLATFORM_LOG_BYTES))
        self._pool.add(meter.take())
        _current.reset(token)

    def unattributed(self) -> GatewayUnits:
        """Units counted that no ledger entry has taken yet (they go to the next one made)."""
        units = self._pool.take()
        self._pool.add(units)
        return units

    def _counter(self) -> _Units:
        """Where units caused now go: the current request's meter, or the pool outside any request."""
        meter = _current.get()
        return meter if meter is not None and not meter.closed and meter.gateway is self else self._pool

    def count(self, units: GatewayUnits) -> None:
        """Units the current request caused (the pool's, outside any request)."""
        self._counter().add(units)

    def count_egress(self, nbytes: int) -> None:
        """``count(GatewayUnits(egress_bytes=nbytes))``, cheaper: once per streamed chunk."""
        self._counter().add_egress(nbytes)

    def settle(self) -> tuple[GatewayUnits, float]:
        """The current request's units so far, its Lambda invocation and the pool's units, with
        their price; once per request (a second call, or one outside a request, gets nothing)."""
        meter = _current.get()
        if meter is None or meter.settled or meter.gateway is not self:
            return GatewayUnits(), 0.0
        meter.settled_ms = meter.elapsed_ms()
        own = lambda_units(meter.settled_ms, self.memory_mb) if self.memory_mb is not None else GatewayUnits()
        units = own + meter.take() + self._pool.take()
        return units, gateway_cost_usd(units, self.arch)


def cpu_split(marks: list[float], finished: float) -> tuple[float, float, float]:
    """(CPU before the provider's call, while the model generated, after its last token) from a
    request's marks: arrival, then the provider's call and its last token where there were. The
    first and the last are its critical path. A request that never called a provider (a cache hit,
    a refusal) spent it all before; one whose provider never finished, nothing while generating."""
    called = marks[1] if len(marks) >= 2 else finished
    last_token = marks[2] if len(marks) >= 3 else called
    return called - marks[0], last_token - called, finished - last_token


def provider_called() -> None:
    """The current request calls its provider now (profiling its CPU only: a no-op otherwise).
    A later attempt (a fallback tier) keeps the first call's mark: the wait between is the model's."""
    meter = _current.get()
    if meter is not None and meter.cpu_marks is not None and len(meter.cpu_marks) == 1:
        meter.cpu_marks.append(time.process_time())


def provider_finished() -> None:
    """The current request's provider has sent its last token (profiling only)."""
    meter = _current.get()
    if meter is not None and meter.cpu_marks is not None and len(meter.cpu_marks) >= 2:
        del meter.cpu_marks[2:]
        meter.cpu_marks.append(time.process_time())


def count_log_bytes(size: int) -> None:
    """Bytes of a log line written by this process, for the current request or the pool."""
    meter = _current.get()
    target = meter.gateway if meter is not None else GatewayMeter.latest
    if target is not None:
        target.count(GatewayUnits(log_bytes=size))
