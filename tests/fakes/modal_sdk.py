"""A tiny stand-in for the ``modal`` package: just what ``ModalGpuControl`` calls.

``FakeModal().module`` is passed as ``modal_module``; every lookup and call is recorded.
"""

from __future__ import annotations

from types import SimpleNamespace


class FakeModalError(Exception):
    """Plays ``modal.exception.Error``, the base of Modal's errors."""


class FakeNotFoundError(FakeModalError):
    pass


class FakeAutoscaler:
    def __init__(self, function: "FakeFunction") -> None:
        self._function = function

    def update(self, *, min_containers=None, **_):
        self._function.calls.append(("autoscaler.update", min_containers))
        if self._function.fail_with is not None:
            raise self._function.fail_with
        self._function.min_containers = min_containers


class FakeFunction:
    def __init__(self, app_name: str, name: str, *, with_autoscaler: bool = True) -> None:
        self.app_name = app_name
        self.name = name
        self.calls: list[tuple] = []
        self.min_containers = 0
        self.runners = 0
        self.fail_with: Exception | None = None
        if with_autoscaler:
            self.autoscaler = FakeAutoscaler(self)

    def update_autoscaler(self, *, min_containers=None, **_):
        self.calls.append(("update_autoscaler", min_containers))
        self.min_containers = min_containers

    def get_current_stats(self):
        self.calls.append(("get_current_stats",))
        if self.fail_with is not None:
            raise self.fail_with
        return SimpleNamespace(backlog=0, num_total_runners=self.runners, num_running_inputs=0, input_headroom=0)


class FakeModal:
    def __init__(self, *, with_autoscaler: bool = True) -> None:
        self.lookups: list[tuple[str, str]] = []
        self.functions: dict[tuple[str, str], FakeFunction] = {}
        fake = self

        class Function:
            @staticmethod
            def from_name(app_name: str, name: str, **_):
                fake.lookups.append((app_name, name))
                key = (app_name, name)
                if key not in fake.functions:
                    fake.functions[key] = FakeFunction(app_name, name, with_autoscaler=with_autoscaler)
                return fake.functions[key]

        errors = SimpleNamespace(Error=FakeModalError, NotFoundError=FakeNotFoundError)
        self.module = SimpleNamespace(Function=Function, exception=errors)

    def function(self, app_name: str, name: str) -> FakeFunction:
        """The function a lookup returns (made now if none looked it up yet), without a lookup."""
        return self.functions.setdefault((app_name, name), FakeFunction(app_name, name))
