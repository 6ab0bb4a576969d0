"""The GPU tiers on Modal: one vLLM OpenAI-compatible server per route, scaled to zero.

    modal deploy gpu_tier/app.py           # every route with a `serverless-gpu` model
    modal run gpu_tier/app.py --route chat # smoke test: health, then one chat completion (with
                                           # TIERUP_GPU_API_KEY and TIERUP_MODAL_PROXY_TOKEN exported)

Each route of tierup.toml that names a ``serverless-gpu`` model gets one Modal web function,
``gpu-{route}`` in the app named after the project, so its URL is
``https://{workspace}--{project}-gpu-{route}.modal.run`` (``functions/core/gpu_names.py``) and
the gateway reaches it at ``.../v1``. The function runs ``vllm serve`` with the route's model
pinned to its revision, on the route's GPU, between 0 and ``max-replicas`` containers. The
same function is both GPU tiers: ``serverless-gpu`` is the deployed ``min_containers=0``;
``reserved`` is the traffic policy raising ``min_containers`` at runtime
(``functions/adapters/modal_control.py``), which a redeploy resets to 0.

Every endpoint requires Modal proxy auth: Modal's proxy refuses (401) a request without the
workspace's Proxy Auth Token (headers ``Modal-Key`` / ``Modal-Secret``) before it reaches or
starts a container, so a stranger can neither use a GPU nor wake one. vLLM's own key guards only
paths under ``/v1`` (``/invocations`` and ``/health`` answer without it), so it is a second lock,
not the first. The gateway and its health probe send the token ([tiers.X] proxy-auth-env).

How a route's function is sized comes from tierup.toml alone (``functions/core/gpu_serving.py``),
so that Modal runs what the cost model prices: ``@modal.concurrent(max_inputs)`` and vLLM's
``--max-num-seqs`` are the GPU type's ``max-concurrent-requests``, ``scaledown_window`` is its
``idle-s``, ``cpu`` and ``memory`` are its ``cpu-cores`` and ``memory-gib`` (Modal bills them beside
the GPU), and ``--max-model-len`` is the route's ``gpu-context-tokens``.

Cold start, and why no memory snapshot: a container mounts two Volumes, loads the weights from the
Hugging Face cache Volume (downloaded from the Hub by the first container only, pinned to the
route's revision) straight into GPU memory, and skips CUDA-graph capture (``FAST_BOOT``). Modal's
CPU memory snapshots would not shorten this: what takes the time is vLLM's engine start and the
weight load, which happen in GPU memory, and a CPU snapshot is taken without a GPU attached.
GPU memory snapshots would (Modal reports several-fold faster starts), but they are an alpha
feature a workspace must ask for, and they need vLLM's sleep mode driven through its development
endpoints (``VLLM_SERVER_DEV_MODE``), which would then sit on the public port. Measure the path
with ``modal run gpu_tier/app.py --route chat``: it prints the time to the first /health and to
the first answer.

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
from functions.core.gpu_serving import GpuServing, gpu_serving
from functions.core.proxy_auth import proxy_auth_headers

MINUTES = 60

# -- the config: read here at deploy time, and again in each container at start ------------------

#: where the config is baked into the image; containers read it there
CONFIG_IN_CONTAINER = "/root/tierup.toml"
#: precedence: TIERUP_CONFIG, then the repository's tierup.toml (deploying), or the baked copy
CONFIG_FILE = os.environ.get("TIERUP_CONFIG") or (
    str(Path(__file__).resolve().parents[1] / "tierup.toml") if modal.is_local() else CONFIG_IN_CONTAINER)

# -- the image: pinned, so a redeploy never changes the serving stack underneath a route ---------

#: vLLM's OpenAI server; a new version changes throughput and memory use, so bump it deliberately.
#: 0.32 rather than the newest 0.33.0: a release that has been out a release cycle; vLLM pins its
#: own torch and flashinfer exactly, so those follow from this line
VLLM_VERSION = "0.32.0"
#: the model code vLLM 0.32 loads Llama with (it requires >=5.16.1,<5.20)
TRANSFORMERS_VERSION = "5.19.0"
#: the client vLLM downloads weights with (vLLM requires >=1.31; the newest 1.x, not the 2.x line)
HUGGINGFACE_HUB_VERSION = "1.33.0"
#: vLLM's wheels target this Python; the image's Python need not match the deploying laptop's
PYTHON_VERSION = "3.12"

image = (
    modal.Image.debian_slim(python_version=PYTHON_VERSION)
    .uv_pip_install(f"vllm=={VLLM_VERSION}", f"transformers=={TRANSFORMERS_VERSION}",
                    f"huggingface-hub=={HUGGINGFACE_HUB_VERSION}")
    # Xet's parallel download fills a fresh weights volume several times faster.
    .env({"HF_XET_HIGH_PERFORMANCE": "1", "TIERUP_CONFIG": CONFIG_IN_CONTAINER})
    .add_local_file(CONFIG_FILE, CONFIG_IN_CONTAINER)
    .add_local_python_source("functions")  # the config model, so containers read tierup.toml alike
)

# -- serving settings, shared by every route ----------------------------------------------------

#: the port vLLM listens on inside the container; Modal's web server proxies HTTPS to it
VLLM_PORT = 8000
#: longest a single request (one streamed answer) may run
REQUEST_TIMEOUT_S = 10 * MINUTES
#: a cold start downloads (first time only) and loads the weights before the port opens
STARTUP_TIMEOUT_S = 20 * MINUTES
#: skip CUDA-graph capture: tens of seconds off every cold start for some decode throughput; the
#: serverless-gpu tier starts cold often, the reserved tier rarely
FAST_BOOT = True
#: Modal's proxy checks the workspace token on every request; never deploy a GPU endpoint without
REQUIRES_PROXY_AUTH = True
# Concurrency, idle window and context length are per route, from tierup.toml (GpuServing).

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
    #: concurrency, idle window and context, as the cost model prices them
    serving: GpuServing
    #: the variable holding the proxy auth token, for the smoke test (the servers need none)
    proxy_auth_env: str | None = None
    min_containers: int = 0  # scale to zero; the policy raises it at runtime to reserve capacity

    @property
    def python_name(self) -> str:
        """The module-level name the function is bound to (Modal finds it there in a container)."""
        return "serve_" + self.route.replace("-", "_")


def plan_gpu_servers(config: TierupConfig) -> list[GpuServer]:
    """One server per route with a ``serverless-gpu`` model; ``ConfigError`` names a bad key."""
    tier = config.tiers.get("serverless-gpu")
    api_key_env = (tier.api_key_env if tier else None) or "TIERUP_GPU_API_KEY"
    proxy_auth_env = tier.proxy_auth_env if tier else None
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
                                 max_containers=route.max_replicas, api_key_env=api_key_env,
                                 serving=gpu_serving(config, name), proxy_auth_env=proxy_auth_env))
    return servers


def vllm_command(server: GpuServer) -> list[str]:
    command = ["vllm", "serve", server.model, "--revision", server.revision,
               "--served-model-name", server.model,  # the gateway sends the HF id as `model`
               "--host", "0.0.0.0", "--port", str(VLLM_PORT),
               "--max-model-len", str(server.serving.max_model_len),
               # as many sequences as Modal routes to the container: none wait inside vLLM
               "--max-num-seqs", str(server.serving.max_inputs)]
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
        scaledown_window=server.serving.scaledown_window_s,
        cpu=server.serving.cpu_cores,
        memory=server.serving.memory_mib,
        timeout=REQUEST_TIMEOUT_S,
        startup_timeout=STARTUP_TIMEOUT_S,  # else `timeout` would also cap the cold start
        volumes=VOLUMES,
        secrets=[api_key_secret, huggingface_secret],
    )


for _server in GPU_SERVERS:
    globals()[_server.python_name] = app.function(**function_options(_server))(
        modal.concurrent(max_inputs=_server.serving.max_inputs)(
            modal.web_server(port=VLLM_PORT, startup_timeout=STARTUP_TIMEOUT_S,
                             requires_proxy_auth=REQUIRES_PROXY_AUTH)(_vllm_server(_server))))


# -- a smoke test: `modal run gpu_tier/app.py --route chat` ---------------------------------------


@app.local_entrypoint()
def smoke(route: str = "", prompt: str = "Say hello in five words.") -> None:
    """Wake one route's server (a cold start can take minutes), check /health, ask one question,
    and print how long each took: the first /health after a scale-to-zero is the cold start."""
    import json
    import time
    import urllib.request

    server = next((s for s in GPU_SERVERS if not route or s.route == route), None)
    if server is None:
        raise SystemExit(f"no GPU route {route!r}; GPU routes: {[s.route for s in GPU_SERVERS]}")
    proxy_headers = proxy_auth_headers(server.proxy_auth_env, os.environ)
    if not proxy_headers:
        raise SystemExit(f"export {server.proxy_auth_env or 'the proxy-auth-env variable'} as TOKEN_ID:TOKEN_SECRET "
                         "(a Proxy Auth Token of the workspace): the endpoint requires it")
    base = globals()[server.python_name].get_web_url()
    started = time.monotonic()
    health = urllib.request.Request(f"{base}/health", headers=proxy_headers)
    with urllib.request.urlopen(health, timeout=STARTUP_TIMEOUT_S) as response:
        print(f"{server.route}: /health {response.status} after {time.monotonic() - started:.1f} s")
    body = json.dumps({"model": server.model, "max_tokens": 32,
                       "messages": [{"role": "user", "content": prompt}]}).encode()
    request = urllib.request.Request(f"{base}/v1/chat/completions", data=body, headers={
        **proxy_headers, "Content-Type": "application/json",
        "Authorization": f"Bearer {os.environ.get(server.api_key_env, '')}"})
    asked = time.monotonic()
    with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT_S) as response:
        answer = json.load(response)
    print(f"{server.route}: {answer['choices'][0]['message']['content']!r} usage={answer['usage']} "
          f"in {time.monotonic() - asked:.1f} s")
