"""The Modal control adapter calls the right Modal APIs (a small fake ``modal`` module injected
through its constructor) and turns Modal's errors into ``GpuControlError``."""

from __future__ import annotations

import pytest

from functions.adapters.modal_control import HttpHealthProbe, ModalGpuControl
from functions.core.errors import GpuControlError, TierupError
from tests.fakes.modal_sdk import FakeModal, FakeModalError, FakeNotFoundError
from tests.support import make_config


def _control(fake: FakeModal, probe=None) -> ModalGpuControl:
    return ModalGpuControl("tierup", lambda route: f"gpu-{route}", probe, modal_module=fake.module)


def test_set_min_replicas_updates_the_routes_function_autoscaler():
    fake = FakeModal()
    control = _control(fake)
    control.set_min_replicas("chat", 2)
    control.set_min_replicas("chat", 0)
    function = fake.function("tierup", "gpu-chat")
    assert function.calls == [("autoscaler.update", 2), ("autoscaler.update", 0)]
    assert function.min_containers == 0
    assert fake.lookups == [("tierup", "gpu-chat")]  # the handle is looked up once and reused


def test_older_modal_clients_use_update_autoscaler():
    fake = FakeModal(with_autoscaler=False)
    _control(fake).set_min_replicas("summarize", 3)
    assert fake.function("tierup", "gpu-summarize").calls == [("update_autoscaler", 3)]


def test_negative_replicas_are_refused_before_calling_modal():
    fake = FakeModal()
    with pytest.raises(ValueError):
        _control(fake).set_min_replicas("chat", -1)
    assert fake.lookups == []


def test_ready_replicas_counts_runners_that_answer_the_health_probe():
    fake = FakeModal()
    probed: list[str] = []
    healthy = {"chat": True}

    def probe(route: str) -> bool:
        probed.append(route)
        return healthy[route]

    control = _control(fake, probe)
    function = fake.function("tierup", "gpu-chat")
    function.runners = 3
    assert control.ready_replicas("chat") == 3
    healthy["chat"] = False
    assert control.ready_replicas("chat") == 0
    assert probed == ["chat", "chat"]


def test_a_route_scaled_to_zero_is_not_probed_since_a_probe_would_wake_it():
    fake = FakeModal()
    probed: list[str] = []
    control = _control(fake, lambda route: probed.append(route) or True)
    assert control.ready_replicas("chat") == 0
    assert probed == []
    assert fake.function("tierup", "gpu-chat").calls == [("get_current_stats",)]


@pytest.mark.parametrize("error", [FakeModalError("auth failed"), FakeNotFoundError("no such app"),
                                   ConnectionRefusedError("down")])
def test_modal_errors_become_gpu_control_errors_and_the_handle_is_looked_up_again(error):
    fake = FakeModal()
    control = _control(fake)
    function = fake.function("tierup", "gpu-chat")
    function.fail_with = error
    with pytest.raises(GpuControlError) as caught:
        control.set_min_replicas("chat", 1)
    assert caught.value.__cause__ is error
    assert "tierup/gpu-chat" in caught.value.message
    assert isinstance(caught.value, TierupError)
    with pytest.raises(GpuControlError):
        control.ready_replicas("chat")
    assert fake.lookups == [("tierup", "gpu-chat"), ("tierup", "gpu-chat")]


def test_a_missing_modal_package_is_a_gpu_control_error(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "modal", None)  # what `import modal` sees when it is not installed
    with pytest.raises(GpuControlError, match="not installed"):
        ModalGpuControl("tierup").set_min_replicas("chat", 1)


def test_other_exceptions_are_not_swallowed():
    fake = FakeModal()
    fake.function("tierup", "gpu-chat").fail_with = KeyError("a bug")
    with pytest.raises(KeyError):
        _control(fake).ready_replicas("chat")


def test_from_config_names_the_app_after_the_project_and_probes_the_reserved_endpoint():
    config = make_config()
    fake = FakeModal()
    control = ModalGpuControl.from_config(config, modal_module=fake.module)
    control.set_min_replicas("chat", 1)
    assert fake.lookups == [(config.project, "gpu-chat")]
    probe = HttpHealthProbe(config.tiers["reserved"].base_url)
    assert probe.url("chat") == "https://YOUR-WORKSPACE--tierup-gpu-chat.modal.run/health"


def test_the_real_modal_package_without_credentials_fails_as_a_gpu_control_error(tmp_path):
    """The adapter's calls exist on the installed modal client and its refusal is translated."""
    import os
    import subprocess
    import sys

    from tests.support import ROOT

    env = {k: v for k, v in os.environ.items() if not k.startswith("MODAL_")}
    env.update(HOME=str(tmp_path), MODAL_CONFIG_PATH=str(tmp_path / "absent.toml"))
    script = ("from functions.adapters.modal_control import ModalGpuControl\n"
              "from functions.core.errors import GpuControlError\n"
              "control = ModalGpuControl('tierup')\n"
              "for call in (lambda: control.set_min_replicas('chat', 1), lambda: control.ready_replicas('chat')):\n"
              "    try:\n"
              "        call()\n"
              "    except GpuControlError as exc:\n"
              "        print(type(exc.__cause__).__name__)\n")
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["AuthError", "AuthError"]
