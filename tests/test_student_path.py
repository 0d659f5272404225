"""The student's path, for real: fill in the released notebook, run it through its export cell,
and grade the exported file with `make grade`'s engine."""

from __future__ import annotations

import csv
import shutil

import nbformat
import pytest

from labkit import notebooks, paths
from labkit.grade import autograders, batch

pytestmark = pytest.mark.slow

STEM = "1_1_linear_regression"
SIGN_ERROR = ("return X.T @ (X @ theta - y)", "return X.T @ (y - X @ theta)")


def _filled_in(student: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """The student notebook with each `...` scaffold replaced by the reference answer."""
    def key(source: str) -> str:  # "def f(x):" or the name an assignment sets
        first = source.splitlines()[0]
        return first if first.startswith("def ") else first.split("=")[0].strip()

    solution = nbformat.read(paths.solution_notebook(STEM), 4)
    answers = {key(c.source): c.source for c in solution.cells
               if c.cell_type == "code" and c.source.strip()}
    filled = 0
    for cell in student.cells:
        if cell.cell_type == "code" and "..." in cell.source:
            cell.source = answers[key(cell.source)]
            filled += 1
    assert filled >= 6
    return student


def _run_and_export(nb: nbformat.NotebookNode, folder) -> tuple[nbformat.NotebookNode, object]:
    folder.mkdir()
    path = folder / f"{STEM}.ipynb"
    nbformat.write(nb, path)  # export zips the saved file, as a student's save would
    executed = notebooks.execute(nbformat.read(path, 4), folder, timeout=600)
    (exported,) = folder.glob(f"{STEM}_*.zip")
    return executed, exported


def _check_output(nb: nbformat.NotebookNode, question: str) -> str:
    (cell,) = [c for c in nb.cells if c.cell_type == "code" and f'grader.check("{question}")' in c.source]
    return "".join(str(o.get("text", "")) + str(o.get("data", {}).get("text/plain", ""))
                   for o in cell.outputs)


def test_export_round_trip_full_marks_and_a_flagged_mistake(tmp_path):
    student = nbformat.read(paths.student_notebook(STEM), 4)
    right, right_zip = _run_and_export(_filled_in(student), tmp_path / "right")
    assert "hidden tests" in _check_output(right, "pinv_svd")  # passing is not called a grade

    wrong_nb = _filled_in(nbformat.read(paths.student_notebook(STEM), 4))
    (cell,) = [c for c in wrong_nb.cells if SIGN_ERROR[0] in c.source]
    cell.source = cell.source.replace(*SIGN_ERROR)
    wrong, wrong_zip = _run_and_export(wrong_nb, tmp_path / "wrong")
    flagged = _check_output(wrong, "linear_regression_loss_grad")
    assert "Test case failed" in flagged and "Check the sign" in flagged

    submissions = tmp_path / "submissions"
    (submissions / "ada").mkdir(parents=True)
    shutil.copy(right_zip, submissions / "ada")
    shutil.copy(wrong_zip, submissions / "bob.zip")
    out = tmp_path / "out"
    batch.grade_class(submissions, out, workers=2)
    with open(out / "grades.csv", newline="") as f:
        rows = {row["student"]: row for row in csv.DictReader(f)}
    (assignment,) = [a for a in autograders.load_all() if a.stem == STEM]
    for question, points in assignment.questions:
        assert float(rows["ada"][f"{STEM}/{question}"]) == points, question
    assert float(rows["bob"][f"{STEM}/linear_regression_loss_grad"]) < dict(
        assignment.questions)["linear_regression_loss_grad"]
    assert float(rows["bob"][f"{STEM}/pinv_svd"]) == dict(assignment.questions)["pinv_svd"]
