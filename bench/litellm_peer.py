"""LiteLLM Proxy as a peer in ``bench/gateway_overhead.py --peer-litellm``, started by the shared
harness's own ``peer_litellm.sh`` (so it is configured exactly as in the harness's reference runs)
and pointed at the same fake upstream as tierup, pinned to the same CPU.

Benchmarks only. Install the peer first (into ``$VENV``, default /tmp/bench-venv):
``../shared/bench/gateway_overhead/peer_litellm.sh install``.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

from bench.gateway_process import process_cpu_seconds
from tierup.local_stack import free_port


class LiteLLMPeer:
    def __init__(self, harness: Path, upstream_url: str, state_dir: Path, *, cpu: int) -> None:
        self._script = harness / "peer_litellm.sh"
        self._env = {**os.environ, "UPSTREAM_PORT": str(urlsplit(upstream_url).port), "GATEWAY_CPU": str(cpu),
                     "LITELLM_PORT": str(free_port()), "STATE_DIR": str(state_dir.resolve())}
        self.url = self.key = self.model = ""
        self.pid = 0

    def start(self) -> "LiteLLMPeer":
        venv = Path(self._env.get("VENV", "/tmp/bench-venv"))
        if not (venv / "bin" / "litellm").exists():
            raise RuntimeError(f"LiteLLM is not installed in {venv}: run `{self._script} install` first")
        out = subprocess.run([str(self._script), "start"], env=self._env, capture_output=True, text=True,
                             timeout=180, check=True)
        self.url, self.key, self.model = out.stdout.strip().splitlines()[-1].split()
        # the process that listens (what the harness pins and measures), not the launcher
        listeners = subprocess.run(["ss", "-Htlnp", f"sport = :{self._env['LITELLM_PORT']}"],
                                   capture_output=True, text=True, check=True).stdout
        self.pid = int(listeners.split("pid=")[1].split(",")[0])
        return self

    def cpu_seconds(self) -> float:
        return process_cpu_seconds(self.pid)

    def stop(self) -> None:
        subprocess.run([str(self._script), "stop"], env=self._env, capture_output=True, timeout=60)

    def __enter__(self) -> "LiteLLMPeer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
