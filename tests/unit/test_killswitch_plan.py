"""The kill switch: plans as data, applied by the executor; twice changes nothing more."""

from __future__ import annotations

from functions.core.killswitch import KillSwitchTrigger
from functions.guardrails.killswitch_executor import KillSwitch
from tests.fakes.gpu_control import FakeGpuControl
from tests.fakes.guardrails import FakeConcurrency, FakeGuardrailStore
from tests.support import make_config

NOW = 1_795_000_000.0
CONFIG = make_config()


def _switch(store=None, gpu=None, concurrency=None, function="tierup-gateway", config=CONFIG):
    return KillSwitch(config, store or FakeGuardrailStore(), gpu=gpu, concurrency=concurrency,
                      gateway_function=function, clock=lambda: NOW)


def _trigger(scope="global", action="hard-stop", until=None):
    return KillSwitchTrigger(scope=scope, action=action, reason="test", source="cli", until=until)


def test_hard_stop_sets_flag_drops_gpus_and_stops_the_gateway_then_nothing_more():
    store, gpu, concurrency = FakeGuardrailStore(), FakeGpuControl(lambda: NOW), FakeConcurrency({"tierup-gateway": 50})
    switch = _switch(store, gpu, concurrency)
    first = switch.engage(_trigger())
    assert [s.kind for s in first.plan.steps] == ["engage-flag", "drop-reserved", "drop-reserved", "stop-gateway"]
    assert first.failed == [] and len(first.done) == 4
    assert sorted(gpu.calls) == [("chat", 0), ("summarize", 0)]
    assert concurrency.values["tierup-gateway"] == 0
    flag = store.flag_items["global"]
    assert flag.action == "hard-stop"
    assert flag.applied == {"flag", "gpu:chat", "gpu:summarize", "gateway:tierup-gateway"}
    assert [e.what for e in store.audit] == ["engage-flag", "drop-reserved", "drop-reserved", "stop-gateway"]
    assert all(e.why == "test" and e.source == "cli" and e.at == NOW for e in store.audit)

    second = switch.engage(_trigger())
    assert second.plan.steps == () and second.done == []
    assert len(gpu.calls) == 2 and len(concurrency.calls) == 1 and len(store.audit) == 4


def test_refuse_only_sets_the_flag():
    store, gpu, concurrency = FakeGuardrailStore(), FakeGpuControl(lambda: NOW), FakeConcurrency()
    outcome = _switch(store, gpu, concurrency).engage(_trigger("route:chat", "refuse"))
    assert [s.kind for s in outcome.plan.steps] == ["engage-flag"]
    assert gpu.calls == [] and concurrency.calls == []


def test_tenant_scope_drops_no_shared_gpus():
    outcome = _switch().engage(_trigger("tenant:acme", "drop-reserved"))
    assert [s.kind for s in outcome.plan.steps] == ["engage-flag"]
    assert any("no GPU routes" in note for note in outcome.plan.notes)


def test_without_ports_the_gateway_sets_only_the_flag_and_says_what_it_left():
    store = FakeGuardrailStore()
    gateway_side = KillSwitch(CONFIG, store, clock=lambda: NOW)
    outcome = gateway_side.engage(_trigger("route:chat", "drop-reserved"))
    assert outcome.done == ["refuse requests of route:chat (test)"]
    assert outcome.skipped == ["set min_containers of route chat to 0: this process has no GPU control (a Modal token)"]
    assert store.flag_items["route:chat"].applied == {"flag"}
    # The kill-switch function, with GPU control, then does the rest and only the rest.
    gpu = FakeGpuControl(lambda: NOW)
    rest = _switch(store, gpu).engage(_trigger("route:chat", "drop-reserved"))
    assert [s.kind for s in rest.plan.steps] == ["drop-reserved"] and gpu.calls == [("chat", 0)]


def test_engaging_again_never_weakens_and_upgrades_add_only_new_steps():
    store, concurrency = FakeGuardrailStore(), FakeConcurrency()
    switch = _switch(store, FakeGpuControl(lambda: NOW), concurrency)
    switch.engage(_trigger("route:chat", "hard-stop"))
    weaker = switch.engage(_trigger("route:chat", "refuse"))
    assert weaker.plan.steps == () and store.flag_items["route:chat"].action == "hard-stop"
    store2 = FakeGuardrailStore()
    switch2 = _switch(store2, FakeGpuControl(lambda: NOW), FakeConcurrency())
    switch2.engage(_trigger("route:chat", "refuse"))
    upgrade = switch2.engage(_trigger("route:chat", "hard-stop"))
    assert [s.kind for s in upgrade.plan.steps] == ["engage-flag", "drop-reserved", "stop-gateway"]


def test_expired_flag_is_engaged_afresh():
    store = FakeGuardrailStore()
    switch = _switch(store, function=None)
    switch.engage(_trigger("route:chat", "refuse", until=NOW - 1))
    again = switch.engage(_trigger("route:chat", "refuse", until=NOW + 100))
    assert [s.kind for s in again.plan.steps] == ["engage-flag"]
    assert store.flag_items["route:chat"].until == NOW + 100


def test_release_clears_the_flag_and_restores_concurrency_unless_another_hard_stop_holds():
    store = FakeGuardrailStore()
    concurrency = FakeConcurrency({"tierup-gateway": 50})
    config = make_config({"gateway": {"reserved-concurrency": 50}})
    switch = _switch(store, FakeGpuControl(lambda: NOW), concurrency, config=config)
    switch.engage(_trigger("route:chat", "hard-stop"))
    switch.engage(_trigger("global", "hard-stop"))
    held = switch.release("route:chat", "raised the cap", "cli")
    assert [s.kind for s in held.plan.steps] == ["release-flag"]
    assert concurrency.values["tierup-gateway"] == 0 and "route:chat" not in store.flag_items
    released = switch.release("global", "raised the cap", "cli")
    assert [s.kind for s in released.plan.steps] == ["release-flag", "restore-gateway"]
    assert concurrency.values["tierup-gateway"] == 50 and store.flag_items == {}
    assert switch.release("global", "again", "cli").plan.steps == ()


def test_a_failing_step_is_reported_and_audited_and_the_others_still_run():
    class BrokenGpu(FakeGpuControl):
        def set_min_replicas(self, route, replicas):
            raise RuntimeError("modal unreachable")

    store, concurrency = FakeGuardrailStore(), FakeConcurrency()
    outcome = _switch(store, BrokenGpu(lambda: NOW), concurrency).engage(_trigger())
    assert len(outcome.failed) == 2 and concurrency.values["tierup-gateway"] == 0
    assert "gpu:chat" not in store.flag_items["global"].applied
    assert [e.what for e in store.audit].count("FAILED drop-reserved") == 2
    retry = _switch(store, FakeGpuControl(lambda: NOW), concurrency).engage(_trigger())
    assert [s.kind for s in retry.plan.steps] == ["drop-reserved", "drop-reserved"]
