"""The GPU tiers on Modal: one vLLM OpenAI-compatible server per route, scaled to zero.

    modal deploy gpu_tier/app.py           # every route with a `serverless-gpu` model
    modal run gpu_tier/app.py --route chat # smoke test: health, then one chat completion
                                           # (with the API key exported as TIERUP_GPU_API_KEY)

Each route of tierup.toml that names a ``serverless-gpu`` model gets one Modal web function,
``gpu-{route}`` in the app named after the project, so its URL is
``https://{workspace}--{project}-gpu-{route}.modal.run`` (``functions/core/gpu_names.py``) and
the gateway reaches it at ``.../v1``. The function runs ``vllm serve`` with the route's model
pinned to its revision, on the route's GPU, between 0 and ``max-replicas`` containers. The
same function is both GPU tiers: ``serverless-gpu`` is the deployed ``min_containers=0``;
``reserved`` is the traffic policy raising ``min_containers`` at runtime
(``functions/adapters/modal_control.py``), which a redeploy resets to 0.

Secrets (create them once with ``modal secret create``):
    {project}-gpu-api-key    holds the variable named by [tiers.serverless-gpu].api-key-env
                             (default TIERUP_GPU_API_KEY): the key vLLM requires on /v1
    {project}-huggingface    holds HF_TOKEN, for gated weights such as Llama

This module must import on a laptop without a GPU and without Modal credentials: it only
declares Modal objects; nothing here talks to Modal until ``modal deploy`` or ``modal run``.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import modal

from functions.core.config import TierupConfig, load_config
from functions.core.errors import ConfigError
from functions.core.gpu_names import gpu_app_name, gpu_function_name, gpu_route_problem

MINUTES = 60

# -- the config: read here at deploy time, and again in each container at start ------------------

#: where the config is baked into the image; containers read it there
CONFIG_IN_CONTAINER = "/root/tierup.toml"
#: precedence: TIERUP_CONFIG, then the repository's tierup.toml (deploying), or the baked copy
CONFIG_FILE = os.environ.get("TIERUP_CONFIG") or (
    str(Path(__file__).resolve().parents[1] / "tierup.toml") if modal.is_local() else CONFIG_IN_CONTAINER)

# -- the image: pinned, so a redeploy never changes the serving stack underneath a route ---------

#: vLLM's OpenAI server; a new version changes throughput and memory use, so bump it deliberately
VLLM_VERSION = "0.15.0"
#: the client vLLM downloads weights with; pinned alongside vLLM, whose wheels it must suit
HUGGINGFACE_HUB_VERSION = "0.36.0"
#: vLLM's wheels target this Python; the image's Python need not match the deploying laptop's
PYTHON_VERSION = "3.12"

image = (
    modal.Image.debian_slim(python_version=PYTHON_VERSION)
    .uv_pip_install(f"vllm=={VLLM_VERSION}", f"huggingface-hub=={HUGGINGFACE_HUB_VERSION}")
    # Xet's parallel download fills a fresh weights volume several times faster.
    .env({"HF_XET_HIGH_PERFORMANCE": "1", "TIERUP_CONFIG": CONFIG_IN_CONTAINER})
    .add_local_file(CONFIG_FILE, CONFIG_IN_CONTAINER)
    .add_local_python_source("functions")  # the config model, so containers read tierup.toml alike
)

# -- serving settings, shared by every route ----------------------------------------------------

#: the port vLLM listens on inside the container; Modal's web server proxies HTTPS to it
VLLM_PORT = 8000
#: HTTP requests one container takes at once; vLLM batches them, so more means higher throughput
#: per GPU but longer queues before Modal adds a container
MAX_CONCURRENT_REQUESTS = 32
#: idle time before a container above min_containers stops; longer keeps bursts warm but bills
#: GPU-seconds for nothing
SCALEDOWN_WINDOW_S = 5 * MINUTES
#: longest a single request (one streamed answer) may run
REQUEST_TIMEOUT_S = 10 * MINUTES
#: a cold start downloads (first time only) and loads the weights before the port opens
STARTUP_TIMEOUT_S = 20 * MINUTES
#: context length vLLM reserves KV cache for; 8k fits an 8B model on a 24 GB L4 with room to batch
MAX_MODEL_LEN = 8192
#: skip CUDA-graph capture: tens of seconds off every cold start for some decode throughput; the
#: serverless-gpu tier starts cold often, the reserved tier rarely
FAST_BOOT = True

# -- volumes: weights and compile caches outlive containers, so only the first start downloads ---
# (named without the project: deployments in one workspace share the downloaded weights)

hf_cache = modal.Volume.from_name("tierup-huggingface-cache", create_if_missing=True)
vllm_cache = modal.Volume.from_name("tierup-vllm-cache", create_if_missing=True)
VOLUMES = {"/root/.cache/huggingface": hf_cache, "/root/.cache/vllm": vllm_cache}


# -- the plan: one GPU server per route, as plain data -------------------------------------------


@dataclass(frozen=True)
class GpuServer:
    """Everything one route's Modal function is declared with."""

    route: str
    function_name: str
    model: str
    revision: str
    gpu: str
    max_containers: int
    api_key_env: str
    min_containers: int = 0  # scale to zero; the policy raises it at runtime to reserve capacity

    @property
    def python_name(self) -> str:
        """The module-level name the function is bound to (Modal finds it there in a container)."""
        return "serve_" + self.route.replace("-", "_")


def plan_gpu_servers(config: TierupConfig) -> list[GpuServer]:
    """One server per route with a ``serverless-gpu`` model; ``ConfigError`` names a bad key."""
    tier = config.tiers.get("serverless-gpu")
    api_key_env = (tier.api_key_env if tier else None) or "TIERUP_GPU_API_KEY"
    servers = []
    for name, route in config.routes.items():
        if not route.serverless_gpu:
            continue
        problem = gpu_route_problem(config.project, name)
        if problem:
            raise ConfigError(f"routes.{name}", problem)
        if not route.serverless_gpu_revision:
            raise ConfigError(f"routes.{name}.serverless-gpu-revision",
                              "pin the GPU model to a Hugging Face commit hash")
        servers.append(GpuServer(route=name, function_name=gpu_function_name(name), model=route.serverless_gpu,
                                 revision=route.serverless_gpu_revision, gpu=route.gpu,
                                 max_containers=route.max_replicas, api_key_env=api_key_env))
    return servers


def vllm_command(server: GpuServer) -> list[str]:
    command = ["vllm", "serve", server.model, "--revision", server.revision,
               "--served-model-name", server.model,  # the gateway sends the HF id as `model`
               "--host", "0.0.0.0", "--port", str(VLLM_PORT),
               "--max-model-len", str(MAX_MODEL_LEN)]
    if FAST_BOOT:
        command.append("--enforce-eager")
    return command


def vllm_environment(server: GpuServer, environ: dict[str, str]) -> dict[str, str]:
    """The server's environment: the API key as VLLM_API_KEY (kept off the command line).

    Without a key vLLM would serve anyone who finds the URL, so a missing key stops the start.
    """
    api_key = environ.get(server.api_key_env)
    if not api_key:
        raise ConfigError("tiers.serverless-gpu.api-key-env",
                          f"{server.api_key_env} is not set: add it to the Modal secret {API_KEY_SECRET_NAME!r}")
    return {**environ, "VLLM_API_KEY": api_key}


config = load_config(CONFIG_FILE)
GPU_SERVERS = plan_gpu_servers(config)

API_KEY_SECRET_NAME = f"{config.project}-gpu-api-key"
HUGGINGFACE_SECRET_NAME = f"{config.project}-huggingface"

app = modal.App(gpu_app_name(config.project))
api_key_secret = modal.Secret.from_name(API_KEY_SECRET_NAME)
huggingface_secret = modal.Secret.from_name(HUGGINGFACE_SECRET_NAME)


# -- the functions: one vLLM server per route ----------------------------------------------------


def _vllm_server(server: GpuServer):
    def serve() -> None:
        # Modal's web server waits until the port answers; vLLM opens it once weights are loaded.
        subprocess.Popen(vllm_command(server), env=vllm_environment(server, dict(os.environ)))

    # Modal finds a function in a container by its __qualname__ at module level; routes are
    # declared in a loop, so each gets a module-level name of its own (bound below).
    serve.__name__ = serve.__qualname__ = server.python_name
    return serve


def function_options(server: GpuServer) -> dict:
    """The arguments of ``app.function`` for one route's server."""
    return dict(
        name=server.function_name,
        image=image,
        gpu=server.gpu,
        min_containers=server.min_containers,
        max_containers=server.max_containers,
        scaledown_window=SCALEDOWN_WINDOW_S,
        timeout=REQUEST_TIMEOUT_S,
        startup_timeout=STARTUP_TIMEOUT_S,  # else `timeout` would also cap the cold start
        volumes=VOLUMES,
        secrets=[api_key_secret, huggingface_secret],
    )


for _server in GPU_SERVERS:
    globals()[_server.python_name] = app.function(**function_options(_server))(
        modal.concurrent(max_inputs=MAX_CONCURRENT_REQUESTS)(
            modal.web_server(port=VLLM_PORT, startup_timeout=STARTUP_TIMEOUT_S)(_vllm_server(_server))))


# -- a smoke test: `modal run gpu_tier/app.py --route chat` ---------------------------------------


@app.local_entrypoint()
def smoke(route: str = "", prompt: str = "Say hello in five words.") -> None:
    """Wake one route's server (a cold start can take minutes), check /health, ask one question."""
    import json
    import urllib.request

    server = next((s for s in GPU_SERVERS if not route or s.route == route), None)
    if server is None:
        raise SystemExit(f"no GPU route {route!r}; GPU routes: {[s.route for s in GPU_SERVERS]}")
    base = globals()[server.python_name].get_web_url()
    with urllib.request.urlopen(f"{base}/health", timeout=STARTUP_TIMEOUT_S) as response:
        print(f"{server.route}: /health {response.status}")
    body = json.dumps({"model": server.model, "max_tokens": 32,
                       "messages": [{"role": "user", "content": prompt}]}).encode()
    request = urllib.request.Request(f"{base}/v1/chat/completions", data=body, headers={
        "Content-Type": "application/json", "Authorization": f"Bearer {os.environ.get(server.api_key_env, '')}"})
    with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT_S) as response:
        answer = json.load(response)
    print(f"{server.route}: {answer['choices'][0]['message']['content']!r} usage={answer['usage']}")
