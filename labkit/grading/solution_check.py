"""Before a release is accepted, its solutions are graded the way students will be.

``otter assign`` already runs each master's tests on its solution, but in its own process, with the
seeds as written and the whole notebook at hand. The kit grades otherwise: a confined process
without the network or the grader's environment, hidden inputs drawn under a grading key, the
notebook's objects reached through handles. A solution that passes one and not the other would
give every student a question they cannot get right, and only ``make test`` would notice, after the
release. So the release grades each released solution through ``make grade``'s own command, under a
grading key, and refuses, naming the question, what does not earn full marks.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from labkit import paths
from labkit.course import autograders
from labkit.outputs import gradebook, results
from labkit.sandbox import confine

#: A grading key other than the seeds as written (otter assign's run used those): hidden inputs
#: are drawn as for a student. That marks do not move with the key is tested over many keys
#: (tests/test_key_independence.py).
KEYS = ("release-check",)
STUDENT = "solution"


@dataclass(frozen=True)
class Shortfall:
    """A question whose solution does not earn full marks through the kit's grading."""

    stem: str
    question: str
    earned: float
    possible: float
    why: str

    def __str__(self) -> str:
        return (f"{self.stem}/{self.question}: its solution earns {self.earned:g} of "
                f"{self.possible:g} points when graded as a student's notebook"
                + (f" ({self.why})" if self.why else ""))


def _why(out: Path, stem: str, question: str, notes: str) -> str:
    record = results.read_assignment(out / "results" / STUDENT, stem) or {}
    failed = [case.message for case in record.get("cases", [])
              if case.question == question and not case.passed and case.message]
    return (failed[0] if failed else notes).splitlines()[0][:300] if (failed or notes) else ""


def check_solutions(stems: list[str], workers: int | None = None) -> list[Shortfall]:
    """Grade the released solutions of ``stems`` (of one lab) as one student's notebooks."""
    if not stems:
        return []
    lab = paths.lab_of(stems[0])
    assignments = [a for a in autograders.load_all(lab) if a.stem in stems]
    found: dict[tuple[str, str], Shortfall] = {}
    with tempfile.TemporaryDirectory(prefix="labkit-release-check-") as tmp:
        submissions = Path(tmp) / "submissions"
        (submissions / STUDENT).mkdir(parents=True)
        for stem in stems:
            shutil.copy(paths.solution_notebook(stem), submissions / STUDENT / f"{stem}.ipynb")
        for key in KEYS:
            out = Path(tmp) / key
            # The solutions are the course's own code: where this machine cannot confine a
            # notebook, they are graded unconfined rather than not at all.
            unconfined = ["--unconfined"] if confine.probe() is not None else []
            done = subprocess.run(
                [sys.executable, "-m", "labkit", "grade", "--lab", lab, "--submissions",
                 str(submissions), "--out", str(out), *unconfined,
                 "--workers", str(workers or min(2, os.cpu_count() or 1))],
                env={**os.environ, "LABKIT_GRADING_SECRET": key}, cwd=paths.ROOT,
                capture_output=True, text=True)
            if done.returncode != 0:
                raise RuntimeError(f"grading the solutions failed:\n{done.stderr[-3000:]}")
            (row,) = [r for r in gradebook.read_csv(out / "grades.csv") if r["student"] == STUDENT]
            for assignment in assignments:
                for question in assignment.graded:
                    earned = float(row.get(question.column) or 0)
                    if earned < question.points and (assignment.stem, question.name) not in found:
                        found[(assignment.stem, question.name)] = Shortfall(
                            assignment.stem, question.name, earned, question.points,
                            _why(out, assignment.stem, question.name, row.get("notes", "")))
    return list(found.values())
