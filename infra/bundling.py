"""The Lambda bundles tierup's functions run from, built on this machine without Docker.

``pip install --platform manylinux..._aarch64 --only-binary=:all:`` selects the Linux arm64 wheels
for the Lambda runtime's Python whatever the host is, so a laptop (macOS included) builds a
bundle that runs on Lambda; nothing is compiled and no target code runs here. A bundle holds
the runtime dependencies of ``pyproject.toml`` ([project.dependencies]) plus the extras it names,
``functions/``, the deployed ``tierup.toml`` and ``run.sh`` (the gateway's start script). The
gateway's bundle names no extra; the policy and the kill switch share one with the ``gpu`` extra
(the Modal client, which the gateway never imports, so its bundle stays smaller).

The asset's hash is computed here from exactly those inputs, so CDK never walks the repository
and a changed config or dependency list yields a new bundle. With the CDK context
``aws:cdk:bundling-stacks=[]`` (the infra tests) bundling is skipped and nothing is installed.

This module must never reach AWS; the only process it starts is pip.
"""

from __future__ import annotations

import hashlib
import os
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

#: every function's runtime; the wheels pip selects must match its Python version
LAMBDA_RUNTIME = lambda_.Runtime.PYTHON_3_14
PYTHON_VERSION = "3.14"
#: Graviton: about 20% cheaper per GB-second than x86_64, and every dependency ships arm64 wheels
LAMBDA_ARCHITECTURE = lambda_.Architecture.ARM_64
#: manylinux tags the Lambda OS (Amazon Linux 2023, glibc 2.34) can load; pip takes the first
#: wheel that matches any of them
WHEEL_PLATFORMS = ("manylinux2014_aarch64", "manylinux_2_28_aarch64", "manylinux_2_34_aarch64")
#: where the bundled config lands; every function's TIERUP_CONFIG points here
BUNDLED_CONFIG = "/var/task/tierup.toml"

_SKIPPED = shutil.ignore_patterns("__pycache__", "*.pyc", "run.sh")


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
                 pip_command: Sequence[str] | None = None) -> None:
        self.root = Path(root)
        self.config_file = Path(config_file)
        self.extras = tuple(extras)
        #: injectable so a test can bundle offline; by default the pip of the Python running CDK
        self.pip_command = list(pip_command or (sys.executable, "-m", "pip"))

    def pip_arguments(self, output_dir: str) -> list[str]:
        platforms = [arg for platform in WHEEL_PLATFORMS for arg in ("--platform", platform)]
        return [*self.pip_command, "install", "--quiet", "--disable-pip-version-check",
                "--no-compile", *platforms, "--only-binary=:all:", "--python-version", PYTHON_VERSION,
                "--implementation", "cp", "--target", output_dir,
                *runtime_requirements(self.root / "pyproject.toml", self.extras)]

    def try_bundle(self, output_dir: str, options=None) -> bool:
        # ``options`` (the Docker image and command) has no use here: this bundler never fails
        # over to Docker; it either builds the bundle or raises with pip's own message.
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
        return True


def source_fingerprint(root: Path, config_file: Path, extras: Sequence[str] = ()) -> str:
    """A hash of everything that goes into the bundle, so CDK need not fingerprint a directory."""
    digest = hashlib.sha256()
    digest.update(f"{PYTHON_VERSION}|{WHEEL_PLATFORMS}|".encode())
    digest.update("\n".join(runtime_requirements(root / "pyproject.toml", extras)).encode())
    digest.update(Path(config_file).read_bytes())
    functions_dir = root / "functions"
    for path in sorted(functions_dir.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
            digest.update(str(path.relative_to(functions_dir)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def lambda_bundle(root: Path, config_file: Path, *, extras: Sequence[str] = (),
                  pip_command: Sequence[str] | None = None) -> lambda_.Code:
    """One asset (one upload, shared by the functions given it): dependencies with ``extras``,
    ``functions/``, the config and run.sh."""
    bundler = LocalPythonBundler(root, config_file, extras=extras, pip_command=pip_command)
    return lambda_.Code.from_asset(
        os.fspath(root / "functions"),
        asset_hash=source_fingerprint(root, config_file, extras),
        asset_hash_type=AssetHashType.CUSTOM,
        bundling=BundlingOptions(image=LAMBDA_RUNTIME.bundling_image, local=bundler),
    )
