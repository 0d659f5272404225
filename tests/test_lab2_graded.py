"""Lab 2 graded end to end, as a TA grades it: `make grade LAB=lab2` on its demo class, a student's
exported zip of a filled-in notebook, and the released autograder zips under plain `otter run`.

The lab is content only (``assignments/lab2/``): released by `make release` like any lab, graded
through the same confined path, its questions read from the manifests of its release.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from labkit import paths
from labkit.course import autograders, labs

from .test_student_path import _execute_exporting, _export_output, _filled_in

pytestmark = pytest.mark.slow

LAB = "lab2"
STEMS = paths.assignment_stems(LAB)


def _rows(out: Path) -> dict[str, dict[str, str]]:
    with open(out / "grades.csv", newline="") as handle:
        return {row["student"]: row for row in csv.DictReader(handle)}


def _grade(submissions: Path, out: Path) -> subprocess.CompletedProcess:
    environment = {**os.environ, "LABKIT_GRADING_SECRET": "lab2-graded"}
    return subprocess.run(
        [sys.executable, "-m", "labkit", "grade", "--lab", LAB, "--submissions", str(submissions),
         "--out", str(out), "--workers", "2"],
        cwd=paths.ROOT, env=environment, capture_output=True, text=True, timeout=1200)


@pytest.fixture(scope="module")
def graded_class(tmp_path_factory) -> Path:
    """The lab's demo class, graded with the lab named, as `make grade LAB=lab2` does."""
    out = tmp_path_factory.mktemp("lab2") / "out"
    done = _grade(paths.demo_submissions(LAB), out)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "graded 5 submissions" in done.stdout, done.stdout
    return out


def test_the_lab_is_released_with_its_three_assignments():
    assert STEMS == ["2_1_forward_mode", "2_2_reverse_mode", "2_3_pytorch_autograd"]
    assert [a.stem for a in autograders.load_released(LAB)] == STEMS


def test_the_perfect_student_gets_full_marks_and_the_blank_one_zero(graded_class):
    rows = _rows(graded_class)
    assignments = autograders.load_released(LAB)
    for assignment in assignments:
        for question in assignment.graded:
            column = question.column
            assert float(rows["perfect"][column]) == question.points, (column, rows["perfect"])
            assert float(rows["blank"][column]) == 0, column
    assert rows["perfect"]["notes"] == ""
    assert float(rows["perfect"]["total"]) == sum(a.max_points for a in assignments)
    assert float(rows["blank"]["total"]) == 0


def test_the_gradebook_holds_this_labs_questions_only(graded_class):
    with open(graded_class / "grades.csv", newline="") as handle:
        header = next(csv.reader(handle))
    expected = [q.column for a in autograders.load_released(LAB) for q in a.columns]
    assert header == ["student", *expected, "total", "notes"]
    assert not any(column.startswith("1_") for column in header)


def test_typical_mistakes_lose_points_in_their_assignments(graded_class):
    rows = _rows(graded_class)
    for assignment in autograders.load_released(LAB):
        mistakes = labs.assignment(assignment.stem).demo_mistakes
        lost = [q.name for q in assignment.graded
                if float(rows["typical_mistakes"][q.column]) < q.points]
        assert bool(lost) == bool(mistakes), (assignment.stem, lost)


def test_the_hanging_and_the_broken_notebooks_get_rows_with_notes(graded_class):
    rows = _rows(graded_class)
    first = autograders.load_released(LAB)[0]
    hanging = rows["hanging"]
    assert "it was interrupted there and the notebook went on" in hanging["notes"], hanging
    assert all(hanging[q.column] == rows["perfect"][q.column] for q in first.graded), hanging
    assert "not a readable notebook" in rows["broken"]["notes"]
    assert float(rows["broken"]["total"]) == 0


def test_another_labs_notebooks_in_a_students_folder_get_no_note(tmp_path):
    """A student who keeps the whole course in one folder: Lab 1's notebooks are not this
    grading's business, and say nothing on the Lab 2 row."""
    submissions = tmp_path / "submissions"
    student = submissions / "ada"
    student.mkdir(parents=True)
    first = paths.assignment_stems(LAB)[0]
    shutil.copy(paths.solution_notebook(first), student / f"{first}.ipynb")
    other = paths.assignment_stems(paths.default_lab())[0]
    shutil.copy(paths.student_notebook(other), student / f"{other}.ipynb")
    out = tmp_path / "out"
    done = _grade(submissions, out)
    assert done.returncode == 0, done.stderr[-3000:]
    row = _rows(out)["ada"]
    notes = row["notes"]
    assert other not in notes and "this lab" not in notes, notes
    (assignment,) = [a for a in autograders.load_released(LAB) if a.stem == first]
    assert all(float(row[q.column]) == q.points for q in assignment.graded), row


def test_an_exported_filled_in_notebook_grades_full_marks(tmp_path):
    stem = "2_2_reverse_mode"
    folder = tmp_path / "export"
    folder.mkdir()
    path = folder / f"{stem}.ipynb"
    nbformat.write(_filled_in(nbformat.read(paths.student_notebook(stem), 4), stem), path)
    executed = _execute_exporting(path, folder)
    exported = _export_output(executed)
    assert "every public check passing" in exported, exported
    submissions = tmp_path / "submissions"
    (submissions / "ada").mkdir(parents=True)
    shutil.copy(folder / f"{stem}-submission.zip", submissions / "ada")
    out = tmp_path / "out"
    done = _grade(submissions, out)
    assert done.returncode == 0, done.stderr[-3000:]
    row = _rows(out)["ada"]
    (assignment,) = [a for a in autograders.load_released(LAB) if a.stem == stem]
    assert all(float(row[q.column]) == q.points for q in assignment.graded), row


@pytest.mark.parametrize("stem", STEMS)
def test_plain_otter_run_gives_the_released_solution_full_marks(stem, tmp_path):
    """The autograder zip as released, graded by otter itself (as on Gradescope, without the kit)."""
    out = tmp_path / "out"
    out.mkdir()
    result = subprocess.run(
        [sys.executable, "-m", "otter", "run", "-a", str(paths.autograder_zip(stem)), "-o",
         str(out), str(paths.solution_notebook(stem))],
        capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    graded = json.loads((out / "results.json").read_text())
    scored = [t for t in graded["tests"] if "score" in t]
    lost = [(t["name"], t.get("output", "")[:300]) for t in scored if t["score"] != t["max_score"]]
    assert scored and not lost, lost
