"""The Lambda bundles' lock files: every package a bundle installs, pinned, with its hashes.

One lock per bundle, resolved for the Lambda platform (Linux arm64, the runtime's Python, wheels
only) from ``pyproject.toml``: ``functions/requirements.lock`` for the gateway (the project's
dependencies) and ``functions/requirements-gpu-policy.lock`` for the control functions (plus the
``gpu`` and ``policy`` extras). Bundling installs a lock with ``pip --require-hashes``, so a
deploy installs exactly the files that were reviewed, and the lock is part of the asset's
fingerprint, so a changed pin is a new bundle.

Refresh after changing the dependencies (or to take upgrades)::

    make lock          # = .venv/bin/python -m infra.bundle_lock

A synth whose lock no longer satisfies ``pyproject.toml`` fails and says so. No I/O but reading
files, except ``refresh_locks``, which runs uv (it reaches the package index).
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from functions.core.errors import DeployError

#: the bundles that have a lock: the gateway (no extra) and the policy + kill switch
LOCKED_EXTRAS: tuple[tuple[str, ...], ...] = ((), ("gpu", "policy"))
#: uv's name for the Lambda platform (Amazon Linux 2023 is glibc 2.34, arm64)
LOCK_PLATFORM = "aarch64-manylinux_2_34"
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)")


def lock_file(root: Path, extras: Sequence[str] = ()) -> Path:
    """``functions/requirements.lock``, or ``functions/requirements-<extra>-<extra>.lock``."""
    suffix = "".join(f"-{extra}" for extra in sorted(extras))
    return Path(root) / "functions" / f"requirements{suffix}.lock"


def locked_versions(lock: Path) -> dict[str, str]:
    """``{canonical name: version}`` of each pin in a lock."""
    try:
        lines = lock.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise DeployError(f"no lock file {lock.name} for this bundle ({exc.strerror}): run `make lock` "
                          f"(a new set of extras goes into LOCKED_EXTRAS in infra/bundle_lock.py first)") from exc
    return {canonicalize_name(m[1]): m[2] for line in lines if (m := _PIN.match(line))}


def _lambda_marker_environment(python_version: str) -> dict[str, str]:
    return {"sys_platform": "linux", "platform_system": "Linux", "os_name": "posix",
            "platform_machine": "aarch64", "implementation_name": "cpython",
            "platform_python_implementation": "CPython", "python_version": python_version,
            "python_full_version": f"{python_version}.0"}


def unmet_requirements(requirements: Sequence[str], lock: Path, python_version: str) -> list[str]:
    """The requirements (that apply on Lambda) the lock does not pin a matching version of."""
    pins = locked_versions(lock)
    environment = _lambda_marker_environment(python_version)
    unmet = []
    for text in requirements:
        try:
            requirement = Requirement(text)
        except InvalidRequirement as exc:
            raise DeployError(f"pyproject.toml: invalid requirement {text!r}: {exc}") from exc
        if requirement.marker is not None and not requirement.marker.evaluate(environment):
            continue
        pinned = pins.get(canonicalize_name(requirement.name))
        if pinned is None or not requirement.specifier.contains(pinned, prereleases=True):
            unmet.append(f"{text} (locked: {pinned or 'absent'})")
    return unmet


def check_lock(root: Path, requirements: Sequence[str], extras: Sequence[str], python_version: str) -> Path:
    """The bundle's lock file, once it is shown to satisfy ``requirements``; else a ``DeployError``."""
    lock = lock_file(root, extras)
    unmet = unmet_requirements(requirements, lock, python_version)
    if unmet:
        raise DeployError(f"{lock.name} does not satisfy pyproject.toml ({'; '.join(unmet)}): "
                          f"refresh it with `make lock`")
    return lock


def refresh_locks(root: Path, python_version: str) -> list[Path]:
    """Resolve every bundle's lock again with uv (newest versions pyproject.toml allows)."""
    written = []
    for extras in LOCKED_EXTRAS:
        lock = lock_file(root, extras)
        command = [sys.executable, "-m", "uv", "pip", "compile", "pyproject.toml", "--quiet",
                   *(arg for extra in extras for arg in ("--extra", extra)),
                   "--python-version", python_version, "--python-platform", LOCK_PLATFORM,
                   "--only-binary", ":all:", "--generate-hashes", "--upgrade",
                   "--custom-compile-command", "make lock", "-o", str(lock.relative_to(root))]
        subprocess.run(command, cwd=root, check=True)
        written.append(lock)
    return written


if __name__ == "__main__":
    from infra.bundling import PYTHON_VERSION

    for path in refresh_locks(Path(__file__).resolve().parents[1], PYTHON_VERSION):
        print(f"wrote {path}")
