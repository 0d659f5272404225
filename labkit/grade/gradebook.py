"""The gradebook files: ``grades.csv`` (one row per student) and ``questions.csv``.

Files are written to a temporary name and renamed into place, so a reader never sees half a file.
"""

from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass, field
from pathlib import Path

from .autograders import Assignment


@dataclass
class StudentRow:
    student: str
    #: "<assignment>/<question>" -> points earned
    points: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def total(self) -> float:
        return sum(self.points.values())


def columns(assignments: list[Assignment]) -> list[str]:
    return [f"{a.stem}/{question}" for a in assignments for question, _ in a.questions]


def _format(points: float) -> str:
    return f"{points:g}"


def write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, path)


def write_grades(path: Path, assignments: list[Assignment], rows: list[StudentRow]) -> None:
    names = columns(assignments)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["student", *names, "total", "notes"])
    for row in sorted(rows, key=lambda r: r.student):
        writer.writerow(
            [row.student, *(_format(row.points.get(n, 0.0)) for n in names),
             _format(row.total), "; ".join(row.notes)]
        )
    write_atomically(path, buffer.getvalue())


def write_questions(path: Path, assignments: list[Assignment]) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["assignment", "question", "points"])
    for assignment in assignments:
        for question, points in assignment.questions:
            writer.writerow([assignment.stem, question, _format(points)])
    write_atomically(path, buffer.getvalue())
