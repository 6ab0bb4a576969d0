"""The ``GpuControl`` port on Modal: how the traffic policy reserves and counts GPU containers.

``set_min_replicas`` sets a deployed route function's ``min_containers`` at runtime
(``Function.autoscaler.update``; ``update_autoscaler`` on older clients), which is what makes a
route ``reserved``; a redeploy of gpu_tier resets it to the deployed 0. ``ready_replicas`` reads
the function's live container count and confirms with an HTTP health probe of the route's
endpoint that they answer.

Credentials: the Modal client reads ``MODAL_TOKEN_ID`` and ``MODAL_TOKEN_SECRET`` from the
environment (on AWS the policy Lambda loads them from Secrets Manager before building this).
``modal`` is imported on first use, or injected (tests pass a small fake module). Modal's errors
become ``GpuControlError``; it never retries (the policy runs again next minute).
"""

from __future__ import annotations

import os
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping

from ..core.errors import GpuControlError
from ..core.gpu_names import gpu_app_name, gpu_function_name
from ..core.proxy_auth import proxy_auth_headers

#: a health probe answers in milliseconds when a container is up; longer means it is not ready
HEALTH_TIMEOUT_S = 3.0


class HttpHealthProbe:
    """GET ``{base}/health`` of a route's vLLM server (vLLM answers it without the API key).

    ``base_url`` is the tier's ``base-url`` (``https://...--tierup-gpu-{route}.modal.run/v1``);
    the ``/v1`` suffix is dropped since ``/health`` sits at the server's root. ``headers`` carry
    Modal's proxy auth token, without which Modal's proxy answers 401 before any container.
    """

    def __init__(self, base_url: str, timeout_s: float = HEALTH_TIMEOUT_S,
                 headers: dict[str, str] | None = None) -> None:
        self._base_url = base_url
        self._timeout_s = timeout_s
        self._headers = dict(headers or {})

    def url(self, route: str) -> str:
        base = self._base_url.replace("{route}", route).rstrip("/")
        return base.removesuffix("/v1") + "/health"

    def __call__(self, route: str) -> bool:
        try:
            request = urllib.request.Request(self.url(route), headers=self._headers)
            with urllib.request.urlopen(request, timeout=self._timeout_s) as response:
                return 200 <= response.status < 300
        except (urllib.error.URLError, OSError, ValueError):
            return False


class ModalGpuControl:
    """``GpuControl`` for the functions of one deployed gpu_tier app.

    ``function_name_for_route`` maps a route to its Modal function; ``probe(route)`` says whether
    the route's endpoint answers (without one, live containers count as ready); ``modal_module``
    replaces the ``modal`` package.
    """

    def __init__(self, app_name: str, function_name_for_route: Callable[[str], str] = gpu_function_name,
                 probe: Callable[[str], bool] | None = None, *, modal_module=None) -> None:
        self._app_name = app_name
        self._function_name_for_route = function_name_for_route
        self._probe = probe or (lambda route: True)
        self._modal = modal_module
        self._functions: dict[str, object] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_config(cls, config, *, environ: Mapping[str, str] | None = None,
                    modal_module=None) -> "ModalGpuControl":
        """Names from the project, health probes at the ``reserved`` tier's ``base-url`` with its
        proxy auth token (read from ``environ``, default ``os.environ``)."""
        tier = config.tiers.get("reserved") or config.tiers.get("serverless-gpu")
        headers = proxy_auth_headers(tier.proxy_auth_env if tier else None,
                                     os.environ if environ is None else environ)
        probe = HttpHealthProbe(tier.base_url, headers=headers) if tier and tier.base_url else None
        return cls(gpu_app_name(config.project), gpu_function_name, probe, modal_module=modal_module)

    def _sdk(self):
        if self._modal is None:
            try:
                import modal
            except ImportError as exc:
                raise GpuControlError("the modal package is not installed (pip install 'tierup[gpu]')") from exc
            self._modal = modal
        return self._modal

    def _function(self, route: str):
        with self._lock:
            function = self._functions.get(route)
            if function is None:
                # Lazy: from_name makes no call until the handle is first used.
                function = self._sdk().Function.from_name(self._app_name, self._function_name_for_route(route))
                self._functions[route] = function
            return function

    def _failed(self, route: str, action: str, exc: Exception) -> GpuControlError:
        # A redeploy can replace the function behind a cached handle: look it up afresh next time.
        with self._lock:
            self._functions.pop(route, None)
        name = self._function_name_for_route(route)
        return GpuControlError(f"Modal {action} of {self._app_name}/{name} failed: {type(exc).__name__}: {exc}")

    def _errors(self) -> tuple[type[BaseException], ...]:
        return (self._sdk().exception.Error, OSError, TimeoutError)

    def set_min_replicas(self, route: str, replicas: int) -> None:
        if replicas < 0:
            raise ValueError(f"replicas must be 0 or more, not {replicas}")
        errors = self._errors()
        try:
            function = self._function(route)
            autoscaler = getattr(function, "autoscaler", None)
            if autoscaler is not None:
                autoscaler.update(min_containers=replicas)
            else:  # modal clients before Function.autoscaler
                function.update_autoscaler(min_containers=replicas)
        except errors as exc:
            raise self._failed(route, "autoscaler update", exc) from exc

    def ready_replicas(self, route: str) -> int:
        """Live containers, if the route's endpoint answers its health probe; else 0.

        Only probed when containers run: a request to a function scaled to zero would start one.
        The probe reaches one container, so while some are still starting the count can run
        ahead of what serves; the gateway spills to serverless when reserved capacity saturates.
        """
        errors = self._errors()
        try:
            runners = self._function(route).get_current_stats().num_total_runners
        except errors as exc:
            raise self._failed(route, "stats read", exc) from exc
        if runners <= 0:
            return 0
        return runners if self._probe(route) else 0
