"""No mark depends on how busy the machine is: every variant of the answer banks gets exactly the
same points per hidden test on a machine whose every core runs at least BUSY_PER_CORE other
busy processes as on a quiet one.

Budgets are CPU time (the kernel's count, not the clock on the wall), a too-slow verdict rests on
CPU time actually spent, and the reference each budget scales is measured anew under the load (as
a grading worker started on a busy server measures it): a point that load alone could move fails
here. Both runs are in this test, one after the other, under the same key.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from labkit.checks import core

from . import marks

#: Busy processes per core while the banks are graded a second time: a machine with four busy
#: processes per core gives each process about a fifth of a core.
BUSY_PER_CORE = 4
KEY = b"load test key"
#: A spinner: pure CPU, no memory, no output; it runs until this test kills it.
_SPIN = "while True:\n    pass\n"


def _cores() -> int:
    return len(os.sched_getaffinity(0))


@contextmanager
def busy_cores(per_core: int) -> Iterator[list[subprocess.Popen]]:
    """``per_core`` CPU spinners per core of this process, in this test's own process group,
    ended (by their own ids) when the block ends, whatever happens in it."""
    spinners: list[subprocess.Popen] = []
    try:
        for _ in range(per_core * _cores()):
            spinners.append(subprocess.Popen([sys.executable, "-c", _SPIN],
                                             stdin=subprocess.DEVNULL))
        time.sleep(0.5)  # every spinner running before the grading starts
        yield spinners
    finally:
        for spinner in spinners:
            spinner.kill()
        for spinner in spinners:
            spinner.wait()


def _grade(variants: list[marks.Variant], folder: Path) -> dict[marks.Variant, marks.Marks]:
    core._reference_seconds.clear()  # measured again under this run's conditions
    return {v: marks.grade(v, KEY, folder) for v in variants}


def test_busy_machine_gives_the_marks_of_a_quiet_one():
    variants = marks.bank()
    with tempfile.TemporaryDirectory() as folder:
        quiet = _grade(variants, Path(folder))
        with busy_cores(BUSY_PER_CORE) as spinners:
            busy = _grade(variants, Path(folder))
            assert all(s.poll() is None for s in spinners), "a spinner ended during the run"
    differences = [f"{v.label}: quiet {marks.describe(quiet[v])}, busy {marks.describe(busy[v])}"
                   for v in variants if busy[v] != quiet[v]]
    assert not differences, "marks that depend on the machine's load:\n" + "\n".join(differences)
