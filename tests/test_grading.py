"""`make grade` through the real path: released zips, confined notebook processes, real code."""

from __future__ import annotations

import csv

import nbformat
import pytest

from labkit import notebooks
from labkit.course import labs
from labkit.course.demo import HANGING_CELL

from .conftest import tree_digest

pytestmark = pytest.mark.slow


def _rows(graded) -> dict[str, dict[str, str]]:
    with open(graded.out / "grades.csv", newline="") as f:
        return {row["student"]: row for row in csv.DictReader(f)}


def test_solution_notebooks_get_full_marks(graded_demo, assignments):
    perfect = _rows(graded_demo)["perfect"]
    for assignment in assignments:
        for question in assignment.graded:
            assert float(perfect[f"{assignment.stem}/{question.name}"]) == question.points, question
    assert float(perfect["total"]) == sum(a.max_points for a in assignments)
    assert perfect["notes"] == ""


def test_untouched_student_notebooks_get_zero_and_a_row(graded_demo, assignments):
    blank = _rows(graded_demo)["blank"]
    for assignment in assignments:
        for question in assignment.graded:
            assert float(blank[f"{assignment.stem}/{question.name}"]) == 0, question
    assert float(blank["total"]) == 0


def test_a_placeholder_left_in_is_named_as_such(graded_demo):
    # The blank notebook's `theta = ...`: the page says the placeholder is still there, not the
    # name of a class of the grader's.
    page = next((graded_demo.out / "feedback").glob("blank*.html")).read_text("utf-8")
    assert "<code>theta</code> is <code>...</code>, the placeholder (write the answer in its " \
           "place); expected a torch.Tensor." in page
    assert "Remote" not in page and "Opaque" not in page


def test_typical_mistakes_lose_points_where_they_are(graded_demo, assignments):
    rows = _rows(graded_demo)
    mistakes, perfect = rows["typical_mistakes"], rows["perfect"]
    assert float(mistakes["total"]) < float(perfect["total"])
    for assignment in assignments:
        if labs.assignment(assignment.stem).demo_mistakes:
            lost = [q.name for q in assignment.graded
                    if float(mistakes[f"{assignment.stem}/{q.name}"]) < q.points]
            assert lost, f"{assignment.stem}: the typical mistakes lost no points"


def test_gradebook_columns_and_questions_file(graded_demo, assignments):
    with open(graded_demo.out / "grades.csv", newline="") as f:
        header = next(csv.reader(f))
    # Per assignment: the autograded questions, then the written ones (graded by hand).
    expected = [f"{a.stem}/{q.name}" for a in assignments for q in [*a.graded, *a.written]]
    assert header == ["student", *expected, "total", "notes"]
    assert any(a.written for a in assignments)
    with open(graded_demo.out / "questions.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [(r["assignment"], r["question"], float(r["points"]), r["manual"]) for r in rows] == [
        (a.stem, q, p, manual) for a in assignments
        for q, p, manual in [*((q.name, q.points, "false") for q in a.graded),
                             *((q.name, q.points, "true") for q in a.written)]]
    # No score recorded yet: written questions are empty (not graded), and count 0 in the total.
    perfect = _rows(graded_demo)["perfect"]
    for a in assignments:
        for q in a.written:
            assert perfect[f"{a.stem}/{q.name}"] == ""


def test_demo_submissions_are_left_untouched(graded_demo):
    assert tree_digest(graded_demo.submissions) == graded_demo.digest_before


def test_demo_shows_a_hanging_notebook_and_a_broken_file(graded_demo, assignments):
    rows = _rows(graded_demo)
    hanging, perfect = rows["hanging"], rows["perfect"]
    first = assignments[0]
    for question in first.graded:
        column = f"{first.stem}/{question.name}"
        assert hanging[column] == perfect[column], column
    nb = nbformat.read(graded_demo.submissions / "hanging" / f"{first.stem}.ipynb", 4)
    code = [c.source for c in nb.cells if c.cell_type == "code"]
    path = graded_demo.submissions / "hanging" / f"{first.stem}.ipynb"
    name = notebooks.code_cell_names(path.read_bytes())[code.index(HANGING_CELL)]
    assert name.startswith("the cell under ")  # by its heading and first line, as Jupyter shows it
    assert (f"{name} ran longer than 15 s; it was interrupted there and the notebook "
            "went on") in hanging["notes"]
    assert "not a readable notebook" in rows["broken"]["notes"]
    assert float(rows["broken"]["total"]) == 0
