"""What the CLI prints when its output is read by a script or a person: tables keep whole names
when piped, and help texts keep the config sections they name."""

from __future__ import annotations

import subprocess
import sys

from typer.testing import CliRunner

from tests.support import ROOT
from tierup.cli import app

LONG_SCOPE = "route:" + "a-rather-long-route-name-" * 4


def test_piped_tables_keep_whole_names():
    script = ("from rich.table import Table; from tierup.commands.common import console; "
              "table = Table('scope', 'spent', 'cap', 'projected'); "
              f"table.add_row({LONG_SCOPE!r}, '1.00', '2.00', '3.00'); "
              "console.print(table)")
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60,
                            env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr
    assert any(LONG_SCOPE in line and "3.00" in line for line in result.stdout.splitlines()), result.stdout


def test_help_texts_keep_the_config_sections_they_name():
    runner = CliRunner()
    create = runner.invoke(app, ["keys", "create", "--help"], terminal_width=200)
    assert create.exit_code == 0 and "plan name from [plans]" in create.output
    revoke = runner.invoke(app, ["keys", "revoke", "--help"], terminal_width=200)
    assert revoke.exit_code == 0 and "[gateway] key-cache-s" in revoke.output
