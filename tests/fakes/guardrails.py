"""In-memory fakes of the guardrail ports: state store, alert publisher, Lambda concurrency."""

from __future__ import annotations

import threading
from dataclasses import replace


class FakeGuardrailStore:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.flag_items: dict = {}
        self.markers: set[str] = set()
        self.audit: list = []
        self.flag_reads = 0

    def flags(self):
        self.flag_reads += 1
        return list(self.flag_items.values())

    def put_flag(self, flag) -> None:
        self.flag_items[flag.scope] = flag

    def add_applied(self, scope: str, step_id: str) -> None:
        flag = self.flag_items[scope]
        self.flag_items[scope] = replace(flag, applied=flag.applied | {step_id})

    def delete_flag(self, scope: str) -> bool:
        return self.flag_items.pop(scope, None) is not None

    def mark_once(self, marker: str, expires_at: int) -> bool:
        with self._lock:
            if marker in self.markers:
                return False
            self.markers.add(marker)
            return True

    def unmark(self, marker: str) -> None:
        self.markers.discard(marker)

    def append_audit(self, entry) -> None:
        self.audit.append(entry)

    def audit_trail(self, limit: int = 50):
        return list(reversed(self.audit))[:limit]


class ListPublisher:
    def __init__(self) -> None:
        self.sent: list[tuple[str, str, dict]] = []

    def publish(self, subject: str, body: str, attributes: dict[str, str]) -> None:
        self.sent.append((subject, body, dict(attributes)))


class FakeConcurrency:
    def __init__(self, values: dict[str, int | None] | None = None) -> None:
        self.values = dict(values or {})
        self.calls: list[tuple[str, int | None]] = []

    def reserved_concurrency(self, function: str) -> int | None:
        return self.values.get(function)

    def set_reserved_concurrency(self, function: str, value: int | None) -> None:
        self.calls.append((function, value))
        self.values[function] = value
