"""The Python that compiles a Lambda bundle's bytecode, and the compile step itself.

Lambda unpacks a bundle into ``/var/task``, which is read-only: a module without a valid ``.pyc``
there is compiled again on every cold start and the result thrown away (about twice the import
time of the gateway). So the bundle ships its bytecode, compiled here. A ``.pyc`` is only loaded
by the CPython minor version that wrote it, so the compiler must be the Lambda runtime's version
exactly (3.13 for ``python3.13``), whatever Python runs CDK.

The bytecode is ``unchecked-hash`` (PEP 552): Python loads it without comparing the source's
mtime, which a zip round trip does not preserve (a ``timestamp`` pyc would be judged stale and
recompiled in memory on every cold start) and without hashing the source on each import. The
bundle never changes after it is built, so an unchecked pyc cannot go stale.

Where no such interpreter is found, bundling fails (``DeployError``) rather than deploying a
bundle that silently doubles every cold start. Looked for, in order: ``TIERUP_BUNDLE_PYTHON``,
the Python running CDK, ``python3.13`` on PATH, pyenv's and uv's managed installs.

This module starts only the interpreters it checks and the compiler; it never reaches AWS.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

from functions.core.errors import DeployError

#: names an interpreter to compile with (it must be the runtime's minor version)
BUNDLE_PYTHON_ENV = "TIERUP_BUNDLE_PYTHON"
#: where Lambda unpacks the bundle: code objects name their files as they will be there
DEPLOYED_ROOT = "/var/task"
#: PEP 552 bytecode that is never checked against its source (see above)
INVALIDATION_MODE = "unchecked-hash"
_VERSION_PROBE = "import sys; print(sys.implementation.name, '%d.%d' % sys.version_info[:2])"


def interpreter_version(python: str) -> str | None:
    """``"3.13"`` for a CPython 3.13 that runs; ``None`` for anything that does not run as CPython
    (a pyenv shim for a version that is not selected fails here, as it should)."""
    try:
        probe = subprocess.run([python, "-I", "-c", _VERSION_PROBE], capture_output=True, text=True,
                               timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    implementation, _, version = probe.stdout.strip().partition(" ")
    return version if probe.returncode == 0 and implementation == "cpython" else None


def _patch_order(path: Path) -> tuple[int, ...]:
    """Sort key: the newest patch release first (3.13.10 after 3.13.9, which string order gets wrong)."""
    match = re.search(r"(\d+)\.(\d+)\.(\d+)", path.parent.parent.name)  # versions/3.13.1/bin/python3.13
    return tuple(int(part) for part in match.groups()) if match else (0,)


def _candidates(version: str, environ: Mapping[str, str]) -> Iterator[str]:
    yield sys.executable
    on_path = shutil.which(f"python{version}", path=environ.get("PATH", os.defpath))
    if on_path:
        yield on_path
    home = Path(environ.get("HOME") or Path.home())
    managed = [
        (Path(environ.get("PYENV_ROOT") or home / ".pyenv") / "versions", f"{version}.*"),
        (Path(environ.get("UV_PYTHON_INSTALL_DIR")
              or Path(environ.get("XDG_DATA_HOME") or home / ".local" / "share") / "uv" / "python"),
         f"cpython-{version}.*"),
    ]
    for root, pattern in managed:
        installs = root.glob(f"{pattern}/bin/python{version}")
        yield from (str(path) for path in sorted(installs, key=_patch_order, reverse=True))


def find_bundle_python(version: str, environ: Mapping[str, str] = os.environ) -> list[str]:
    """The command of a CPython ``version`` interpreter on this machine, or a ``DeployError`` that
    says how to get one."""
    explicit = environ.get(BUNDLE_PYTHON_ENV)
    if explicit:
        found = interpreter_version(explicit)
        if found != version:
            what = f"Python {found}" if found else "not a CPython that runs"
            raise DeployError(f"{BUNDLE_PYTHON_ENV}={explicit} is {what}; the Lambda runtime is "
                              f"Python {version}, and only {version} can compile its bytecode")
        return [explicit]
    for candidate in _candidates(version, environ):
        if interpreter_version(candidate) == version:
            return [candidate]
    raise DeployError(
        f"no Python {version} on this machine to compile the Lambda bundle's bytecode (the Lambda "
        f"runtime is Python {version} and loads only bytecode of its own version; without it every "
        f"cold start compiles all sources, about twice the import time). Install Python {version} "
        f"(`pyenv install {version}`, `uv python install {version}` or your OS's package) or point "
        f"{BUNDLE_PYTHON_ENV} at one")


def compile_bytecode(python: Sequence[str], directory: Path) -> None:
    """Compile every source under ``directory`` to ``INVALIDATION_MODE`` bytecode with ``python``,
    naming files as they will be on Lambda (``/var/task/...``) so tracebacks read as deployed."""
    result = subprocess.run(
        [*python, "-I", "-m", "compileall", "-q", "-j", "0", "--invalidation-mode", INVALIDATION_MODE,
         "-s", os.fspath(directory), "-p", DEPLOYED_ROOT, os.fspath(directory)],
        capture_output=True, text=True)
    if result.returncode != 0:
        raise DeployError(f"could not compile the Lambda bundle's bytecode:\n{result.stdout}{result.stderr}")
