"""``make export LMS=canvas|moodle ROSTER=roster.csv``: a graded OUT becomes the CSV file that
Canvas's or Moodle's gradebook import reads, in the column layout each documents (see
``labkit.outputs.lms``), mapping students through a roster; roster students without a submission
get an empty grade, and submissions no roster line names are listed, never dropped silently.

OUT is written by the kit's own gradebook writers from the released autograders (no notebook
needs to run for this); the command runs through the real Makefile."""

from __future__ import annotations

import csv
import subprocess
from pathlib import Path

import pytest

from labkit import paths
from labkit.course import autograders
from labkit.outputs import gradebook, lms

from .conftest import LAB

LINEAR, LOGISTIC, SOFTMAX = ("1_1_linear_regression", "1_2_logistic_regression",
                             "1_3_softmax_regression")
ASSIGNMENTS = [LINEAR, LOGISTIC, SOFTMAX]
PYTHON = paths.ROOT / ".venv" / "bin" / "python"


def _worth(stem: str, question: str | None = None) -> float:
    """Points of one question of an assignment, or of all its questions."""
    (assignment,) = [a for a in autograders.load_all(LAB) if a.stem == stem]
    return sum(q.points for q in assignment.columns if question in (None, q.name))


#: Each assignment's points, and ada's: everything but her unscored 1.1 observations, and 1.5 of
#: her 1.2 written answer (as ``out`` grades her).
POSSIBLE = [f"{_worth(stem):g}" for stem in (LINEAR, LOGISTIC, SOFTMAX)]
ADA = [f"{_worth(LINEAR) - _worth(LINEAR, 'learning_rate_observations'):g}",
       f"{_worth(LOGISTIC) - _worth(LOGISTIC, 'training_observations') + 1.5:g}",
       f"{_worth(SOFTMAX):g}"]


@pytest.fixture(scope="module")
def out(tmp_path_factory) -> Path:
    """A graded class: ada did everything (one written answer not scored yet), bo one function,
    cy is graded but in no roster."""
    assignments = autograders.load_all(LAB)
    full = {f"{a.stem}/{q.name}": q.points for a in assignments for q in a.columns
            if not q.written}
    rows = [gradebook.StudentRow("ada", dict(full)),
            gradebook.StudentRow("bo", {f"{LINEAR}/pinv_svd": 5.0},
                                 ["1_2_logistic_regression: no notebook submitted"]),
            gradebook.StudentRow("cy", {f"{SOFTMAX}/softmax_regression_loss": 5.0})]
    scores = {"ada": {f"{LINEAR}/gradient_derivation": 2.0,
                      f"{LOGISTIC}/training_observations": 1.5},
              "bo": {f"{LINEAR}/gradient_derivation": 0.0,
                     f"{LINEAR}/learning_rate_observations": 0.0,
                     f"{LOGISTIC}/training_observations": 0.0}}
    folder = tmp_path_factory.mktemp("out")
    gradebook.write_grades(folder / "grades.csv", assignments, rows, scores)
    gradebook.write_questions(folder / "questions.csv", assignments)
    return folder


def _write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


def _rows(path: Path) -> list[list[str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.reader(handle))


def _make(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["make", "--no-print-directory", *args], cwd=paths.ROOT,
                          capture_output=True, text=True, timeout=300)


def test_canvas_file_has_canvas_columns_points_possible_and_a_row_per_roster_student(
        out, tmp_path) -> None:
    # Canvas's own gradebook export (its Points Possible line and an assignment's column too),
    # with a submission column added.
    roster = _write(tmp_path / "roster.csv",
                    "Student,ID,SIS User ID,SIS Login ID,Section,Lab 0 (77),submission\n"
                    "    Points Possible,,,,,10,\n"
                    "\"Lovelace, Ada\",101,S1,ada@uni.edu,Lab A,9,ada\n"
                    "\"Bo, Bo\",102,S2,bo@uni.edu,Lab A,8,bo\n"
                    "\"Dee, Dee\",103,S3,dee@uni.edu,Lab B,,dee\n")
    done = _make("export", "LMS=canvas", f"ROSTER={roster}", f"OUT={out}")
    assert done.returncode == 0, done.stderr
    rows = _rows(out / "canvas_import.csv")
    assert rows[0] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", *ASSIGNMENTS]
    assert rows[1] == ["Points Possible", "", "", "", "", *POSSIBLE]
    assert rows[2] == ["Lovelace, Ada", "101", "S1", "ada@uni.edu", "Lab A", *ADA]
    assert rows[3] == ["Bo, Bo", "102", "S2", "bo@uni.edu", "Lab A", "5", "0", "0"]
    assert rows[4] == ["Dee, Dee", "103", "S3", "dee@uni.edu", "Lab B", "", "", ""]  # no submission
    assert len(rows) == 5
    summary = done.stdout
    assert "roster line 2" not in summary  # the Points Possible line is no student
    assert "3 roster students, 2 with grades, 1 without a graded submission (empty grade)" in summary
    assert "1 student(s) have written answers not scored yet" in summary  # ada's observations
    assert "1 graded submission(s) match no roster line" in summary and summary.rstrip().endswith("cy")
    assert (out / "canvas_unmatched.txt").read_text("utf-8") == "cy\n"


def test_moodle_file_identifies_students_by_email_from_a_spreadsheet_roster(out, tmp_path) -> None:
    # Saved by a spreadsheet: ";" separators, a BOM, CRLF; Moodle's export names; a stray space.
    roster = _write(tmp_path / "roster.csv",
                    "\ufeffFirst name;Last name;ID number;Email address;Submission\r\n"
                    "Ada;Lovelace;A1;ada@uni.edu; ada \r\n"
                    "Bo;Bo;;bo@uni.edu;bo\r\n"
                    "Cy;Cy;C3;cy@uni.edu;cy\r\n"
                    "Eve;Late;E5;eve@uni.edu;\r\n")
    result = lms.export(out, "moodle", roster)
    assert result.path == out / "moodle_import.csv"
    rows = _rows(result.path)
    assert rows[0] == ["First name", "Last name", "ID number", "Email address", *ASSIGNMENTS]
    assert rows[1:] == [["Ada", "Lovelace", "A1", "ada@uni.edu", *ADA],
                        ["Bo", "Bo", "", "bo@uni.edu", "5", "0", "0"],
                        ["Cy", "Cy", "C3", "cy@uni.edu", "0", "0", "5"],
                        ["Eve", "Late", "E5", "eve@uni.edu", "", "", ""]]
    assert result.unmatched == [] and not (out / "moodle_unmatched.txt").exists()
    assert result.without_submission == ["line 5"]


def test_roster_problems_are_said_and_no_line_is_lost(out, tmp_path) -> None:
    roster = _write(tmp_path / "roster.csv",
                    "submission,name,id\n"
                    "ada,Ada,101\n"
                    "ada,Ada again,109\n"   # the same submission twice: the second gets nothing
                    "bo,Bo,\n")             # no id: Canvas could not find the student
    result = lms.export(out, "canvas", roster)
    rows = _rows(result.path)
    assert [r[:2] for r in rows[2:]] == [["Ada", "101"], ["Ada again", "109"]]
    assert rows[3][5:] == ["", "", ""]
    assert any("submission 'ada' is also on line 2" in p for p in result.problems)
    assert any("roster line 4: no ID or SIS User ID or SIS Login ID; skipped" in p
               for p in result.problems)
    assert result.unmatched == ["bo", "cy"]
    assert "bo, cy" in result.summary()


def test_an_unusable_roster_or_an_ungraded_out_fails_in_one_sentence(out, tmp_path) -> None:
    no_column = _write(tmp_path / "names.csv", "name,email\nAda,ada@uni.edu\n")
    done = subprocess.run([str(PYTHON), "-m", "labkit", "export", "--lms", "moodle",
                           "--roster", str(no_column), "--out", str(out)],
                          capture_output=True, text=True, cwd=paths.ROOT, timeout=120)
    assert done.returncode == 1
    assert done.stderr.startswith("export failed: the roster") and "'submission' column" in done.stderr
    assert "Traceback" not in done.stderr
    no_email = _write(tmp_path / "ids.csv", "submission,ID\nada,101\n")
    with pytest.raises(lms.ExportError, match="no Email address column"):
        lms.export(out, "moodle", no_email)
    with pytest.raises(lms.ExportError, match="run make grade first"):
        lms.export(tmp_path / "empty", "canvas", no_email)
    with pytest.raises(lms.ExportError, match="cannot read the roster"):
        lms.export(out, "canvas", tmp_path / "absent.csv")
    usage = _make("export", f"OUT={out}")
    assert usage.returncode != 0 and "usage: make export LMS=canvas|moodle ROSTER=roster.csv" in usage.stdout
