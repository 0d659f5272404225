"""One feedback page per student, ``OUT/feedback/<slug>.html``, read back from a graded OUT.

The pages are built only from what grading already wrote (``grades.csv``, ``questions.csv``,
``results/<student>/``: see ``results``), so they can be regenerated at any time without running
a notebook again. A page is meant to be handed to its student as is: it shows the points, the
problems with the submission and, for each failed check, the text grading kept for the student
(a check's own message, or an error's type and first line); no line of test code is ever kept,
since it would name the hidden checks. Student ids come from file names that students chose, so every string is
HTML-escaped (jinja2's autoescape) and every file name is a slug (``page_files``), never the id
itself. An error text comes from student code: its markdown images are shown as text, and the
page's Content-Security-Policy (``page_policy``) lets it load nothing at all. The page is
``templates/feedback.html.j2`` with ``static/feedback.css``.
"""

from __future__ import annotations

import datetime
import sys
from dataclasses import dataclass, field
from pathlib import Path

from labkit.course.questions import Question

from . import lateness, results
from .gradebook import read_comments, read_csv, write_atomically
from .overrides import Applied, read_overrides
from .page_files import page_names
from .page_policy import content_security_policy
from .templating import embedded, template

#: Below this difference two point values are the same (the CSV holds ``%g`` text).
TOLERANCE = 1e-9


@dataclass
class Student:
    student: str
    #: "<assignment>/<question>" -> points earned; a written question not graded yet is absent
    points: dict[str, float]
    total: float
    notes: list[str]
    #: assignment -> its results record (``results.read_assignment``: its cases as
    #: ``results.CaseOutcome``); absent when the assignment left no record
    results: dict[str, dict] = field(default_factory=dict)
    #: question's column -> the teaching team's comment
    comments: dict[str, str] = field(default_factory=dict)
    #: autograded question's column -> the TA's override of its score (``overrides``)
    overrides: dict[str, Applied] = field(default_factory=dict)
    #: assignment -> its hand-in against its due time (``lateness``); empty without deadlines
    late: dict[str, lateness.Assessment] = field(default_factory=dict)
    #: assignment -> the points the late policy took (``grades.csv``'s penalty column)
    penalties: dict[str, float] = field(default_factory=dict)
    #: the name an LMS download gives the student ("" in the kit's own layout)
    name: str = ""

    @property
    def graded(self) -> bool:
        """Whether at least one of the student's notebooks ran and was tested."""
        return any(record.get("problem") is None for record in self.results.values())


@dataclass
class ClassResults:
    questions: list[Question]
    students: list[Student]
    #: the late policy in words, and whether no hand-in time was known at all; None: no deadlines
    late_rule: str | None = None
    no_times: bool = False

    @property
    def assignments(self) -> list[str]:
        """Assignment stems in the order of ``questions.csv``."""
        return list(dict.fromkeys(q.assignment for q in self.questions))

    @property
    def max_total(self) -> float:
        return sum(q.points for q in self.questions)


# --- reading OUT ---------------------------------------------------------------------------

def _number(text: str) -> float:
    """A points cell; an empty or malformed one counts as 0 so one bad cell spoils no page."""
    try:
        return float(text)
    except (TypeError, ValueError):
        return 0.0


def read_questions(out: Path) -> list[Question]:
    """The questions of ``questions.csv``; a file without the ``manual`` column (written before
    there were written questions) lists autograded questions only."""
    return [Question(row["assignment"], row["question"], _number(row["points"]),
                     written=(row.get("manual") or "").strip().lower() == "true")
            for row in read_csv(out / "questions.csv")]


def _points(questions: list[Question], row: dict[str, str]) -> dict[str, float]:
    """A row's points; an empty cell of a written question means not graded yet, so is absent."""
    return {q.column: _number(row.get(q.column, "")) for q in questions
            if not (q.written and not (row.get(q.column) or "").strip())}


def _result_folders(out: Path) -> dict[str, Path]:
    """Student id -> results folder, from a listing rather than from the id.

    Looking folders up in a listing means a hostile id ("..", "../x") can never point the
    reader outside ``OUT/results``.
    """
    folder = out / "results"
    if not folder.is_dir():
        return {}
    return {p.name: p for p in folder.iterdir() if p.is_dir() and not p.is_symlink()}


def _read_results(folder: Path | None, assignments: list[str]) -> dict[str, dict]:
    found: dict[str, dict] = {}
    for stem in assignments if folder else []:
        if (record := results.read_assignment(folder, stem)) is not None:
            found[stem] = record
    return found


def _notes(folder: Path | None, row: dict[str, str]) -> list[str]:
    """The student's notes as grading kept them (``results.NOTES_FILE``). Where none were kept
    (an OUT graded before they were), the notes column of ``grades.csv`` is shown as it is, as
    one note: it joins notes with "; ", which a note may hold too, so it is never split."""
    kept = results.read_notes(folder) if folder is not None else None
    if kept is not None:
        return kept
    joined = row.get("notes") or ""
    return [joined] if joined else []


def load_class(out: Path) -> ClassResults:
    """Everything the pages show, read from a graded OUT folder."""
    questions = read_questions(out)
    assignments = list(dict.fromkeys(q.assignment for q in questions))
    folders = _result_folders(out)
    comments = read_comments(out)
    changed = read_overrides(out)
    late = lateness.read_lateness(out)
    students = []
    for row in read_csv(out / "grades.csv"):
        student = row.get("student") or ""
        folder = folders.get(student)
        students.append(Student(
            student=student,
            points=_points(questions, row),
            total=_number(row.get("total", "")),
            notes=_notes(folder, row),
            results=_read_results(folder, assignments),
            comments=comments.get(student, {}),
            overrides=changed.get(student, {}),
            late=late.students.get(student, {}) if late is not None else {},
            penalties={stem: _number(row.get(lateness.penalty_column(stem), ""))
                       for stem in assignments if row.get(lateness.penalty_column(stem))},
            name=results.read_name(folder),
        ))
    students.sort(key=lambda s: s.student)
    return ClassResults(questions, students, late.rule if late is not None else None,
                        late.no_times if late is not None else False)


# --- the page --------------------------------------------------------------------------------

@dataclass
class CaseView:
    label: str
    message: str


@dataclass
class QuestionView:
    name: str
    earned: float
    possible: float
    status: str
    #: a written question (graded by hand), and whether it is still to be graded
    manual: bool
    pending: bool
    public_passed: int
    public_total: int
    hidden_passed: int
    hidden_total: int
    failures: list[CaseView]
    #: the teaching team's comment on the answer
    comment: str = ""
    #: the autograded points a TA's override replaced (None: not overridden), and the TA's reason
    autograded: float | None = None
    reason: str = ""


@dataclass
class LateView:
    """An assignment's hand-in, as its student reads it."""
    due: str
    #: the course's due time, when an extension moved this student's
    extended_from: str
    cutoff: str
    handed_in: str
    #: where the hand-in time came from, in words
    source: str
    days_late: int
    penalty: float
    rule: str
    #: the assignment's points before and after the penalty
    before: float
    after: float


@dataclass
class AssignmentView:
    name: str
    earned: float
    possible: float
    problem: str | None
    recorded: bool
    questions: list[QuestionView]
    late: LateView | None = None


def _status(earned: float, possible: float) -> str:
    """A CSS class for a score: full, partial or none."""
    if possible > 0 and earned >= possible - TOLERANCE:
        return "full"
    return "partial" if earned > TOLERANCE else "none"


def _failures(cases: list[results.CaseOutcome]) -> list[CaseView]:
    views, hidden_number, public_number = [], 0, 0
    for case in cases:
        if case.hidden:
            hidden_number += 1
        else:
            public_number += 1
        if case.passed:
            continue
        if case.hidden:
            points = case.possible
            label = f"Hidden test {hidden_number} ({points:g} point{'s' if points != 1 else ''})"
        else:
            label = f"Public check {public_number} (0 points, for you to test with)"
        views.append(CaseView(label, case.message))
    return views


def _question_view(question: Question, student: Student, record: dict | None) -> QuestionView:
    cases = [c for c in (record or {}).get("cases", []) if c.question == question.name]
    public = [c for c in cases if not c.hidden]
    hidden = [c for c in cases if c.hidden]
    earned = student.points.get(question.column, 0.0)
    pending = question.written and question.column not in student.points
    override = None if question.written else student.overrides.get(question.column)
    return QuestionView(
        name=question.name, earned=earned, possible=question.points,
        status="pending" if pending else _status(earned, question.points),
        manual=question.written, pending=pending,
        public_passed=sum(1 for c in public if c.passed), public_total=len(public),
        hidden_passed=sum(1 for c in hidden if c.passed), hidden_total=len(hidden),
        failures=_failures(cases), comment=student.comments.get(question.column, ""),
        autograded=override.autograded if override else None,
        reason=override.reason if override else "",
    )


def assignment_views(data: ClassResults, student: Student) -> list[AssignmentView]:
    views = []
    for stem in data.assignments:
        record = student.results.get(stem)
        questions = [_question_view(q, student, record)
                     for q in data.questions if q.assignment == stem]
        problem = record.get("problem") if record else None
        before = sum(q.earned for q in questions)
        penalty = student.penalties.get(stem, 0.0)
        assessment = student.late.get(stem)
        late = None if assessment is None else LateView(
            due=shown_time(assessment.due), extended_from=shown_time(assessment.extended_from),
            cutoff=shown_time(assessment.cutoff), handed_in=shown_time(assessment.handed_in),
            source=lateness.SOURCES.get(assessment.source, assessment.source),
            days_late=assessment.days_late, penalty=penalty, rule=assessment.rule,
            before=before, after=before - penalty)
        views.append(AssignmentView(
            name=stem, earned=before - penalty,
            possible=sum(q.possible for q in questions),
            problem=str(problem) if problem else None, recorded=record is not None,
            questions=questions, late=late,
        ))
    return views


def shown_time(iso: str) -> str:
    """An ISO 8601 time as a page shows it: "2026-10-09 23:59 (UTC+02:00)"; "" stays ""."""
    try:
        when = datetime.datetime.fromisoformat(iso)
    except ValueError:
        return iso
    zone = when.strftime("%z")
    zone = f"UTC{zone[:3]}:{zone[3:]}" if zone not in ("", "+0000") else "UTC"
    seconds = ":%S" if when.second else ""
    return when.strftime(f"%Y-%m-%d %H:%M{seconds}") + f" ({zone})"



#: Its own style sheet, nothing else: no script, no image.
STYLE = embedded("feedback.css")
CSP = content_security_policy(styles=[STYLE])
PAGE = template("feedback.html.j2")


def render_page(data: ClassResults, student: Student) -> str:
    pending = sum(q.points for q in data.questions
                  if q.written and q.column not in student.points)
    return PAGE.render(student=student, max_total=data.max_total, style=STYLE, csp=CSP,
                       pending=pending, late_points=sum(student.penalties.values()),
                       has_written=any(q.written for q in data.questions),
                       assignments=assignment_views(data, student))


def write_feedback(out: Path, data: ClassResults | None = None) -> list[Path]:
    """Write ``OUT/feedback/<slug>.html`` for every student of ``grades.csv``; returns the paths
    in the order of the (sorted) students."""
    data = data or load_class(out)
    folder = out / "feedback"
    written = []
    for student, name in zip(data.students, page_names([s.student for s in data.students])):
        path = folder / name
        write_atomically(path, render_page(data, student))
        written.append(path)
    return written


if __name__ == "__main__":
    for page in write_feedback(Path(sys.argv[1])):
        print(page)
