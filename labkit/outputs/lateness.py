"""Late work: how late a notebook was handed in, and what the late policy takes for it.

Grading decides *when* each student handed in (``labkit.grading.handin_times``); this module turns
that and the deadlines (``labkit.course.deadlines``) into one ``Assessment`` per student and
assignment, and an assessment into points (``penalty``). ``grades.csv`` subtracts them before its
total (``gradebook.write_grades``), the LMS export reads them back from there, and the feedback
pages and the report show the assessment kept in ``OUT/lateness.json``.

The arithmetic, in one place:

- days late: every started day (24 hours) after the due time counts one; handed in within the
  grace period after it counts as on time (and so 0 days), after it the days are counted from the
  due time itself, grace not deducted.
- ``per_day``: ``per_day`` times the days late, at most ``cap``, as a fraction of the points the
  assignment is worth; never more than the student earned, so a score never goes below 0.
- ``cutoff``: handed in after the cutoff (grace included) earns 0; before it, full marks.
- The penalty applies to the assignment's total, after any change of a question's points.

A notebook the LMS marked late without saying when counts as handed in just after the due time and
its grace: one day late, past a cutoff that is the due time itself, before any later one.
"""

from __future__ import annotations

import datetime
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from labkit.course.deadlines import Deadlines, Policy

DAY = datetime.timedelta(days=1)
#: ``OUT/lateness.json``: the assessments, for the pages (absent when no deadlines were given).
LATENESS_FILE = "lateness.json"
FORMAT = 1

#: Where a hand-in time came from: the first that knows one decides.
FROM_TIMES = "times"
FROM_LMS = "lms"
FROM_LMS_FLAG = "lms-flag"
FROM_NONE = "none"
SOURCES = {
    FROM_TIMES: "the teaching team's times file",
    FROM_LMS: "the LMS download",
    FROM_LMS_FLAG: "marked late by the LMS, with no time: counted as 1 day late",
    FROM_NONE: "no hand-in time known: counted as on time",
}


def days_late(handed_in: datetime.datetime, due: datetime.datetime,
              grace_minutes: float = 0.0) -> int:
    """Started days after ``due``; 0 when handed in no later than ``grace_minutes`` after it."""
    late = handed_in - due
    if late <= datetime.timedelta(minutes=grace_minutes):
        return 0
    return -((-late) // DAY)


def late_fraction(days: int, policy: Policy) -> float:
    """The fraction of the assignment's points that ``policy`` ``per_day`` takes for ``days``."""
    if policy.kind != "per_day" or days <= 0:
        return 0.0
    return min(round(days * policy.per_day, 12), policy.cap)


def rule(policy: Policy) -> str:
    """The policy in one sentence, as the student reads it."""
    grace = (f"; handing in up to {policy.grace_minutes:g} minute"
             f"{'s' if policy.grace_minutes != 1 else ''} after the due time counts as on time"
             if policy.grace_minutes else "")
    if policy.kind == "per_day":
        cap = f", at most {100 * policy.cap:g}% in all" if policy.cap < 1 else ""
        return (f"{100 * policy.per_day:g}% of the assignment's points per started day late"
                f"{cap}{grace}")
    if policy.kind == "cutoff":
        return f"work handed in after the cutoff earns 0 points, before it full marks{grace}"
    return f"no penalty for late work{grace}"


@dataclass(frozen=True)
class Assessment:
    """One student's hand-in of one assignment that has a due time, against that due time."""
    stem: str
    #: the due time that applies to this student (ISO 8601), an extension included
    due: str
    #: the course's due time when an extension moved it, else ""
    extended_from: str
    #: policy cutoff: after this (ISO 8601) the work earns 0; else ""
    cutoff: str
    #: when the work was handed in (ISO 8601, in the due time's zone), "" when not known
    handed_in: str
    #: one of ``SOURCES``
    source: str
    days_late: int
    #: the fraction of the assignment's points the policy takes (``per_day``)
    fraction: float
    #: past the cutoff: the work earns 0
    zero: bool
    #: the policy in words
    rule: str

    @property
    def late(self) -> bool:
        return self.days_late > 0

    def penalty(self, earned: float, possible: float) -> float:
        """The points taken from an assignment that earned ``earned`` of ``possible``."""
        taken = earned if self.zero else round(self.fraction * possible, 9)
        return max(0.0, min(taken, earned))


def assess(deadlines: Deadlines, student: str, stem: str, handed_in: datetime.datetime | None,
           source: str) -> Assessment | None:
    """``student``'s ``stem`` handed in at ``handed_in`` (None: unknown; ``source`` says whether
    the LMS marked it late all the same), or None when ``stem`` has no due time."""
    due = deadlines.due_for(student, stem)
    if due is None:
        return None
    policy = deadlines.policy
    grace = datetime.timedelta(minutes=policy.grace_minutes)
    cutoff = deadlines.cutoff_for(student, stem) if policy.kind == "cutoff" else None
    if handed_in is not None:
        days = days_late(handed_in, due, policy.grace_minutes)
        zero = cutoff is not None and handed_in > cutoff + grace
    elif source == FROM_LMS_FLAG:
        days = 1
        zero = cutoff is not None and cutoff <= due
    else:
        days, zero = 0, False
    course_due = deadlines.due[stem]
    return Assessment(
        stem=stem, due=due.isoformat(),
        extended_from=course_due.isoformat() if due != course_due else "",
        cutoff=cutoff.isoformat() if cutoff is not None else "",
        handed_in=handed_in.astimezone(due.tzinfo).isoformat() if handed_in is not None else "",
        source=source, days_late=days, fraction=late_fraction(days, policy), zero=zero,
        rule=rule(policy))


# --- OUT/lateness.json ------------------------------------------------------------------------

@dataclass
class ClassLateness:
    """What the pages show of late work, for the whole class."""
    #: student -> stem -> assessment
    students: dict[str, dict[str, Assessment]]
    rule: str
    #: no hand-in time was known for anyone: every submission counted as on time
    no_times: bool


def write_lateness(out: Path, lateness: ClassLateness | None) -> None:
    """Keep the assessments in OUT for the pages; none (no deadlines): no file, no stale copy."""
    path = out / LATENESS_FILE
    if lateness is None:
        path.unlink(missing_ok=True)
        return
    # Written whole, then renamed, as the gradebook's files (which import this module) are.
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(json.dumps(
        {"format": FORMAT, "rule": lateness.rule, "no_times": lateness.no_times,
         "students": {student: {stem: asdict(a) for stem, a in by_stem.items()}
                      for student, by_stem in lateness.students.items()}},
        indent=1, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(partial, path)


def _assessment(data: object) -> Assessment | None:
    if not isinstance(data, dict):
        return None
    try:
        return Assessment(
            stem=str(data["stem"]), due=str(data["due"]),
            extended_from=str(data.get("extended_from") or ""),
            cutoff=str(data.get("cutoff") or ""), handed_in=str(data.get("handed_in") or ""),
            source=str(data.get("source") or FROM_NONE), days_late=int(data["days_late"]),
            fraction=float(data.get("fraction") or 0.0), zero=bool(data.get("zero")),
            rule=str(data.get("rule") or ""))
    except (KeyError, TypeError, ValueError):
        return None


def read_lateness(out: Path) -> ClassLateness | None:
    """What ``write_lateness`` kept; None when there is no file (no deadlines) or it is
    unreadable."""
    try:
        data = json.loads((out / LATENESS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("students"), dict):
        return None
    students = {}
    for student, by_stem in data["students"].items():
        if isinstance(by_stem, dict):
            found = {stem: a for stem, raw in by_stem.items()
                     if (a := _assessment(raw)) is not None}
            students[str(student)] = found
    return ClassLateness(students, str(data.get("rule") or ""), bool(data.get("no_times")))


# --- grades.csv's columns ------------------------------------------------------------------------

def handed_in_column(stem: str) -> str:
    return f"{stem} handed in"


def days_late_column(stem: str) -> str:
    return f"{stem} days late"


def penalty_column(stem: str) -> str:
    return f"{stem} late penalty"


def columns(stems: list[str]) -> list[str]:
    """The columns ``grades.csv`` appends when deadlines are given: per assignment, when it was
    handed in, the days late and the points taken. A space never appears in a question's column
    (``<stem>/<question>``), so these never clash with one."""
    return [c for stem in stems
            for c in (handed_in_column(stem), days_late_column(stem), penalty_column(stem))]
