"""Grades for the course's learning management system: ``make export LMS=canvas|moodle
ROSTER=roster.csv`` turns a graded OUT into the CSV file that Canvas's or Moodle's gradebook
imports, so the teaching team does not convert ``grades.csv`` by hand.

Submissions are named by their entry in SUBMISSIONS; the LMS knows students by its own ids. The
roster maps one to the other: a CSV file (",", ";" or tab) with a ``submission`` column (the name
in ``grades.csv``) and the LMS's identity columns, spelled as the LMS's own gradebook export spells
them (case and spaces do not matter), so a roster is that export with a ``submission`` column
added:

- Canvas: ``Student`` (the name), ``ID``, ``SIS User ID``, ``SIS Login ID``, ``Section``; each line
  needs one of the three ids.
- Moodle: ``First name``, ``Last name``, ``ID number``, ``Email address``; each line needs the
  e-mail address (what the import is told to match on).

Every roster line gets a row: a student with no graded submission gets empty grades (not 0), so
the import leaves their grade empty. Graded submissions that no roster line names are listed in
the command's output and in ``OUT/<lms>_unmatched.txt``, never dropped silently. One grade column
per assignment, named by the assignment, holding its points (autograded and written questions;
a written question not scored yet counts nothing, and the output says how many students that
concerns), less the late penalty ``grades.csv`` records for it (``lateness``).

The layouts follow each system's documentation of its gradebook CSV import:

- Canvas, "How do I import grades in the Gradebook?" (Canvas Instructor Guide,
  https://community.canvaslms.com/t5/Instructor-Guide/How-do-I-import-grades-in-the-Gradebook/ta-p/807)
  and the Ohio State guide to it
  (https://teaching.resources.osu.edu/toolsets/carmencanvas/guides/calculating-final-grades/import-csv-file-carmen-grades):
  the file has the layout of the gradebook export, ``Student,ID,SIS User ID,SIS Login ID,Section``
  and then one column per assignment (the student's name, ID or SIS User ID identifies them; the
  SIS Login ID and Section columns must be there); the export's second line, starting ``Points
  Possible``, gives each assignment's points; a column naming no existing assignment creates one.
  The kit writes all five columns and needs an id (ID, SIS User ID or SIS Login ID) per line, a
  name alone being ambiguous.
- Moodle, "Grade import" (MoodleDocs, https://docs.moodle.org/311/en/Grade_import): a CSV file
  whose first line names the columns, one line per user; on upload the teacher maps "Email
  address" to ``useremail`` ("Identify user by") and each grade column to a grade item (or a new
  one).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path

from labkit.course.questions import Question

from .feedback import read_questions
from .gradebook import read_csv, write_csv
from .lateness import penalty_column

SYSTEMS = ("canvas", "moodle")
#: Canvas's fixed columns, in the order of its gradebook export.
CANVAS_COLUMNS = ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]
#: The first cell of Canvas's second line, which gives each assignment's points.
CANVAS_POINTS_ROW = "Points Possible"
#: Moodle's user columns, in the order of its gradebook export (Institution and Department left
#: out: the import does not need them).
MOODLE_COLUMNS = ["First name", "Last name", "ID number", "Email address"]
#: Roster column (normalised) -> the output column it fills.
_CANVAS_ROSTER = {"student": "Student", "name": "Student", "id": "ID",
                  "sis_user_id": "SIS User ID", "sis_login_id": "SIS Login ID",
                  "section": "Section"}
_MOODLE_ROSTER = {"first_name": "First name", "last_name": "Last name", "id_number": "ID number",
                  "idnumber": "ID number", "email_address": "Email address",
                  "email": "Email address"}
SUBMISSION = "submission"
#: Lines of Canvas's gradebook export that are not students (a roster made from it may hold them).
_CANVAS_NOT_STUDENTS = ("points possible", "manual posting")


class ExportError(Exception):
    """The export cannot be made at all (OUT not graded, an unusable roster): said in one line."""


@dataclass
class Export:
    path: Path
    rows: int
    #: roster lines that found a graded submission
    matched: int
    #: roster lines without one (their grades are empty)
    without_submission: list[str] = field(default_factory=list)
    #: graded submissions that no roster line names
    unmatched: list[str] = field(default_factory=list)
    #: roster lines skipped or doubtful, one sentence each
    problems: list[str] = field(default_factory=list)
    #: matched students with a written question not scored yet
    pending: int = 0

    def summary(self) -> str:
        lines = [f"wrote {self.path}: {self.rows} roster students, {self.matched} with grades, "
                 f"{len(self.without_submission)} without a graded submission (empty grade)"]
        if self.pending:
            lines.append(f"{self.pending} student(s) have written answers not scored yet: "
                         "those count nothing in the exported points")
        if self.unmatched:
            lines.append(f"{len(self.unmatched)} graded submission(s) match no roster line and "
                         f"are not in the file (add them to the roster): "
                         + ", ".join(self.unmatched))
        lines.extend(self.problems)
        return "\n".join(lines)


def _normalise(name: str) -> str:
    return "_".join(name.strip().lower().replace("-", " ").split())


def read_roster(path: Path) -> tuple[list[tuple[int, dict[str, str]]], list[str]]:
    """(line number, row with normalised column names) per roster line, and the header; raises
    ExportError when the file cannot be read or names no ``submission`` column."""
    try:
        data = path.read_bytes()
    except OSError as error:
        raise ExportError(f"cannot read the roster {path}: {error.strerror or error}") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:  # a spreadsheet's "CSV" in a Windows code page
        text = data.decode("cp1252", errors="replace")
    first = text.splitlines()[0] if text.strip() else ""
    for delimiter in (",", ";", "\t"):
        header = [_normalise(h) for h in next(csv.reader([first], delimiter=delimiter), [])]
        if SUBMISSION in header:
            reader = csv.reader(io.StringIO(text), delimiter=delimiter)
            next(reader)
            rows = [(reader.line_num, dict(zip(header, (v.strip() for v in row))))
                    for row in reader if any(v.strip() for v in row)]
            return rows, header
    raise ExportError(f"the roster {path} must name a '{SUBMISSION}' column in its first line "
                      f"(the student's name in grades.csv), next to the LMS's columns; it reads "
                      f"{first[:200]!r}")


def _read_grades(out: Path) -> tuple[list[Question], dict[str, dict[str, str]]]:
    if not (out / "grades.csv").is_file() or not (out / "questions.csv").is_file():
        raise ExportError(f"{out} holds no grades.csv and questions.csv: run make grade first")
    questions = read_questions(out)
    grades = {row["student"]: row for row in read_csv(out / "grades.csv")}
    return questions, grades


def _number(text: str | None) -> float | None:
    try:
        return float(text) if text and text.strip() else None
    except ValueError:
        return None


def _assignment_points(questions: list[Question], row: dict[str, str]) -> tuple[dict[str, str], bool]:
    """Per assignment its points as text, the late penalty of ``grades.csv`` taken off, and
    whether a written question is not scored yet."""
    totals: dict[str, float] = {}
    pending = False
    for question in questions:
        value = _number(row.get(question.column))
        if value is None and question.written:
            pending = True
        totals[question.assignment] = totals.get(question.assignment, 0.0) + (value or 0.0)
    for assignment in totals:
        totals[assignment] -= _number(row.get(penalty_column(assignment))) or 0.0
    return {assignment: f"{total:g}" for assignment, total in totals.items()}, pending


def export(out: Path, lms: str, roster_path: Path, target: Path | None = None) -> Export:
    """Write ``OUT/<lms>_import.csv`` (or ``target``) for the LMS's gradebook import."""
    if lms not in SYSTEMS:
        raise ExportError(f"unknown LMS {lms!r}: use one of {', '.join(SYSTEMS)}")
    questions, grades = _read_grades(out)
    rows, header = read_roster(roster_path)
    mapping = _CANVAS_ROSTER if lms == "canvas" else _MOODLE_ROSTER
    fixed = CANVAS_COLUMNS if lms == "canvas" else MOODLE_COLUMNS
    required = (["ID", "SIS User ID", "SIS Login ID"] if lms == "canvas" else ["Email address"])
    if not any(mapping.get(h) in required for h in header):
        names = " or ".join(required)
        raise ExportError(f"the roster {roster_path} has no {names} column, which {lms} needs to "
                          f"find each student")
    assignments = list(dict.fromkeys(q.assignment for q in questions))
    possible = {a: sum(q.points for q in questions if q.assignment == a) for a in assignments}
    target = target or out / f"{lms}_import.csv"
    result = Export(target, 0, 0)
    table: list[list[str]] = []
    if lms == "canvas":
        table.append([CANVAS_POINTS_ROW] + [""] * (len(fixed) - 1)
                     + [f"{possible[a]:g}" for a in assignments])
    named: dict[str, int] = {}
    stripped = {name.strip().lower(): name for name in grades}
    for line, row in rows:
        if (row.get("student") or "").lower() in _CANVAS_NOT_STUDENTS:
            continue
        identity = {column: "" for column in fixed}
        for key, value in row.items():
            if key in mapping and value and not identity[mapping[key]]:
                identity[mapping[key]] = value
        if not any(identity[c] for c in required):
            result.problems.append(f"roster line {line}: no {' or '.join(required)}; skipped "
                                   f"(submission {row.get(SUBMISSION, '')!r})")
            continue
        submission = row.get(SUBMISSION, "")
        student = submission if submission in grades else stripped.get(submission.lower())
        cells = [""] * len(assignments)
        if student is not None and student in named:
            result.problems.append(
                f"roster line {line}: submission {submission!r} is also on line "
                f"{named[student]}; this line gets an empty grade")
            student = None
        if student is None:
            result.without_submission.append(submission or f"line {line}")
        else:
            named[student] = line
            points, pending = _assignment_points(questions, grades[student])
            cells = [points.get(a, "") for a in assignments]
            result.matched += 1
            result.pending += pending
        table.append([identity[c] for c in fixed] + cells)
        result.rows += 1
    result.unmatched = sorted(s for s in grades if s not in named)
    write_csv(target, fixed + assignments, table)
    unmatched_file = out / f"{lms}_unmatched.txt"
    if result.unmatched:
        unmatched_file.write_text("".join(f"{s}\n" for s in result.unmatched), encoding="utf-8")
    else:
        unmatched_file.unlink(missing_ok=True)
    return result
