"""A small class graded for real: one count of "submissions with problems", and "—" for written
questions nobody scored."""

from __future__ import annotations

import csv
import re
import shutil
from pathlib import Path

import pytest

from labkit import paths
from labkit.grade import batch, feedback

pytestmark = pytest.mark.slow

CHROMIUM = Path("/usr/bin/chromium")
LINEAR, LOGISTIC = "1_1_linear_regression", "1_2_logistic_regression"
TRAINING = f"{LOGISTIC}/training_observations"
DERIVATION = f"{LINEAR}/gradient_derivation"
COMMENT = 'Clear, but say why the weights grow: "separable" data.'
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def graded(tmp_path_factory) -> tuple[Path, Path, str]:
    root = tmp_path_factory.mktemp("class")
    submissions, out = root / "submissions", root / "out"
    submissions.mkdir()
    shutil.copy(paths.solution_notebook(LOGISTIC), submissions / "ada.ipynb")
    shutil.copy(paths.student_notebook(LOGISTIC), submissions / "bo.ipynb")
    summary = batch.grade_class(submissions, out, workers=2)
    return submissions, out, summary


def test_summary_and_report_count_the_same_submissions_with_problems(graded) -> None:
    _, out, summary = graded
    counted = int(re.search(r"(\d+) with problems", summary).group(1))
    report = (out / "report.html").read_text("utf-8")
    shown = int(re.search(r"<strong>(\d+)</strong>with problems", report).group(1))
    assert counted == shown == 2  # each handed in one notebook of three


def test_written_questions_nobody_scored_show_a_dash_in_the_report(graded) -> None:
    report = (graded[1] / "report.html").read_text("utf-8")
    (row,) = [r for r in report.split("<tr>") if "training_observations" in r]
    assert "(0 of 2 graded)" in row and row.count("&mdash;") == 3
    assert "0.00" not in row and "0 of 0" not in row
