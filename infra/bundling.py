"""The Lambda bundles tierup's functions run from, built on this machine without Docker.

``pip install --platform manylinux..._aarch64 --only-binary=:all:`` selects the Linux arm64 wheels
for the Lambda runtime's Python whatever the host is, so a laptop (macOS included) builds a
bundle that runs on Lambda; no target code runs here. A bundle holds exactly the packages of its
lock file (``functions/requirements*.lock``, installed with ``--require-hashes``; see
``infra/bundle_lock.py``), ``functions/``, the deployed ``tierup.toml`` and ``run.sh`` (the
gateway's start script), all compiled to bytecode by the runtime's own Python version
(``infra/bundle_python.py``): Lambda's ``/var/task`` is read-only, so bytecode not shipped is
bytecode compiled again on every cold start. The gateway's bundle names no extra; the policy and
the kill switch share one with the ``gpu`` and ``policy`` extras (the Modal client and numpy,
which the gateway never imports, so its bundle stays smaller).

The asset's hash is computed here from exactly those inputs (the lock included), so CDK never
walks the repository and a changed config, pin or source yields a new bundle. With the CDK
context ``aws:cdk:bundling-stacks=[]`` (the infra tests) bundling is skipped: nothing is
installed or compiled and no Python 3.13 is needed.

This module must never reach AWS; the processes it starts are pip and the bytecode compiler.
"""

from __future__ import annotations

import hashlib
import os
import platform
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Sequence
from pathlib import Path

import jsii
from aws_cdk import AssetHashType, BundlingOptions, ILocalBundling
from aws_cdk import aws_lambda as lambda_

from functions.core.errors import DeployError

from .bundle_lock import check_lock
from .bundle_python import INVALIDATION_MODE, compile_bytecode, find_bundle_python

#: every function's runtime; the wheels pip selects and the bytecode compiled must match its
#: Python version. 3.13 (supported until mid-2029): a version a laptop can have to compile with.
LAMBDA_RUNTIME = lambda_.Runtime.PYTHON_3_13
PYTHON_VERSION = "3.13"
#: Graviton: about 20% cheaper per GB-second than x86_64, and every dependency ships arm64 wheels
LAMBDA_ARCHITECTURE = lambda_.Architecture.ARM_64
#: manylinux tags the Lambda OS (Amazon Linux 2023, glibc 2.34) can load; pip takes the first
#: wheel that matches any of them
WHEEL_PLATFORMS = ("manylinux2014_aarch64", "manylinux_2_28_aarch64", "manylinux_2_34_aarch64")
#: where the bundled config lands; every function's TIERUP_CONFIG points here
BUNDLED_CONFIG = "/var/task/tierup.toml"

_SKIPPED = shutil.ignore_patterns("__pycache__", "*.pyc", "run.sh", "*.lock")


def host_wheel_platforms() -> tuple[str, ...]:
    """``WHEEL_PLATFORMS`` for this machine's architecture: a bundle that runs here (Linux only),
    for the smoke test and the cold-start benchmark."""
    return tuple(tag.replace("aarch64", platform.machine()) for tag in WHEEL_PLATFORMS)


def runtime_requirements(pyproject: Path, extras: Sequence[str] = ()) -> list[str]:
    """``[project.dependencies]`` of ``pyproject``, then those of each extra named."""
    try:
        project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
        requirements = list(project["dependencies"])
        for extra in extras:
            requirements += project["optional-dependencies"][extra]
        return requirements
    except (OSError, KeyError, tomllib.TOMLDecodeError) as exc:
        raise DeployError(f"cannot read the Lambda dependencies from {pyproject}: {exc!r}") from exc


@jsii.implements(ILocalBundling)
class LocalPythonBundler:
    """CDK's local bundling hook: CDK calls ``try_bundle`` instead of starting a container."""

    def __init__(self, root: Path, config_file: Path, *, extras: Sequence[str] = (),
                 pip_command: Sequence[str] | None = None, python_command: Sequence[str] | None = None,
                 wheel_platforms: Sequence[str] = WHEEL_PLATFORMS) -> None:
        self.root = Path(root)
        self.config_file = Path(config_file)
        self.extras = tuple(extras)
        #: injectable so a test can bundle offline; by default the pip of the Python running CDK
        self.pip_command = list(pip_command or (sys.executable, "-m", "pip"))
        #: the bytecode compiler; by default found when bundling (never needed when it is skipped)
        self.python_command = list(python_command) if python_command else None
        #: the Lambda platform; a test may bundle for the host's instead, to run the bundle here
        self.wheel_platforms = tuple(wheel_platforms)

    def pip_arguments(self, output_dir: str) -> list[str]:
        lock = check_lock(self.root, runtime_requirements(self.root / "pyproject.toml", self.extras),
                          self.extras, PYTHON_VERSION)
        platforms = [arg for platform in self.wheel_platforms for arg in ("--platform", platform)]
        return [*self.pip_command, "install", "--quiet", "--disable-pip-version-check",
                "--no-compile", "--require-hashes", *platforms, "--only-binary=:all:",
                "--python-version", PYTHON_VERSION, "--implementation", "cp", "--target", output_dir,
                "--requirement", os.fspath(lock)]

    def try_bundle(self, output_dir: str, options=None) -> bool:
        # ``options`` (the Docker image and command) has no use here: this bundler never fails
        # over to Docker; it either builds the bundle or raises with pip's own message.
        python = self.python_command or find_bundle_python(PYTHON_VERSION)  # before any download
        result = subprocess.run(self.pip_arguments(output_dir), capture_output=True, text=True)
        if result.returncode != 0:
            raise DeployError(f"pip could not install the Lambda dependencies:\n{result.stderr or result.stdout}")
        out = Path(output_dir)
        shutil.rmtree(out / "bin", ignore_errors=True)  # console scripts for the host, unused on Lambda
        shutil.copytree(self.root / "functions", out / "functions", ignore=_SKIPPED, dirs_exist_ok=True)
        shutil.copyfile(self.config_file, out / "tierup.toml")
        start_script = out / "run.sh"
        shutil.copyfile(self.root / "functions" / "run.sh", start_script)
        start_script.chmod(0o755)  # Lambda runs the handler script itself: it must be executable
        compile_bytecode(python, out)
        return True


def source_fingerprint(root: Path, config_file: Path, extras: Sequence[str] = ()) -> str:
    """A hash of everything that goes into the bundle, so CDK need not fingerprint a directory."""
    requirements = runtime_requirements(root / "pyproject.toml", extras)
    digest = hashlib.sha256()
    digest.update(f"{PYTHON_VERSION}|{WHEEL_PLATFORMS}|{INVALIDATION_MODE}|".encode())
    digest.update("\n".join(requirements).encode())
    digest.update(check_lock(root, requirements, extras, PYTHON_VERSION).read_bytes())
    digest.update(Path(config_file).read_bytes())
    functions_dir = root / "functions"
    for path in sorted(functions_dir.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
            digest.update(str(path.relative_to(functions_dir)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def lambda_bundle(root: Path, config_file: Path, *, extras: Sequence[str] = (),
                  pip_command: Sequence[str] | None = None,
                  python_command: Sequence[str] | None = None) -> lambda_.Code:
    """One asset (one upload, shared by the functions given it): the locked dependencies with
    ``extras``, ``functions/``, the config and run.sh, compiled."""
    bundler = LocalPythonBundler(root, config_file, extras=extras, pip_command=pip_command,
                                 python_command=python_command)
    return lambda_.Code.from_asset(
        os.fspath(root / "functions"),
        asset_hash=source_fingerprint(root, config_file, extras),
        asset_hash_type=AssetHashType.CUSTOM,
        bundling=BundlingOptions(image=LAMBDA_RUNTIME.bundling_image, local=bundler),
    )
