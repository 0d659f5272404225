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
from pathlib import Path

from labkit.course.questions import Question

from . import lms_gradebook, moodle_worksheet
from .feedback import read_questions
from .gradebook import read_csv, write_csv
from .lms_common import (CANVAS_POINTS_ROW, SUBMISSION, Export, ExportError, assignment_points,
                         write_unmatched)

SYSTEMS = ("canvas", "moodle")
#: Canvas's fixed columns, in the order of its gradebook export.
CANVAS_COLUMNS = ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]
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
#: Lines of Canvas's gradebook export that are not students (a roster made from it may hold them).
_CANVAS_NOT_STUDENTS = ("points possible", "manual posting")


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
                      f"(the student's name in grades.csv), next to the LMS's columns, or be the "
                      f"LMS's own file (Canvas's gradebook export, Moodle's grading worksheet); "
                      f"it reads {first[:200]!r}")


def _read_grades(out: Path) -> tuple[list[Question], dict[str, dict[str, str]]]:
    if not (out / "grades.csv").is_file() or not (out / "questions.csv").is_file():
        raise ExportError(f"{out} holds no grades.csv and questions.csv: run make grade first")
    questions = read_questions(out)
    grades = {row["student"]: row for row in read_csv(out / "grades.csv")}
    return questions, grades


def _header(path: Path) -> list[str]:
    """The roster's first line as columns ([] when it cannot be read: ``read_roster`` says why)."""
    try:
        with open(path, "rb") as handle:
            first = handle.readline(1 << 16)
    except OSError:
        return []
    text = first.decode("utf-8-sig", errors="replace").rstrip("\r\n")
    delimiter = max((",", ";", "\t"), key=text.count)
    return next(csv.reader([text], delimiter=delimiter), [])


def export(out: Path, lms: str, roster_path: Path, target: Path | None = None,
           columns: Path | None = None) -> Export:
    """Write ``OUT/<lms>_import.csv`` (or ``target``) for the LMS's gradebook import.

    The roster is the LMS's own file (Canvas's gradebook export, Moodle's grading worksheet):
    the kit's points go into its existing columns (``lms_gradebook``), matched or mapped by
    ``columns``. A roster made by hand, with a ``submission`` column and no ``columns`` file,
    gets one new column per assignment, as described above."""
    if lms not in SYSTEMS:
        raise ExportError(f"unknown LMS {lms!r}: use one of {', '.join(SYSTEMS)}")
    questions, grades = _read_grades(out)
    header = _header(roster_path)
    own = {_normalise(h) for h in header}
    fill = None
    if lms == "canvas" and lms_gradebook.is_canvas_gradebook(header) and (
            SUBMISSION not in own or columns is not None):
        fill = lms_gradebook.fill_canvas
    elif lms == "moodle" and moodle_worksheet.is_worksheet(header):
        fill = lms_gradebook.fill_moodle
    elif columns is not None:
        raise ExportError(f"COLUMNS maps into the LMS's own file, and the roster {roster_path} is "
                          f"not one: give Canvas's gradebook export or Moodle's grading worksheet "
                          f"as ROSTER")
    if fill is not None:
        result = fill(out, questions, grades, roster_path, columns,
                      target or out / f"{lms}_import.csv")
        write_unmatched(out, lms, result.unmatched)
        return result
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
            points, pending = assignment_points(questions, grades[student])
            cells = [points.get(a, "") for a in assignments]
            result.matched += 1
            result.pending += pending
        table.append([identity[c] for c in fixed] + cells)
        result.rows += 1
    result.unmatched = sorted(s for s in grades if s not in named)
    write_csv(target, fixed + assignments, table)
    write_unmatched(out, lms, result.unmatched)
    return result
