"""Feedback a student can act on, through the real grading path (real notebooks, real kernels):
a crashed cell is named with its error, a deleted function is named as missing, and grading one
file twice under the same secret gives the same result."""

from __future__ import annotations

import csv
import json

import nbformat
import pytest

from labkit import paths
from labkit.grade import batch, feedback, secret

STEM = "1_1_linear_regression"


def _solution() -> nbformat.NotebookNode:
    return nbformat.read(paths.solution_notebook(STEM), 4)


def _after(nb: nbformat.NotebookNode, text: str, source: str) -> int:
    """Insert a code cell after the cell holding ``text``; return its code-cell number (from 1)."""
    index = next(i for i, c in enumerate(nb.cells) if text in c.source)
    nb.cells.insert(index + 1, nbformat.v4.new_code_cell(source))
    return sum(1 for c in nb.cells[: index + 2] if c.cell_type == "code")


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    submissions = tmp_path_factory.mktemp("feedback") / "submissions"
    crashing = _solution()
    cell = _after(crashing, "X_inv_svd = pinv_svd(X)", "ratio = 1 / 0")
    missing = _solution()
    _after(missing, "def as_column(", "del as_column")
    for name, nb in (("crashes", crashing), ("no_as_column", missing)):
        (submissions / name).mkdir(parents=True)
        nbformat.write(nb, submissions / name / f"{STEM}.ipynb")
    outs = []
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(secret.ENVIRONMENT_VARIABLE, "a class secret for this test")
        for run in ("first", "second"):
            out = tmp_path_factory.mktemp(run)
            batch.grade_class(submissions, out, workers=2, limits=batch.Limits(cell_seconds=15))
            outs.append(out)
    return outs, cell


def _rows(out) -> dict[str, dict[str, str]]:
    with open(out / "grades.csv", newline="", encoding="utf-8") as handle:
        return {row["student"]: row for row in csv.DictReader(handle)}


def _page(out, student: str) -> str:
    names = dict(zip(["crashes", "no_as_column"], feedback.page_names(["crashes", "no_as_column"])))
    return (out / "feedback" / names[student]).read_text("utf-8")


def test_a_crashed_cell_is_named_with_its_error_in_notes_and_feedback(graded):
    (out, _), cell = graded
    note = f"code cell {cell} raised an error: ZeroDivisionError: division by zero"
    assert note in _rows(out)["crashes"]["notes"]
    assert note in _page(out, "crashes")


def test_a_deleted_function_is_reported_missing_by_name(graded):
    (out, _), _ = graded
    page = _page(out, "no_as_column")
    assert "no function named <code>as_column</code> in your notebook" in page
    body = page.split("<body>", 1)[1]
    assert "NoneType" not in body and "meta" not in body


def test_grading_the_same_files_twice_gives_the_same_results(graded):
    (first, second), _ = graded
    assert _rows(first) == _rows(second)
    for student in ("crashes", "no_as_column"):
        a = json.loads((first / "results" / student / f"{STEM}.json").read_text())
        b = json.loads((second / "results" / student / f"{STEM}.json").read_text())
        assert a["cases"] == b["cases"]


def test_the_secret_comes_from_the_environment_or_a_file_made_once(tmp_path, monkeypatch):
    monkeypatch.delenv(secret.ENVIRONMENT_VARIABLE, raising=False)
    path = tmp_path / ".grading-secret"
    made = secret.grading_secret(path)
    assert len(made) == secret.SECRET_BYTES and secret.grading_secret(path) == made
    assert path.stat().st_mode & 0o077 == 0
    monkeypatch.setenv(secret.ENVIRONMENT_VARIABLE, "shared")
    assert secret.grading_secret(path) == b"shared"
    assert secret.notebook_key(b"nb", b"shared") != secret.notebook_key(b"nb2", b"shared")
