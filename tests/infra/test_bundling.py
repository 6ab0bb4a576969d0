"""The local Lambda bundler, offline: pip is replaced by a recording script (so nothing is
downloaded), and synth with ``aws:cdk:bundling-stacks=[]`` is shown to skip bundling altogether.
The lock files, the asset fingerprint and the search for the runtime's Python are checked here
too; test_bundle_smoke.py builds and runs a real bundle."""

from __future__ import annotations

import json
import os
import shutil
import sys
import tomllib
from pathlib import Path

import pytest

from functions.core.errors import DeployError
from infra.bundle_lock import LOCKED_EXTRAS, lock_file, locked_versions, unmet_requirements
from infra.bundle_python import BUNDLE_PYTHON_ENV, find_bundle_python
from infra.bundling import (LAMBDA_RUNTIME, PYTHON_VERSION, WHEEL_PLATFORMS, LocalPythonBundler,
                            runtime_requirements, source_fingerprint)
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


def test_bundle_installs_the_locked_arm64_wheels_and_copies_the_code_config_and_start_script(tmp_path, recording_pip):
    config = tmp_path / "deployed.toml"
    config.write_text(EXAMPLE_CONFIG.read_text() + "\n# deployed copy\n")
    out = tmp_path / "bundle"
    out.mkdir()
    bundler = LocalPythonBundler(ROOT, config, pip_command=recording_pip, python_command=[sys.executable])
    assert bundler.try_bundle(str(out)) is True

    args = json.loads((out / "pip-args.json").read_text())
    assert args[0] == "install" and "--only-binary=:all:" in args and "--require-hashes" in args
    assert [args[i + 1] for i, a in enumerate(args) if a == "--platform"] == list(WHEEL_PLATFORMS)
    assert args[args.index("--python-version") + 1] == PYTHON_VERSION
    assert args[args.index("--implementation") + 1] == "cp"
    assert args[args.index("--target") + 1] == str(out)
    assert args[args.index("--requirement") + 1] == str(ROOT / "functions" / "requirements.lock")

    assert (out / "installed_package" / "__init__.py").exists()
    assert not (out / "bin").exists()
    assert (out / "functions" / "gateway" / "asgi.py").exists()
    assert not list((out / "functions").glob("*.lock"))
    assert (out / "tierup.toml").read_text() == config.read_text()
    start = out / "run.sh"
    assert os.access(start, os.X_OK)
    assert "functions.gateway.asgi:app" in start.read_text() and "${PORT" in start.read_text()
    assert not (out / "functions" / "run.sh").exists()


def test_every_bundled_source_ships_bytecode_that_is_never_checked_against_its_mtime(tmp_path, recording_pip):
    # /var/task is read-only: a missing pyc is compiled again on every cold start, and a
    # timestamp pyc is judged stale once the zip has changed the sources' mtimes
    out = tmp_path / "bundle"
    out.mkdir()
    LocalPythonBundler(ROOT, EXAMPLE_CONFIG, pip_command=recording_pip,
                       python_command=[sys.executable]).try_bundle(str(out))
    sources = [path for path in out.rglob("*.py")]
    assert len(sources) > 50
    tag = sys.implementation.cache_tag
    for source in sources:
        pyc = source.parent / "__pycache__" / f"{source.stem}.{tag}.pyc"
        flags = int.from_bytes(pyc.read_bytes()[4:8], "little")
        assert flags == 0b01, f"{pyc.relative_to(out)} is not an unchecked-hash pyc"  # PEP 552


def test_bytecode_names_files_where_lambda_unpacks_them(tmp_path, recording_pip):
    import marshal

    out = tmp_path / "bundle"
    out.mkdir()
    LocalPythonBundler(ROOT, EXAMPLE_CONFIG, pip_command=recording_pip,
                       python_command=[sys.executable]).try_bundle(str(out))
    [pyc] = (out / "functions" / "gateway" / "__pycache__").glob("asgi.*.pyc")
    assert marshal.loads(pyc.read_bytes()[16:]).co_filename == "/var/task/functions/gateway/asgi.py"


def test_the_runtime_is_the_python_version_bundled_for():
    assert LAMBDA_RUNTIME.name == f"python{PYTHON_VERSION}"


# --- the lock files -------------------------------------------------------------------------------

def test_each_lock_pins_every_requirement_of_its_bundle():
    for extras in LOCKED_EXTRAS:
        requirements = runtime_requirements(ROOT / "pyproject.toml", extras)
        assert unmet_requirements(requirements, lock_file(ROOT, extras), PYTHON_VERSION) == [], (
            f"{lock_file(ROOT, extras).name} is stale: run `make lock`")


def test_each_pin_in_the_locks_carries_hashes():
    for extras in LOCKED_EXTRAS:
        lines = lock_file(ROOT, extras).read_text().splitlines()
        for index, line in enumerate(lines):
            if "==" in line and not line.startswith((" ", "#")):
                assert lines[index + 1].strip().startswith("--hash=sha256:"), line


def test_the_gateway_lock_holds_what_the_gateway_runs_and_not_the_laptop_side():
    locked = locked_versions(lock_file(ROOT))
    assert {"uvicorn", "uvloop", "httptools", "boto3", "pydantic", "aiohttp"} <= locked.keys()
    assert not {"openai", "websockets", "watchfiles", "python-dotenv", "pyyaml", "modal", "numpy"} & locked.keys()


def _project_copy(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    shutil.copytree(ROOT / "functions", root / "functions", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copyfile(ROOT / "pyproject.toml", root / "pyproject.toml")
    return root


def test_a_lock_that_no_longer_satisfies_pyproject_fails_the_synth(tmp_path):
    root = _project_copy(tmp_path)
    pyproject = root / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('"orjson>=3.10",', '"orjson>=99",\n    "left-pad>=1",'))
    with pytest.raises(DeployError, match=r"requirements.lock does not satisfy pyproject.toml.*orjson>=99 \(locked: 3.*"
                                          r"left-pad>=1 \(locked: absent\).*make lock"):
        source_fingerprint(root, EXAMPLE_CONFIG)


def test_a_missing_lock_fails_the_synth_saying_how_to_make_it(tmp_path):
    root = _project_copy(tmp_path)
    (root / "functions" / "requirements.lock").unlink()
    with pytest.raises(DeployError, match="no lock file requirements.lock.*make lock"):
        source_fingerprint(root, EXAMPLE_CONFIG)


def test_fingerprint_changes_with_the_lock(tmp_path):
    root = _project_copy(tmp_path)
    before = source_fingerprint(root, EXAMPLE_CONFIG)
    lock = root / "functions" / "requirements.lock"
    first_hash = next(line for line in lock.read_text().splitlines() if "--hash=sha256:" in line)
    lock.write_text(lock.read_text().replace(first_hash, first_hash[:-8] + "00000000", 1))
    assert source_fingerprint(root, EXAMPLE_CONFIG) != before


# --- the Python that compiles the bytecode -------------------------------------------------------

def _fake_interpreter(path: Path, version: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"#!/bin/sh\necho cpython {version}\n")
    path.chmod(0o755)
    return path


@pytest.mark.skipif(sys.platform == "win32", reason="shell-script interpreters")
def test_the_compiler_is_found_in_pyenv_newest_patch_first(tmp_path):
    for patch in ("9", "10"):
        _fake_interpreter(tmp_path / f"pyenv/versions/3.99.{patch}/bin/python3.99", "3.99")
    environ = {"PATH": "", "HOME": str(tmp_path), "PYENV_ROOT": str(tmp_path / "pyenv")}
    assert find_bundle_python("3.99", environ) == [str(tmp_path / "pyenv/versions/3.99.10/bin/python3.99")]


def test_no_interpreter_of_the_runtime_version_fails_saying_how_to_get_one(tmp_path):
    environ = {"PATH": "", "HOME": str(tmp_path)}
    with pytest.raises(DeployError, match=r"no Python 3.99 .*pyenv install 3.99.*TIERUP_BUNDLE_PYTHON"):
        find_bundle_python("3.99", environ)


def test_a_named_interpreter_of_another_version_is_refused():
    environ = {BUNDLE_PYTHON_ENV: sys.executable}
    this_version = rf"{sys.version_info[0]}\.{sys.version_info[1]}"
    with pytest.raises(DeployError, match=rf"is Python {this_version}; the Lambda runtime is Python 3.99"):
        find_bundle_python("3.99", environ)


def test_a_failing_pip_fails_the_bundle_with_its_message(tmp_path):
    failing = [sys.executable, "-c", "import sys; sys.exit('no matching distribution for tiktoken')"]
    with pytest.raises(DeployError, match="no matching distribution for tiktoken"):
        LocalPythonBundler(ROOT, EXAMPLE_CONFIG, pip_command=failing,
                           python_command=[sys.executable]).try_bundle(str(tmp_path))


def test_fingerprint_changes_with_the_config(tmp_path):
    config = tmp_path / "tierup.toml"
    config.write_text(EXAMPLE_CONFIG.read_text())
    before = source_fingerprint(ROOT, config)
    assert source_fingerprint(ROOT, config) == before
    assert source_fingerprint(ROOT, config, ("gpu", "policy")) != before
    config.write_text(EXAMPLE_CONFIG.read_text().replace("max-in-flight = 256", "max-in-flight = 128"))
    assert source_fingerprint(ROOT, config) != before


def _stack_with_bundle(context: dict, outdir, pip_command):
    from aws_cdk import App, Stack
    from aws_cdk import aws_lambda as lambda_

    from infra.bundling import LAMBDA_RUNTIME, lambda_bundle

    app = App(context=context, outdir=str(outdir))
    stack = Stack(app, "BundleOnly")
    lambda_.Function(stack, "Fn", runtime=LAMBDA_RUNTIME, handler="run.sh",
                     code=lambda_bundle(ROOT, EXAMPLE_CONFIG, pip_command=pip_command,
                                        python_command=[sys.executable]))
    return app


def test_synth_skips_bundling_when_no_stack_is_selected_and_bundles_otherwise(tmp_path):
    failing = [sys.executable, "-c", "import sys; sys.exit('pip was run')"]
    _stack_with_bundle(SKIP_BUNDLING, tmp_path / "skipped", failing).synth()  # pip never runs

    with pytest.raises(Exception, match="pip could not install the Lambda dependencies:\npip was run"):
        _stack_with_bundle({}, tmp_path / "bundled", failing)  # CDK stages (bundles) the asset here
