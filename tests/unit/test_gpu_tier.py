"""The Modal app of the GPU tiers: it imports without a GPU or Modal credentials and declares one
scale-to-zero vLLM web server per ``serverless-gpu`` route, as tierup.toml describes it."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from functions.core.config import parse_config
from functions.core.errors import ConfigError
from functions.core.gpu_names import gpu_route_problem
from tests.support import ROOT, example_config_data, make_config

app_module = pytest.importorskip("gpu_tier.app")


def _gpu_routes(config) -> dict:
    return {name: route for name, route in config.routes.items() if route.serverless_gpu}


def test_imports_without_modal_credentials_or_a_gpu(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODAL_")}
    env.update(HOME=str(tmp_path), MODAL_CONFIG_PATH=str(tmp_path / "absent.toml"))
    result = subprocess.run([sys.executable, "-c", "import gpu_tier.app as a; print(len(a.GPU_SERVERS))"],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(len(_gpu_routes(app_module.config)))


def test_one_function_per_gpu_route_named_for_its_url():
    routes = _gpu_routes(app_module.config)
    assert routes, "the example config has GPU routes"
    assert app_module.app.name == app_module.config.project
    assert [s.route for s in app_module.GPU_SERVERS] == list(routes)
    for server in app_module.GPU_SERVERS:
        function = getattr(app_module, server.python_name)
        assert server.function_name == f"gpu-{server.route}"
        assert repr(function) == f"Function(gpu-{server.route})"  # the name Modal registers
        # tierup.toml reaches it at https://{workspace}--{app}-{function}.modal.run/v1
        base_url = app_module.config.tiers["serverless-gpu"].base_url
        assert f"--{app_module.app.name}-gpu-{{route}}.modal.run/v1" in base_url


def test_each_function_runs_the_routes_model_on_its_gpu_and_scales_to_zero():
    for server in app_module.GPU_SERVERS:
        route = app_module.config.routes[server.route]
        options = app_module.function_options(server)
        assert (options["gpu"], options["min_containers"], options["max_containers"]) == (
            route.gpu, 0, route.max_replicas)
        info = getattr(app_module, server.python_name).info()  # Modal's own view of the declaration
        assert info.gpus == [(route.gpu, 1)]
        assert info.startup_timeout == app_module.STARTUP_TIMEOUT_S
        assert info.timeout == app_module.REQUEST_TIMEOUT_S
        assert set(info.volumes) == {"/root/.cache/huggingface", "/root/.cache/vllm"}
        assert any("gpu-api-key" in secret for secret in info.secrets)


def test_the_web_server_serves_vllm_on_the_declared_port():
    from modal._utils.async_utils import synchronizer

    for server in app_module.GPU_SERVERS:
        webhook = synchronizer._translate_in(getattr(app_module, server.python_name))._webhook_config
        assert webhook.web_server_port == app_module.VLLM_PORT
        assert webhook.web_server_startup_timeout == app_module.STARTUP_TIMEOUT_S


def test_a_container_finds_each_routes_function_where_modal_looks_for_it():
    """In a container Modal imports the module and takes ``getattr(module, implementation_name)``;
    functions declared in a loop must still be found there, each serving its own route."""
    from modal._utils.async_utils import synchronizer

    for server in app_module.GPU_SERVERS:
        function = synchronizer._translate_in(getattr(app_module, server.python_name))
        name = function._source_info.implementation_name
        assert "<locals>" not in name and "." not in name
        assert synchronizer._translate_in(getattr(app_module, name)) is function
        assert function._raw_f.__closure__[0].cell_contents == server  # the route it will serve


def test_vllm_serves_the_pinned_revision_under_the_model_name_the_gateway_sends():
    server = app_module.GPU_SERVERS[0]
    route = app_module.config.routes[server.route]
    command = app_module.vllm_command(server)
    assert command[:3] == ["vllm", "serve", route.serverless_gpu]
    flags = dict(zip(command[3::2], command[4::2]))
    assert flags["--revision"] == route.serverless_gpu_revision
    assert flags["--served-model-name"] == route.model_for("serverless-gpu") == route.model_for("reserved")
    assert flags["--port"] == str(app_module.VLLM_PORT)
    assert "--api-key" not in command  # the key travels in the environment, not the process list


def test_vllm_gets_the_api_key_from_the_secret_and_refuses_to_start_without_one():
    server = app_module.GPU_SERVERS[0]
    environ = app_module.vllm_environment(server, {"PATH": "/usr/bin", server.api_key_env: "sk-gpu-test"})
    assert environ["VLLM_API_KEY"] == "sk-gpu-test" and environ["PATH"] == "/usr/bin"
    with pytest.raises(ConfigError) as caught:
        app_module.vllm_environment(server, {"PATH": "/usr/bin"})
    assert caught.value.key == "tiers.serverless-gpu.api-key-env"
    assert app_module.API_KEY_SECRET_NAME in caught.value.message


def test_a_gpu_route_without_a_pinned_revision_is_a_config_error_naming_the_key():
    data = example_config_data()
    del data["routes"]["chat"]["serverless-gpu-revision"]
    with pytest.raises(ConfigError) as caught:
        app_module.plan_gpu_servers(parse_config(data))
    assert caught.value.key == "routes.chat.serverless-gpu-revision"


def test_a_route_name_that_cannot_be_a_url_label_is_refused():
    assert gpu_route_problem("tierup", "chat") is None
    assert gpu_route_problem("tierup", "Chat_v2") is not None
    assert gpu_route_problem("tierup", "x" * 60) is not None
    config = make_config({"routes": {"Chat_v2": {"serverless-gpu": "org/model", "serverless-gpu-revision": "abc",
                                                 "serverless": "us.meta.llama3-1-8b-instruct-v1:0",
                                                 "gpu": "L4"}}})
    with pytest.raises(ConfigError) as caught:
        app_module.plan_gpu_servers(config)
    assert caught.value.key == "routes.Chat_v2"


def test_modal_runs_what_the_cost_model_prices():
    """Concurrency and idle window come from the route's [pricing.gpus] entry, not from constants
    of their own: the policy spills past replicas x max-concurrent-requests, and prices a
    scale-to-zero container's idle-s, so Modal and vLLM must be declared with the same numbers."""
    for server in app_module.GPU_SERVERS:
        price = app_module.config.pricing.gpus[app_module.config.routes[server.route].gpu]
        info = getattr(app_module, server.python_name).info()
        assert info.concurrency_info.max_inputs == price.max_concurrent_requests
        options = app_module.function_options(server)
        assert options["scaledown_window"] == round(price.idle_s)
        # CPU and memory are reserved as priced (Modal bills the reservation beside the GPU)
        assert (options["cpu"], options["memory"]) == (price.cpu_cores, round(price.memory_gib * 1024))
        flags = dict(zip(app_module.vllm_command(server)[3::2], app_module.vllm_command(server)[4::2]))
        assert flags["--max-num-seqs"] == str(price.max_concurrent_requests)


def test_changing_the_config_changes_the_declaration():
    data = example_config_data()
    data["pricing"]["gpus"]["L40S"].update({"max-concurrent-requests": 24, "idle-s": 240, "cpu-cores": 4,
                                            "memory-gib": 24})
    [chat] = [s for s in app_module.plan_gpu_servers(parse_config(data)) if s.route == "chat"]
    assert (chat.serving.max_inputs, chat.serving.scaledown_window_s) == (24, 240)
    assert (chat.serving.cpu_cores, chat.serving.memory_mib) == (4, 24 * 1024)


def test_the_default_concurrency_is_what_the_example_config_and_the_app_admit():
    from functions.core.config.pricing import GpuPrice
    from functions.core.gpu_capacity import DEFAULT_MAX_CONCURRENT

    assert GpuPrice(usd_per_second=1.0).max_concurrent_requests == DEFAULT_MAX_CONCURRENT == 32
    [chat] = [s for s in app_module.GPU_SERVERS if s.route == "chat"]
    assert getattr(app_module, chat.python_name).info().concurrency_info.max_inputs == 32


def test_the_gpu_context_holds_the_largest_plan_prompt_plus_the_routes_answer():
    config = app_module.config
    for server in app_module.GPU_SERVERS:
        route = config.routes[server.route]
        expected = route.gpu_context_tokens or (
            max(plan.max_prompt_tokens for plan in config.plans.values()) + route.max_tokens)
        flags = dict(zip(app_module.vllm_command(server)[3::2], app_module.vllm_command(server)[4::2]))
        assert flags["--max-model-len"] == str(server.serving.max_model_len) == str(expected)
    [chat] = [s for s in app_module.GPU_SERVERS if s.route == "chat"]
    assert chat.serving.max_model_len == 128000 + 2048  # enterprise's prompts, chat's max-tokens


def test_an_underivable_gpu_context_or_an_idle_window_modal_refuses_is_a_config_error():
    data = example_config_data()
    data["plans"]["enterprise"].pop("max-prompt-tokens")
    with pytest.raises(ConfigError) as caught:
        app_module.plan_gpu_servers(parse_config(data))
    assert caught.value.key == "routes.chat.gpu-context-tokens"
    data = example_config_data()
    data["pricing"]["gpus"]["L40S"]["idle-s"] = 0
    with pytest.raises(ConfigError) as caught:
        app_module.plan_gpu_servers(parse_config(data))
    assert caught.value.key == "pricing.gpus.L40S.idle-s"
    data = example_config_data()
    data["routes"]["chat"]["gpu-context-tokens"] = 2048  # no room for a prompt beside max-tokens
    with pytest.raises(ConfigError) as caught:
        parse_config(data)
    assert caught.value.key.startswith("routes.chat")


def test_every_endpoint_requires_modal_proxy_auth():
    """Without it anyone could run completions (vLLM's key guards only /v1) or wake a GPU."""
    from modal._utils.async_utils import synchronizer

    for server in app_module.GPU_SERVERS:
        function = getattr(app_module, server.python_name)
        assert function.info().web_info.unauthenticated is False
        webhook = synchronizer._translate_in(function)._webhook_config
        assert webhook.requires_proxy_auth is True


def test_the_image_pins_a_current_vllm_and_its_companions():
    from packaging.version import Version

    assert Version(app_module.VLLM_VERSION) >= Version("0.32")
    assert Version(app_module.HUGGINGFACE_HUB_VERSION) >= Version("1.31")  # vLLM 0.32's floor
    assert Version("5.16.1") <= Version(app_module.TRANSFORMERS_VERSION) < Version("5.20")
