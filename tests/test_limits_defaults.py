"""One set of limits: the command line and the Makefile take their defaults from ``Limits``
rather than repeating them."""

from __future__ import annotations

import os
import subprocess

import pytest

from labkit import paths
from labkit.cli import build_parser
from labkit.sandbox.confine import Limits

DEFAULTS = Limits()


@pytest.mark.parametrize("command", ["grade", "audit"])
def test_the_command_lines_defaults_are_the_limits(command) -> None:
    args = build_parser().parse_args([command])
    assert args.timeout == DEFAULTS.notebook_seconds
    assert args.cell_timeout == DEFAULTS.cell_seconds
    if command == "grade":
        assert args.memory_mb << 20 == DEFAULTS.memory_bytes
        assert not args.unconfined and DEFAULTS.confine


def test_help_shows_the_limits_defaults(capsys) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["grade", "--help"])
    shown = " ".join(capsys.readouterr().out.split())
    assert f"seconds one notebook may run in all (default {DEFAULTS.notebook_seconds:g})" in shown
    assert f"seconds one cell may run (default {DEFAULTS.cell_seconds:g})" in shown
    assert f"in MB (default {DEFAULTS.memory_bytes >> 20})" in shown


def _make(*args: str) -> str:
    # Under `make test` this make is a sub-make: without MAKELEVEL and MAKEFLAGS it prints only
    # its own commands (no "Entering directory" lines).
    env = {k: v for k, v in os.environ.items() if k not in ("MAKELEVEL", "MAKEFLAGS", "MFLAGS")}
    return subprocess.run(["make", "--no-print-directory", *args], cwd=paths.ROOT,
                          capture_output=True, text=True, check=True, env=env).stdout


def test_make_grade_passes_a_timeout_only_when_given_and_help_shows_the_default() -> None:
    def grade_line(*args: str) -> str:
        return next(line for line in _make("-n", "grade", *args).splitlines()
                    if "-m labkit grade" in line)

    assert "--timeout" not in grade_line()
    assert "--timeout 30 " in grade_line("TIMEOUT=30") + " "
    assert (f"seconds one notebook may run in all (default {DEFAULTS.notebook_seconds:g})"
            in _make("help"))
