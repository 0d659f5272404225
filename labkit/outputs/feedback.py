"""One feedback page per student, ``OUT/feedback/<slug>.html``, read back from a graded OUT.

The pages are built only from what grading already wrote (``grades.csv``, ``questions.csv``,
``results/<student>/<assignment>.json``), so they can be regenerated at any time without running
a notebook again. A page is meant to be handed to its student as is: it shows the points, the
problems with the submission and, for each failed check, only the part of otter's message that
the check wrote for students. The line of test code otter quotes is never shown, since it names
the hidden checks. Student ids come from file names that students chose, so every string is
HTML-escaped (jinja2's autoescape) and every file name is a slug (``page_files``), never the id
itself. An error text comes from student code: its markdown images are shown as text, and the
page's Content-Security-Policy (``page_policy``) lets it load nothing at all. The page is
``templates/feedback.html.j2`` with ``static/feedback.css``.
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

from .gradebook import read_comments, read_csv, write_atomically
from .page_files import page_names
from .page_policy import content_security_policy
from .templating import embedded, template

#: Exception types whose text the checks write for students: shown whole, without the type
#: name. ``CheckFailed`` and its subclasses (``labkit.checks.core``: a training too slow for its
#: budget, a call that failed only for where its tensors live, a call that stopped the
#: notebook's process: ``labkit.grading.standins``) carry the check's own advice, so
#: they are never cut; only a student's own error text is (``MAX_ERROR_CHARS``).
STUDENT_FACING = ("CheckFailed", "TooSlow", "PlacementFailed", "NotebookStopped",
                  "AssertionError")
#: What a student sees when a message cannot be parsed safely (so nothing else leaks).
UNREADABLE = "This check failed (no further detail is available)."
EMPTY = "This check failed without a message."
#: Below this difference two point values are the same (the CSV holds ``%g`` text).
TOLERANCE = 1e-9
#: Longest error text of student code shown (its type and first line): enough to act on, too
#: little to carry hidden inputs out through an exception's text.
MAX_ERROR_CHARS = 200

_HEADER = re.compile(r"^Error at line \d+ in test .*:$")
_EXCEPTION = re.compile(r"^([A-Za-z_][\w.]*): ?(.*)$", re.DOTALL)
#: Where a fragment of the "; "-joined notes column starts a new note ("<prefix>: ...").
_NOTE_START = re.compile(r"^[^\s:;][^:;]*: |^no notebook found$")


@dataclass(frozen=True)
class Question:
    assignment: str
    name: str
    points: float
    #: a written question, graded by hand (its points come from the teaching team's scores)
    manual: bool = False

    @property
    def column(self) -> str:
        """The question's column in ``grades.csv``."""
        return f"{self.assignment}/{self.name}"


@dataclass
class Student:
    student: str
    #: "<assignment>/<question>" -> points earned; a written question not graded yet is absent
    points: dict[str, float]
    total: float
    notes: list[str]
    #: assignment -> its results JSON (absent when the assignment left no record)
    results: dict[str, dict] = field(default_factory=dict)
    #: written question's column -> the teaching team's comment
    comments: dict[str, str] = field(default_factory=dict)

    @property
    def graded(self) -> bool:
        """Whether at least one of the student's notebooks ran and was tested."""
        return any(record.get("problem") is None for record in self.results.values())


@dataclass
class ClassResults:
    questions: list[Question]
    students: list[Student]

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


def split_notes(joined: str) -> list[str]:
    """The notes of ``grades.csv`` as a list.

    The column joins notes with "; ", but a note may itself hold "; " ("...; graded without
    code cell 3"), so a fragment that does not start like a note ("<prefix>: ") is glued back
    onto the one before it.
    """
    notes: list[str] = []
    for fragment in joined.split("; ") if joined else []:
        if notes and not _NOTE_START.match(fragment):
            notes[-1] = f"{notes[-1]}; {fragment}"
        else:
            notes.append(fragment)
    return notes


def read_questions(out: Path) -> list[Question]:
    """The questions of ``questions.csv``; a file without the ``manual`` column (written before
    there were written questions) lists autograded questions only."""
    return [Question(row["assignment"], row["question"], _number(row["points"]),
                     (row.get("manual") or "").strip().lower() == "true")
            for row in read_csv(out / "questions.csv")]


def _points(questions: list[Question], row: dict[str, str]) -> dict[str, float]:
    """A row's points; an empty cell of a written question means not graded yet, so is absent."""
    return {q.column: _number(row.get(q.column, "")) for q in questions
            if not (q.manual and not (row.get(q.column) or "").strip())}


def _result_folders(out: Path) -> dict[str, Path]:
    """Student id -> results folder, from a listing rather than from the id.

    Looking folders up in a listing means a hostile id ("..", "../x") can never point the
    reader outside ``OUT/results``.
    """
    results = out / "results"
    if not results.is_dir():
        return {}
    return {p.name: p for p in results.iterdir() if p.is_dir() and not p.is_symlink()}


def _read_results(folder: Path | None, assignments: list[str]) -> dict[str, dict]:
    found: dict[str, dict] = {}
    for stem in assignments if folder else []:
        path = folder / f"{stem}.json"
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(record, dict):
            found[stem] = record
    return found


def load_class(out: Path) -> ClassResults:
    """Everything the pages show, read from a graded OUT folder."""
    questions = read_questions(out)
    assignments = list(dict.fromkeys(q.assignment for q in questions))
    folders = _result_folders(out)
    comments = read_comments(out)
    students = []
    for row in read_csv(out / "grades.csv"):
        student = row.get("student") or ""
        students.append(Student(
            student=student,
            points=_points(questions, row),
            total=_number(row.get("total", "")),
            notes=split_notes(row.get("notes") or ""),
            results=_read_results(folders.get(student), assignments),
            comments=comments.get(student, {}),
        ))
    students.sort(key=lambda s: s.student)
    return ClassResults(questions, students)


# --- messages --------------------------------------------------------------------------------

def student_message(message: str) -> str:
    """The part of otter's failure message a student may see.

    Otter writes "❌ Test case failed", "Error at line N in test Q:", the one line of test code
    (which names hidden checks) and then "Type: text". Only "Type: text" is kept, without the type
    for the checks' own messages. A message in any other shape is replaced by a neutral
    sentence rather than shown, since it cannot be told apart from test code.
    """
    lines = message.split("\n")
    header = next((i for i, line in enumerate(lines) if _HEADER.match(line)), None)
    if header is None or header + 2 >= len(lines):
        return UNREADABLE
    match = _EXCEPTION.match("\n".join(lines[header + 2:]))
    if match is None:
        return UNREADABLE
    kind, text = match.group(1), match.group(2).strip()
    if kind.rsplit(".", 1)[-1] in STUDENT_FACING:
        return text or EMPTY
    whole = f"{kind}: {text.splitlines()[0]}" if text else kind
    return whole if len(whole) <= MAX_ERROR_CHARS else whole[: MAX_ERROR_CHARS - 3] + "..."


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
    #: the teaching team's comment on a written answer
    comment: str = ""


@dataclass
class AssignmentView:
    name: str
    earned: float
    possible: float
    problem: str | None
    recorded: bool
    questions: list[QuestionView]


def _status(earned: float, possible: float) -> str:
    """A CSS class for a score: full, partial or none."""
    if possible > 0 and earned >= possible - TOLERANCE:
        return "full"
    return "partial" if earned > TOLERANCE else "none"


def _failures(cases: list[dict]) -> list[CaseView]:
    views, hidden_number, public_number = [], 0, 0
    for case in cases:
        hidden = bool(case.get("hidden"))
        if hidden:
            hidden_number += 1
        else:
            public_number += 1
        if case.get("passed"):
            continue
        if hidden:
            points = _number(case.get("points"))
            label = f"Hidden test {hidden_number} ({points:g} point{'s' if points != 1 else ''})"
        else:
            label = f"Public check {public_number} (0 points, for you to test with)"
        views.append(CaseView(label, student_message(str(case.get("message") or ""))))
    return views


def _question_view(question: Question, student: Student, record: dict | None) -> QuestionView:
    cases = [c for c in (record or {}).get("cases", [])
             if isinstance(c, dict) and c.get("question") == question.name]
    public = [c for c in cases if not c.get("hidden")]
    hidden = [c for c in cases if c.get("hidden")]
    earned = student.points.get(question.column, 0.0)
    pending = question.manual and question.column not in student.points
    return QuestionView(
        name=question.name, earned=earned, possible=question.points,
        status="pending" if pending else _status(earned, question.points),
        manual=question.manual, pending=pending,
        public_passed=sum(1 for c in public if c.get("passed")), public_total=len(public),
        hidden_passed=sum(1 for c in hidden if c.get("passed")), hidden_total=len(hidden),
        failures=_failures(cases), comment=student.comments.get(question.column, ""),
    )


def assignment_views(data: ClassResults, student: Student) -> list[AssignmentView]:
    views = []
    for stem in data.assignments:
        record = student.results.get(stem)
        questions = [_question_view(q, student, record)
                     for q in data.questions if q.assignment == stem]
        problem = record.get("problem") if record else None
        views.append(AssignmentView(
            name=stem, earned=sum(q.earned for q in questions),
            possible=sum(q.possible for q in questions),
            problem=str(problem) if problem else None, recorded=record is not None,
            questions=questions,
        ))
    return views


#: Its own style sheet, nothing else: no script, no image.
STYLE = embedded("feedback.css")
CSP = content_security_policy(styles=[STYLE])
PAGE = template("feedback.html.j2")


def render_page(data: ClassResults, student: Student) -> str:
    pending = sum(q.points for q in data.questions
                  if q.manual and q.column not in student.points)
    return PAGE.render(student=student, max_total=data.max_total, style=STYLE, csp=CSP,
                       pending=pending,
                       has_written=any(q.manual for q in data.questions),
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
