"""The GPU tier on Modal: the token works, every GPU route's function is deployed, requires proxy
auth, and was deployed from the config as it is now.

Modal is reached through a small port, ``ModalWorkspace``, so that tests use a fake; the real one
reads each function's declaration (``Function.info``), which starts no container.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from functions.core.config import TierupConfig
from functions.core.errors import ConfigError
from functions.core.gpu_names import gpu_app_name, gpu_function_name
from functions.core.gpu_serving import gpu_serving

from .findings import Finding, ok, problem, unchecked


@dataclass(frozen=True)
class DeployedFunction:
    web_url: str
    requires_proxy_auth: bool
    max_inputs: int | None


class ModalAuthError(Exception):
    """The workspace refused the token."""


class ModalNotDeployed(Exception):
    """No such app or function in the workspace."""


class ModalUnreachable(Exception):
    """No token on this machine, no ``modal`` package, or Modal cannot be reached."""


class ModalWorkspace(Protocol):
    def deployed_function(self, app_name: str, function_name: str) -> DeployedFunction: ...


class ModalSdkWorkspace:
    """``ModalWorkspace`` through the ``modal`` package and the token it finds (env or ~/.modal.toml)."""

    def __init__(self, modal_module=None) -> None:
        self._modal = modal_module

    def _sdk(self):
        if self._modal is None:
            try:
                import modal
                from modal.config import config as modal_config
            except ImportError as exc:
                raise ModalUnreachable("the modal package is not installed (pip install 'tierup[gpu]')") from exc
            if not modal_config.get("token_id"):  # asking without one would only wait on the network
                raise ModalUnreachable("no Modal token on this machine (modal token new)")
            self._modal = modal
        return self._modal

    def deployed_function(self, app_name: str, function_name: str) -> DeployedFunction:
        modal = self._sdk()
        try:
            info = modal.Function.from_name(app_name, function_name).info()
        except modal.exception.AuthError as exc:
            raise ModalAuthError(str(exc)) from exc
        except modal.exception.NotFoundError as exc:
            raise ModalNotDeployed(str(exc)) from exc
        except (modal.exception.Error, OSError, TimeoutError) as exc:
            raise ModalUnreachable(f"{type(exc).__name__}: {exc}") from exc
        web = info.web_info
        concurrency = info.concurrency_info
        return DeployedFunction(web_url=web.web_url if web else "",
                                requires_proxy_auth=bool(web) and not web.unauthenticated,
                                max_inputs=concurrency.max_inputs if concurrency else None)


def check_modal(config: TierupConfig, workspace: ModalWorkspace) -> list[Finding]:
    routes = [name for name, route in config.routes.items() if route.serverless_gpu]
    if not routes:
        return [ok("modal", "no route has a GPU model")]
    app_name = gpu_app_name(config.project)
    tier = config.tiers.get("serverless-gpu")
    findings: list[Finding] = []
    for route in routes:
        name = f"modal {app_name}/{gpu_function_name(route)}"
        try:
            deployed = workspace.deployed_function(app_name, gpu_function_name(route))
        except ModalAuthError as exc:
            return findings + [problem("modal token", f"Modal refused the token: {exc}",
                                       "modal token new (or set MODAL_TOKEN_ID / MODAL_TOKEN_SECRET)")]
        except ModalUnreachable as exc:
            return findings + [unchecked("modal", str(exc))]
        except ModalNotDeployed:
            findings.append(problem(name, "not deployed", "modal deploy gpu_tier/app.py"))
            continue
        findings.extend(_deployed_problems(config, route, name, deployed, tier.base_url if tier else None))
    return findings


def _deployed_problems(config: TierupConfig, route: str, name: str, deployed: DeployedFunction,
                       base_url: str | None) -> list[Finding]:
    if not deployed.requires_proxy_auth:
        return [problem(name, "open to the internet: anyone can run completions on it or wake a GPU",
                        "modal deploy gpu_tier/app.py (it requires proxy auth); until then, stop the app: "
                        f"modal app stop {gpu_app_name(config.project)}")]
    try:
        expected = gpu_serving(config, route).max_inputs
    except ConfigError as exc:
        return [problem(name, exc.message, f"fix {exc.key} in tierup.toml")]
    if deployed.max_inputs != expected:
        return [problem(name, f"deployed with {deployed.max_inputs} concurrent requests per container, the "
                              f"config prices {expected}", "modal deploy gpu_tier/app.py")]
    if base_url and deployed.web_url and base_url.replace("{route}", route).rstrip("/") != deployed.web_url + "/v1":
        return [problem(name, f"served at {deployed.web_url}, which [tiers.serverless-gpu] base-url does not name",
                        f"set base-url to {deployed.web_url.replace(route, '{route}')}/v1 (and the reserved tier's)")]
    return [ok(name, "deployed, proxy auth required, sized as the config prices it")]
