"""Shared fixtures: the released assignments, their test files, and one graded demo class."""

from __future__ import annotations

import hashlib
import shutil
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from labkit import paths
from labkit.course import autograders, labs
from labkit.grading import classrun

#: The lab whose answer banks these fixtures grade function by function (Lab 2's banks replace
#: whole classes and have tests of their own: tests/test_lab2_content.py).
LAB = "lab1"
RELEASED = paths.assignment_stems(LAB)

# Checks run in the tests' own process as they run in a grading worker: on one thread. Budgets are
# CPU time, which threads that spin between parallel operations would inflate.
torch.set_num_threads(1)


def answer_bank(stem: str) -> dict:
    """An assignment's answer bank (``assignments/<lab>/<stem>/answers.py``)."""
    return labs.assignment(stem).answer_bank()


def answer_variants(stem: str) -> tuple[dict, dict]:
    """(WRONG, CORRECT) answer variants of an assignment, from its answer bank."""
    bank = answer_bank(stem)
    return bank["WRONG"], bank["CORRECT"]


def released_test_source(stem: str, question: str) -> str:
    with zipfile.ZipFile(paths.autograder_zip(stem)) as archive:
        return archive.read(f"tests/{question}.py").decode("utf-8")


@dataclass
class ReleasedRun:
    """One answer graded by the released tests of its question, case by case, as the grader
    grades a notebook (``labkit.grading.outcomes``)."""
    test_file: object  # otter's ExceptionTestFile: the cases, as otter parsed them
    score: float
    outcomes: list

    @property
    def possible(self) -> float:
        return float(self.test_file.possible)

    @property
    def failed(self) -> list:
        """The outcomes of the cases that failed, in order."""
        return [outcome for outcome in self.outcomes if not outcome.passed]

    @property
    def messages(self) -> str:
        """What a student is shown for the failed cases, one after another."""
        return "\n".join(outcome.message for outcome in self.failed)


def run_released_tests(stem: str, question: str, source: str, folder: Path,
                       key: bytes | None = None) -> ReleasedRun:
    """Run one answer's source with the released tests of its question (the autograder zip's own
    file, each case run and judged by the grader's own runner) under ``key``."""
    import math

    import torch.nn.functional as F
    from otter.test_files import ExceptionTestFile

    from labkit.checks import core
    from labkit.grading import outcomes

    test_file = folder / f"{stem}-{question}.py"
    if not test_file.exists():
        test_file.write_text(released_test_source(stem, question))
    tests = ExceptionTestFile.from_file(str(test_file))
    env = {"torch": torch, "math": math, "F": F}
    exec(compile(source, f"<{question} answer>", "exec"), env)
    with core.keyed(key):
        score, graded = outcomes.run_question(tests, env)
    return ReleasedRun(tests, score, graded)


def grade_source(stem: str, question: str, source: str, folder: Path,
                 key: bytes | None = None) -> tuple[float, float, list[str]]:
    """Grade one answer's source with the released tests of its question: (score, possible, what
    the feedback page shows for each failed test, as the grader keeps it)."""
    run = run_released_tests(stem, question, source, folder, key)
    return run.score, run.possible, [outcome.message for outcome in run.failed]


def tree_digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@dataclass
class GradedClass:
    submissions: Path
    out: Path
    digest_before: dict[str, str]


@pytest.fixture(scope="session")
def graded_demo(tmp_path_factory) -> GradedClass:
    """The demo class graded once through the real path (released zips, real kernels)."""
    submissions = tmp_path_factory.mktemp("demo") / "submissions"
    shutil.copytree(paths.demo_submissions(LAB), submissions)
    before = tree_digest(submissions)
    out = tmp_path_factory.mktemp("grades")
    # A short cell limit: the demo's hanging student would otherwise cost the default minute.
    classrun.grade_class(submissions, out, workers=2, limits=classrun.Limits(cell_seconds=15))
    return GradedClass(submissions, out, before)


@pytest.fixture(scope="session")
def assignments() -> list[autograders.Assignment]:
    return autograders.load_all(LAB)
