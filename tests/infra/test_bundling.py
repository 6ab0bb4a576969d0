"""The local Lambda bundler, offline: pip is replaced by a recording script (so nothing is
downloaded), and synth with ``aws:cdk:bundling-stacks=[]`` is shown to skip bundling altogether."""

from __future__ import annotations

import json
import os
import sys
import tomllib

import pytest

from functions.core.errors import DeployError
from infra.bundling import (PYTHON_VERSION, WHEEL_PLATFORMS, LocalPythonBundler, runtime_requirements,
                            source_fingerprint)
from tests.support import EXAMPLE_CONFIG, ROOT

from .conftest import SKIP_BUNDLING

RECORDING_PIP = """
import json, pathlib, sys
args = sys.argv[1:]
target = pathlib.Path(args[args.index("--target") + 1])
(target / "installed_package").mkdir(parents=True, exist_ok=True)
(target / "installed_package" / "__init__.py").write_text("")
(target / "bin").mkdir(exist_ok=True)
(target / "pip-args.json").write_text(json.dumps(args))
"""


@pytest.fixture
def recording_pip(tmp_path):
    script = tmp_path / "pip.py"
    script.write_text(RECORDING_PIP)
    return [sys.executable, str(script)]


def test_runtime_requirements_are_the_project_dependencies_not_the_extras():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert runtime_requirements(ROOT / "pyproject.toml") == project["dependencies"]


def test_extras_add_their_requirements():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert runtime_requirements(ROOT / "pyproject.toml", ("gpu",)) == (
        project["dependencies"] + project["optional-dependencies"]["gpu"])
    with pytest.raises(DeployError, match="no-such-extra"):
        runtime_requirements(ROOT / "pyproject.toml", ("no-such-extra",))


def test_bundle_installs_arm64_wheels_and_copies_the_code_config_and_start_script(tmp_path, recording_pip):
    config = tmp_path / "deployed.toml"
    config.write_text(EXAMPLE_CONFIG.read_text() + "\n# deployed copy\n")
    out = tmp_path / "bundle"
    out.mkdir()
    assert LocalPythonBundler(ROOT, config, pip_command=recording_pip).try_bundle(str(out)) is True

    args = json.loads((out / "pip-args.json").read_text())
    assert args[0] == "install" and "--only-binary=:all:" in args
    assert [args[i + 1] for i, a in enumerate(args) if a == "--platform"] == list(WHEEL_PLATFORMS)
    assert args[args.index("--python-version") + 1] == PYTHON_VERSION
    assert args[args.index("--implementation") + 1] == "cp"
    assert args[args.index("--target") + 1] == str(out)
    assert args[-len(runtime_requirements(ROOT / "pyproject.toml")):] == runtime_requirements(ROOT / "pyproject.toml")

    assert (out / "installed_package" / "__init__.py").exists()
    assert not (out / "bin").exists()
    assert (out / "functions" / "gateway" / "asgi.py").exists()
    assert not list(out.rglob("__pycache__"))
    assert (out / "tierup.toml").read_text() == config.read_text()
    start = out / "run.sh"
    assert os.access(start, os.X_OK)
    assert "functions.gateway.asgi:app" in start.read_text() and "${PORT" in start.read_text()
    assert not (out / "functions" / "run.sh").exists()


def test_a_failing_pip_fails_the_bundle_with_its_message(tmp_path):
    failing = [sys.executable, "-c", "import sys; sys.exit('no matching distribution for tiktoken')"]
    with pytest.raises(DeployError, match="no matching distribution for tiktoken"):
        LocalPythonBundler(ROOT, EXAMPLE_CONFIG, pip_command=failing).try_bundle(str(tmp_path))


def test_fingerprint_changes_with_the_config(tmp_path):
    config = tmp_path / "tierup.toml"
    config.write_text(EXAMPLE_CONFIG.read_text())
    before = source_fingerprint(ROOT, config)
    assert source_fingerprint(ROOT, config) == before
    assert source_fingerprint(ROOT, config, ("gpu",)) != before
    config.write_text(EXAMPLE_CONFIG.read_text().replace("max-in-flight = 256", "max-in-flight = 128"))
    assert source_fingerprint(ROOT, config) != before


def _stack_with_bundle(context: dict, outdir, pip_command):
    from aws_cdk import App, Stack
    from aws_cdk import aws_lambda as lambda_

    from infra.bundling import LAMBDA_RUNTIME, lambda_bundle

    app = App(context=context, outdir=str(outdir))
    stack = Stack(app, "BundleOnly")
    lambda_.Function(stack, "Fn", runtime=LAMBDA_RUNTIME, handler="run.sh",
                     code=lambda_bundle(ROOT, EXAMPLE_CONFIG, pip_command=pip_command))
    return app


def test_synth_skips_bundling_when_no_stack_is_selected_and_bundles_otherwise(tmp_path):
    failing = [sys.executable, "-c", "import sys; sys.exit('pip was run')"]
    _stack_with_bundle(SKIP_BUNDLING, tmp_path / "skipped", failing).synth()  # pip never runs

    with pytest.raises(Exception, match="pip could not install the Lambda dependencies:\npip was run"):
        _stack_with_bundle({}, tmp_path / "bundled", failing)  # CDK stages (bundles) the asset here
