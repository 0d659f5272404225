"""The gradebook files: ``grades.csv`` (one row per student) and ``questions.csv``.

Written (manual) questions have a column of their own in both; in ``grades.csv`` it is empty until
the teaching team records a score (see ``manual_scores``).

Files are written to a temporary name and renamed into place, so a reader never sees half a file.
"""

from __future__ import annotations

import csv
import json
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from labkit.course.autograders import Assignment

from . import lateness


@dataclass
class StudentRow:
    student: str
    #: "<assignment>/<question>" -> points earned
    points: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    #: when the LMS download says the work was handed in (ISO 8601 with its zone), if it does
    handed_in: str | None = None
    #: the LMS download marks the work late (whether or not it says when)
    marked_late: bool = False

    @property
    def total(self) -> float:
        return sum(self.points.values())


def has_problems(notes: list[str]) -> bool:
    """Whether a student's row counts as "a submission with problems", in ``make grade``'s summary
    and in ``report.html`` alike: any note at all. Every note (a notebook missing, unreadable or
    for another assignment, a cell stopped, output cut) says that points may have been lost for a
    reason other than the answers, which is what the teaching team has to look at."""
    return bool(notes)


def columns(assignments: list[Assignment]) -> list[str]:
    """The question columns of ``grades.csv``: per assignment, the autograded questions, then the
    written ones."""
    return [q.column for a in assignments for q in a.columns]


def manual_columns(assignments: list[Assignment]) -> dict[str, float]:
    """Column of each written question -> its points."""
    return {q.column: q.points for a in assignments for q in a.written}


def _format(points: float) -> str:
    return f"{points:g}"


def write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, path)


#: What a spreadsheet may take for the start of a formula when a cell begins with it (OWASP's
#: "CSV Injection": =, +, -, @, tab, carriage return), and the apostrophe that neutralises them,
#: itself escaped so that the escaping can be undone without ambiguity.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "'")
#: A plain decimal number: a spreadsheet reads it as a number, never a formula, so it stays as
#: it is (a points column must stay numeric, a negative one included).
_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")


def spreadsheet_safe(cell: object) -> str:
    """A CSV cell that no spreadsheet runs as a formula: text that starts like one (or with an
    apostrophe) gets a leading apostrophe, which spreadsheets show as "this is text"; numbers
    are left alone. ``from_spreadsheet`` undoes it exactly, so an id such as ``=2+5`` still
    names the same student when the kit reads its own files back."""
    text = str(cell)
    if text.startswith(_FORMULA_STARTS) and not _NUMBER.fullmatch(text):
        return "'" + text
    return text


def from_spreadsheet(cell: str) -> str:
    """The value ``spreadsheet_safe`` escaped; any other text (a file a spreadsheet saved without
    the apostrophe, say) is returned as it is."""
    if len(cell) > 1 and cell[0] == "'" and cell[1:].startswith(_FORMULA_STARTS):
        return cell[1:]
    return cell


def csv_line(cells: Iterable[object], delimiter: str = ",", newline: str = "\n") -> str:
    """One line of a CSV file the kit writes: each cell made spreadsheet-safe, and quoted when it
    holds the delimiter, a quote or a line break. (The csv module's writer, with "\\n" line
    ends, leaves a lone carriage return unquoted, and a reader then splits the row there.)"""
    quoted = []
    for cell in cells:
        text = spreadsheet_safe(cell)
        if any(c in text for c in (delimiter, '"', "\r", "\n")):
            text = '"' + text.replace('"', '""') + '"'
        quoted.append(text)
    line = delimiter.join(quoted)
    return (line if line or len(quoted) != 1 else '""') + newline


def write_csv(path: Path, header: list[str], rows: Iterable[list[str]]) -> None:
    """A CSV file of the kit's (one format for all: "\\n" line ends), written atomically, every
    cell made spreadsheet-safe (the file is opened in spreadsheets and names come from students)."""
    write_atomically(path, csv_line(header) + "".join(csv_line(row) for row in rows))


def read_csv(path: Path) -> list[dict[str, str]]:
    """The rows of a CSV file the kit wrote with ``write_csv``, each cell as it was before being
    made spreadsheet-safe. Raises OSError when the file cannot be read."""
    with open(path, newline="", encoding="utf-8") as handle:
        return [{from_spreadsheet(k): from_spreadsheet(v or "") for k, v in row.items()
                 if k is not None}
                for row in csv.DictReader(handle)]


def one_row_per_student(rows: list[StudentRow]) -> list[StudentRow]:
    """The rows sorted by student, those sharing a student id made one: the id's every note and
    no points. Two entries of SUBMISSIONS with one id (a folder ``dup`` and a file
    ``dup.ipynb``) are refused by discovery, with a note naming both; this keeps the gradebook
    from holding two rows that readers (the feedback pages, the LMS export) would confuse, even
    when one of them comes from a record graded before the other entry appeared."""
    by_student: dict[str, list[StudentRow]] = {}
    for row in rows:
        by_student.setdefault(row.student, []).append(row)
    merged = []
    for student in sorted(by_student):
        group = by_student[student]
        if len(group) == 1:
            merged.append(group[0])
        else:
            notes = list(dict.fromkeys(note for row in group for note in row.notes))
            merged.append(StudentRow(student=student, notes=notes))
    return merged


def write_grades(path: Path, assignments: list[Assignment], rows: list[StudentRow],
                 manual: dict[str, dict[str, float]] | None = None,
                 late: dict[str, dict[str, lateness.Assessment]] | None = None) -> None:
    """Write ``grades.csv``. ``manual`` (student -> written question's column -> points) holds the
    scores the teaching team recorded by hand; a written question without one is left empty (not
    graded yet) and counts 0 in the total.

    ``late`` (student -> assignment -> assessment; None when no deadlines were given) appends, per
    assignment, when it was handed in, the days late and the points the late policy takes, which
    the total then leaves out; a submission on time has empty days late and penalty cells."""
    names = columns(assignments)
    written = manual_columns(assignments)
    manual = manual or {}
    stems = [a.stem for a in assignments]
    lines = []
    for row in one_row_per_student(rows):
        scores = {n: p for n, p in manual.get(row.student, {}).items() if n in written}
        cells = [_format(scores[n]) if n in scores else "" if n in written
                 else _format(row.points.get(n, 0.0)) for n in names]
        total = row.total + sum(scores.values())
        extra: list[str] = []
        notes = list(row.notes)
        if late is not None:
            for assignment in assignments:
                assessment = late.get(row.student, {}).get(assignment.stem)
                if assessment is None:
                    extra += ["", "", ""]
                    continue
                earned = sum(scores.get(q.column, 0.0) if q.written
                             else row.points.get(q.column, 0.0) for q in assignment.columns)
                taken = assessment.penalty(earned, sum(q.points for q in assignment.columns))
                total -= taken
                if assessment.source == lateness.FROM_LMS_FLAG:
                    notes.append(f"{assignment.stem}: {lateness.SOURCES[assessment.source]} "
                                 "(a TIMES file with its time decides instead)")
                extra += [assessment.handed_in,
                          str(assessment.days_late) if assessment.late else "",
                          _format(taken) if assessment.late else ""]
        lines.append([row.student, *cells, _format(total), "; ".join(notes), *extra])
    header = ["student", *names, "total", "notes"]
    write_csv(path, header + (lateness.columns(stems) if late is not None else []), lines)


def write_questions(path: Path, assignments: list[Assignment]) -> None:
    write_csv(path, ["assignment", "question", "points", "manual"], (
        [q.assignment, q.name, _format(q.points), "true" if q.written else "false"]
        for assignment in assignments for q in assignment.columns))


#: The TAs' comments on written answers (student -> question column -> comment), from the scores
#: file, kept in OUT so that the feedback pages, remade from OUT alone, can show them.
COMMENTS_FILE = "manual_comments.json"


def write_comments(out: Path, comments: dict[str, dict[str, str]]) -> None:
    """Keep the comments in OUT (none: no file, so a comment deleted from the scores file leaves
    no stale copy behind)."""
    path = out / COMMENTS_FILE
    if not any(comments.values()):
        path.unlink(missing_ok=True)
        return
    write_atomically(path, json.dumps(comments, indent=1, sort_keys=True, ensure_ascii=False) + "\n")


def read_comments(out: Path) -> dict[str, dict[str, str]]:
    """The comments written by ``write_comments``; none when the file is absent or unreadable."""
    try:
        data = json.loads((out / COMMENTS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {str(student): {str(c): str(t) for c, t in columns.items() if isinstance(t, str)}
            for student, columns in data.items() if isinstance(columns, dict)}
