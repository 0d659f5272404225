"""Autograded scores changed by hand (a regrade), and their trail ``OUT/overrides.csv``.

A TA overrides an autograded question's score with a row of the scores file that names the
question, the points and a reason (``manual_scores`` reads and checks it). The override is applied
when the class files are written, on top of the recorded (autograded) rows, as nbgrader's manual
grade overrides its autograde: nothing is graded again, and a record stays what the grader found.

Because the autograded score is taken afresh from the rows on every run, a later regrade that
changes it leaves the override standing: ``grades.csv`` holds the override, and
``overrides.csv`` and the feedback page show both the autograded score of this run and the
override. To let the new autograded score count, the TA empties the row's points.

``grades.csv`` keeps one column per question holding the points that count, so its totals and the
LMS export (``lms``) need nothing new. The trail is a file of its own, one line per override
(student, assignment, question, autograded points, override points, reason): the gradebook stays
one column per grade item, which is what an LMS import takes every column of ``grades.csv`` for,
and a TA reads each change with its reason in one place. The feedback pages read it back, as
they are remade from OUT alone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path

from labkit.course.questions import column_key

from .gradebook import StudentRow, read_csv, write_csv

OVERRIDES_FILE = "overrides.csv"
FIELDS = ["student", "assignment", "question", "autograded", "override", "reason"]


@dataclass(frozen=True)
class Override:
    """What a TA's row asks: the points that count instead of the autograded ones, and why."""
    points: float
    reason: str


@dataclass(frozen=True)
class Applied:
    """One override as applied to a student's row: a line of ``overrides.csv``."""
    student: str
    assignment: str
    question: str
    autograded: float
    override: float
    reason: str

    @property
    def column(self) -> str:
        return column_key(self.assignment, self.question)


def apply(rows: list[StudentRow],
          overrides: dict[str, dict[str, Override]]) -> tuple[list[StudentRow], list[Applied]]:
    """The rows with each override's points in place of the autograded ones (new rows: the
    recorded ones are left as grading found them), and what was applied, by student then
    column. A question the student's row holds no points for (the notebook was not handed in or
    did not run) was autograded 0."""
    changed, applied = [], []
    for row in rows:
        mine = overrides.get(row.student, {})
        if not mine:
            changed.append(row)
            continue
        points = dict(row.points)
        for column in sorted(mine):
            override = mine[column]
            assignment, _, question = column.partition("/")
            applied.append(Applied(row.student, assignment, question, row.points.get(column, 0.0),
                                   override.points, override.reason))
            points[column] = override.points
        changed.append(replace(row, points=points))
    return changed, applied


def _format(points: float) -> str:
    return f"{points:g}"


def write_overrides(out: Path, applied: list[Applied]) -> Path | None:
    """``OUT/overrides.csv``, or no file when nothing is overridden (so that an override removed
    from the scores file leaves no stale line behind)."""
    path = out / OVERRIDES_FILE
    if not applied:
        path.unlink(missing_ok=True)
        return None
    write_csv(path, FIELDS, ([a.student, a.assignment, a.question, _format(a.autograded),
                              _format(a.override), a.reason] for a in applied))
    return path


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def read_overrides(out: Path) -> dict[str, dict[str, Applied]]:
    """student -> question column -> override, from ``overrides.csv``; none when the file is
    absent or unreadable, and a line whose points are not numbers is left out (the file is the
    kit's own, but OUT can be edited by hand)."""
    try:
        rows = read_csv(out / OVERRIDES_FILE)
    except (OSError, UnicodeDecodeError):
        return {}
    found: dict[str, dict[str, Applied]] = {}
    for row in rows:
        autograded, override = _number(row.get("autograded", "")), _number(row.get("override", ""))
        if autograded is None or override is None:
            continue
        applied = Applied(row.get("student", ""), row.get("assignment", ""),
                          row.get("question", ""), autograded, override, row.get("reason", ""))
        found.setdefault(applied.student, {})[applied.column] = applied
    return found
