"""When each student handed in each assignment, for the late policy (``outputs.lateness``).

The sources, the first that knows deciding, and each assessment says which one did:

1. the times file the teaching team gives (``make grade TIMES=times.csv``): ``student``,
   ``assignment`` (empty: every assignment of that student) and ``handed_in``, an ISO 8601
   date-time with its zone; a line naming the assignment wins over the student's line without;
2. what the LMS download says (``intake.Submission.handed_in`` and ``marked_late``, kept in the
   student's row): a time, or only a mark that the work was late;
3. nothing: the work counts as on time (and the report says so when no time was known at all).

A file's modification time inside a student's folder is never used: the student sets it.

The times file is read whole and checked before anything is graded: a line that cannot be used
refuses the file with one sentence naming it, since a grade decided by a guessed time is worse
than no grade yet.
"""

from __future__ import annotations

import csv
import datetime
import io
from dataclasses import dataclass, field
from pathlib import Path

from labkit.course.deadlines import Deadlines, DeadlinesError, parse_time, read_deadlines
from labkit.outputs import gradebook, lateness

class TimesError(Exception):
    """A times file that cannot be used; the message names the line, in one sentence."""


#: What ``read_late_files`` raises: either file refused, in one sentence.
LateFilesError = (DeadlinesError, TimesError)


@dataclass
class HandInTimes:
    #: (student, assignment stem or None for all of the student's work) -> when handed in
    times: dict[tuple[str, str | None], datetime.datetime] = field(default_factory=dict)
    path: Path | None = None

    def of(self, student: str, stem: str) -> datetime.datetime | None:
        return self.times.get((student, stem), self.times.get((student, None)))

    @property
    def students(self) -> set[str]:
        return {student for student, _ in self.times}


def read_times(path: Path, known: list[str]) -> HandInTimes:
    """The times file at ``path`` (",", ";" or tab separated, a header naming student,
    assignment and handed_in), checked against the released assignments ``known``."""
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except (OSError, UnicodeDecodeError) as error:
        raise TimesError(f"cannot read the times file {path}: "
                         f"{getattr(error, 'strerror', None) or error}") from None
    first = text.splitlines()[0] if text.strip() else ""
    for delimiter in (",", ";", "\t"):
        header = [h.strip().lower() for h in next(csv.reader([first], delimiter=delimiter), [])]
        if "student" in header and "handed_in" in header:
            break
    else:
        raise TimesError(f"the times file {path} must start with a header line naming the columns "
                         f"student, assignment and handed_in; it reads {first[:200]!r}")
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    next(reader)
    found = HandInTimes(path=path)
    for cells in reader:
        line = reader.line_num
        if not any(c.strip() for c in cells):
            continue
        row = dict(zip(header, (c.strip() for c in cells)))
        student, stem = row.get("student", ""), row.get("assignment") or None
        where = f"the times file {path}, line {line}"
        if not student:
            raise TimesError(f"{where}: no student; give the student id as in grades.csv")
        if stem is not None and stem not in known:
            raise TimesError(f"{where}: assignment {stem!r} is not a released assignment; use one "
                             f"of {', '.join(known)}, or leave it empty for all of the student's "
                             "work")
        try:
            when = parse_time(row.get("handed_in", ""), f"{where}, handed_in")
        except ValueError as error:
            raise TimesError(str(error)) from None
        if (student, stem) in found.times:
            raise TimesError(f"{where}: a second time for {student!r}"
                             f"{f' and {stem}' if stem else ''}; keep one line each")
        found.times[(student, stem)] = when
    return found


def read_late_files(deadlines: Path | None, times: Path | None, stems: list[str],
                    ) -> tuple[Deadlines | None, HandInTimes | None]:
    """The deadlines and times files, both checked before anything is graded or merged; raises
    one of ``LateFilesError`` for a bad one, or for hand-in times given without deadlines (which
    would decide nothing, and are most likely a forgotten DEADLINES)."""
    if times is not None and deadlines is None:
        raise TimesError("a TIMES file was given without DEADLINES: give the deadlines file too "
                         "(see docs/ta-grading.md, late work)")
    return (read_deadlines(deadlines, stems) if deadlines is not None else None,
            read_times(times, stems) if times is not None else None)


def _lms_time(row: gradebook.StudentRow) -> datetime.datetime | None:
    try:
        when = datetime.datetime.fromisoformat(row.handed_in) if row.handed_in else None
    except ValueError:
        return None
    return when if when is not None and when.utcoffset() is not None else None


def hand_in(row: gradebook.StudentRow, stem: str,
            times: HandInTimes | None) -> tuple[datetime.datetime | None, str]:
    """When ``row``'s student handed in ``stem``, and which source said so
    (``lateness.SOURCES``)."""
    if times is not None and (when := times.of(row.student, stem)) is not None:
        return when, lateness.FROM_TIMES
    if (when := _lms_time(row)) is not None:
        return when, lateness.FROM_LMS
    if row.marked_late:
        return None, lateness.FROM_LMS_FLAG
    return None, lateness.FROM_NONE


def assess_class(deadlines: Deadlines, times: HandInTimes | None,
                 rows: list[gradebook.StudentRow], stems: list[str]) -> lateness.ClassLateness:
    """Every student's assessment for every assignment that has a due time."""
    students: dict[str, dict[str, lateness.Assessment]] = {}
    known = False
    for row in gradebook.one_row_per_student(rows):
        by_stem = {}
        for stem in stems:
            when, source = hand_in(row, stem, times)
            known = known or source != lateness.FROM_NONE
            if (assessment := lateness.assess(deadlines, row.student, stem, when, source)) \
                    is not None:
                by_stem[stem] = assessment
        students[row.student] = by_stem
    return lateness.ClassLateness(students, lateness.rule(deadlines.policy),
                                  no_times=bool(deadlines.due) and not known)


def summary(late: lateness.ClassLateness | None, deadlines: Deadlines | None,
            times: HandInTimes | None, students: list[str]) -> str:
    """The grade summary's lines about late work ("" without deadlines)."""
    if late is None or deadlines is None:
        return ""
    assessed = [a for by_stem in late.students.values() for a in by_stem.values()]
    lines = [f"late work: {sum(a.late for a in assessed)} of {len(assessed)} submissions late "
             f"({late.rule}); the penalties are in grades.csv"]
    if late.no_times:
        lines.append("no hand-in times known (no TIMES file, nothing from the LMS download): "
                     "every submission was counted as on time")
    strangers = sorted((set(deadlines.extensions) | (times.students if times else set()))
                       - set(students))
    if strangers:
        lines.append("the deadlines or times file name(s) student(s) not in this class (check "
                     f"the spelling): {', '.join(strangers[:10])}"
                     + (f" and {len(strangers) - 10} more" if len(strangers) > 10 else ""))
    return "\n" + "\n".join(lines)
