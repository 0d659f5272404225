"""What every form of ``make export`` shares: its result and its refusal, and a student's points
per assignment as the LMS receives them."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from labkit.course.questions import Question

from .lateness import penalty_column

#: The roster column that names a submission as ``grades.csv`` does (a roster of one's own).
SUBMISSION = "submission"
#: The first cell of Canvas's second line, which gives each assignment's points.
CANVAS_POINTS_ROW = "Points Possible"


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
    #: how the file was made (the columns filled, scaling), one sentence each
    notes: list[str] = field(default_factory=list)
    #: written into the LMS's own file: students without a graded submission keep its value
    into_lms_file: bool = False

    def summary(self) -> str:
        left = "left as the LMS exported it" if self.into_lms_file else "empty grade"
        lines = [f"wrote {self.path}: {self.rows} roster students, {self.matched} with grades, "
                 f"{len(self.without_submission)} without a graded submission ({left})"]
        lines.extend(self.notes)
        if self.pending:
            lines.append(f"{self.pending} student(s) have written answers not scored yet: "
                         "those count nothing in the exported points")
        if self.unmatched:
            lines.append(f"{len(self.unmatched)} graded submission(s) match no roster line and "
                         f"are not in the file (add them to the roster): "
                         + ", ".join(self.unmatched))
        lines.extend(self.problems)
        return "\n".join(lines)


def number(text: str | None) -> float | None:
    try:
        return float(text) if text and text.strip() else None
    except ValueError:
        return None


def assignment_points(questions: list[Question], row: dict[str, str]) -> tuple[dict[str, str], bool]:
    """Per assignment its points as text, the late penalty of ``grades.csv`` taken off, and
    whether a written question is not scored yet."""
    totals: dict[str, float] = {}
    pending = False
    for question in questions:
        value = number(row.get(question.column))
        if value is None and question.written:
            pending = True
        totals[question.assignment] = totals.get(question.assignment, 0.0) + (value or 0.0)
    for assignment in totals:
        totals[assignment] -= number(row.get(penalty_column(assignment))) or 0.0
    return {assignment: f"{total:g}" for assignment, total in totals.items()}, pending


def write_unmatched(out: Path, lms: str, unmatched: list[str]) -> None:
    unmatched_file = out / f"{lms}_unmatched.txt"
    if unmatched:
        unmatched_file.write_text("".join(f"{s}\n" for s in unmatched), encoding="utf-8")
    else:
        unmatched_file.unlink(missing_ok=True)
