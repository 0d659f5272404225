"""One feedback page per student, ``OUT/feedback/<slug>.html``, read back from a graded OUT.

The pages are built only from what grading already wrote (``grades.csv``, ``questions.csv``,
``results/<student>/``: see ``results``), so they can be regenerated at any time without running
a notebook again. A page is meant to be handed to its student as is: it shows the points, the
problems with the submission and, for each failed check, the text grading kept for the student
(a check's own message, or an error's type and first line); no line of test code is ever kept,
since it would name the hidden checks. Student ids come from file names that students chose, so
every string is HTML-escaped (jinja2's autoescape) and every file name is a slug built here,
never the id itself. An error text comes from student code: its markdown images are shown as
text, and the page's Content-Security-Policy (``page_policy``) lets it load nothing at all.
"""

from __future__ import annotations

import hashlib
import re
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import jinja2
import markupsafe
from markdown_it import MarkdownIt

from . import results
from .gradebook import read_comments, read_csv, write_atomically
from .page_policy import content_security_policy, meta_tags, neutralise

#: Below this difference two point values are the same (the CSV holds ``%g`` text).
TOLERANCE = 1e-9
#: Messages are markdown (code spans, emphasis); raw HTML in them is shown as text, never run.
_MARKDOWN = MarkdownIt("commonmark", {"html": False, "linkify": False})

_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


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
    #: assignment -> its results record (``results.read_assignment``: its cases as
    #: ``results.CaseOutcome``); absent when the assignment left no record
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
        ))
    students.sort(key=lambda s: s.student)
    return ClassResults(questions, students)


# --- messages --------------------------------------------------------------------------------

def render_message(message: str) -> markupsafe.Markup:
    """A message as HTML: its markdown rendered, with raw HTML escaped (markdown-it's ``html``
    option off), links limited to markdown-it's safe schemes and images shown as text (a link is
    the reader's choice to follow; an image would be fetched by merely opening the page)."""
    env: dict = {}
    tokens = neutralise(_MARKDOWN.parse(message, env))
    return markupsafe.Markup(_MARKDOWN.renderer.render(tokens, _MARKDOWN.options, env))


# --- file names ------------------------------------------------------------------------------

def _digest(student: str) -> str:
    return hashlib.sha256(student.encode("utf-8", "surrogatepass")).hexdigest()[:10]


def _slug(student: str) -> str:
    """A file-name-safe stem for one id: the id itself when it is already safe, else a cleaned
    prefix plus a hash of the id, so two ids that clean to the same text stay apart."""
    cleaned = _UNSAFE.sub("_", student).strip("._-")[:60]
    if cleaned and cleaned == student:
        return cleaned
    return f"{cleaned or 'student'}-{_digest(student)}"


def page_names(students: list[str]) -> list[str]:
    """File names (``<slug>.html``) for a list of ids, unique even ignoring case (for case-
    insensitive file systems).

    Safe ids that clash ignoring case ("Alice", "alice") both get a hash suffix, so a student's
    name does not depend on the order of the list; only an id listed twice gets "-2".
    """
    distinct = set(students)
    clashes = Counter(_slug(student).lower() for student in distinct)
    names: list[str] = []
    taken: set[str] = set()
    for student in students:
        stem = _slug(student)
        if clashes[stem.lower()] > 1 and stem == student:
            stem = f"{stem}-{_digest(student)}"
        name, number = f"{stem}.html", 1
        while name.lower() in taken:
            number += 1
            name = f"{stem}-{number}.html"
        taken.add(name.lower())
        names.append(name)
    return names


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
    pending = question.manual and question.column not in student.points
    return QuestionView(
        name=question.name, earned=earned, possible=question.points,
        status="pending" if pending else _status(earned, question.points),
        manual=question.manual, pending=pending,
        public_passed=sum(1 for c in public if c.passed), public_total=len(public),
        hidden_passed=sum(1 for c in hidden if c.passed), hidden_total=len(hidden),
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


ENVIRONMENT = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined,
                                  trim_blocks=True, lstrip_blocks=True)
ENVIRONMENT.filters["pts"] = lambda value: f"{value:g}"
ENVIRONMENT.filters["markdown"] = render_message
ENVIRONMENT.filters["policy"] = meta_tags

STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif;
       max-width: 60rem; margin: 2rem auto; padding: 0 1rem; color: #1d2433; line-height: 1.45; }
h1 { margin-bottom: .2rem; } h1 .id { font-family: ui-monospace, monospace; word-break: break-all; }
.total { font-size: 1.3rem; margin: .3rem 0 1.2rem; }
.notes { border: 2px solid #c0392b; background: #fdecea; border-radius: 6px; padding: .6rem 1rem;
         margin: 1rem 0; }
.notes h2 { margin: .2rem 0 .4rem; color: #a93226; font-size: 1.15rem; }
.notes li { white-space: pre-wrap; word-break: break-word; }
.about { background: #eef3fb; border-left: 4px solid #3c6fb4; padding: .5rem 1rem; margin: 1rem 0; }
section.assignment { border-top: 1px solid #ccd; margin-top: 1.5rem; }
h2 .score, h3 .score { float: right; font-weight: normal; }
table { border-collapse: collapse; width: 100%; margin: .5rem 0; }
th, td { border: 1px solid #ccd; padding: .3rem .5rem; text-align: left; vertical-align: top; }
th { background: #f1f3f8; } td.num { text-align: right; white-space: nowrap; }
tr.full td.points { background: #e3f4e8; } tr.partial td.points { background: #fff4d6; }
tr.none td.points { background: #fbe3e1; } tr.pending td.points { background: #eef0f4; }
.failure { margin: .35rem 0; } .failure .label { font-weight: 600; }
.failure .message { word-break: break-word; margin: .15rem 0 0; background: #f7f7f9;
                    padding: .1rem .5rem; border-radius: 4px; }
.failure .message p { margin: .3rem 0; }
.failure code { font-family: ui-monospace, monospace; font-size: .9rem; }
.ta-comment { white-space: pre-wrap; } .ok { color: #1e7b3a; } .problem { color: #a93226; font-weight: 600; }
"""
#: Its own style sheet, nothing else: no script, no image.
CSP = content_security_policy(styles=[STYLE])

PAGE = ENVIRONMENT.from_string("""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
{{ csp | policy }}
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Feedback for {{ student.student }}</title>
<style>{{ style | safe }}</style>
</head>
<body>
<h1>Feedback for <span class="id">{{ student.student }}</span></h1>
<p class="total">Total: <strong>{{ student.total | pts }} / {{ max_total | pts }}</strong> points</p>
{% if pending %}
<p class="pending-note">Written questions worth {{ pending | pts }} point{{ "s" if pending != 1 }} are not graded yet; they count 0 in this total for now.</p>
{% endif %}
{% if student.notes %}
<div class="notes" id="problems">
<h2>Problems with your submission</h2>
<p>These may have cost you points; read them first.</p>
<ul>
{% for note in student.notes %}
<li>{{ note }}</li>
{% endfor %}
</ul>
</div>
{% endif %}
<div class="about">
<p><strong>How this was graded.</strong> Each question has <em>public checks</em>, the ones you
could run yourself with <code>grader.check</code>; they are worth 0 points and only help you.
Your grade is decided by the <em>hidden tests</em>, which try your code on other inputs. For a
failed hidden test you see what went wrong, not the inputs or expected values themselves.{% if has_written %} Written answers are graded by the teaching team.{% endif %}</p>
</div>
{% for assignment in assignments %}
<section class="assignment">
<h2>{{ assignment.name }} <span class="score">{{ assignment.earned | pts }} / {{ assignment.possible | pts }} points</span></h2>
{% if assignment.problem %}
<p class="problem">Not graded: {{ assignment.problem }}</p>
{% elif not assignment.recorded %}
<p class="problem">No test results for this assignment{% if student.notes %} (see the problems above){% endif %}.</p>
{% endif %}
<table>
<thead><tr><th>Question</th><th>Points</th><th>Hidden tests passed</th><th>Public checks passed</th></tr></thead>
<tbody>
{% for q in assignment.questions %}
{% if q.manual %}
<tr class="{{ q.status }}"><td>{{ q.name }}</td><td class="num points">{% if q.pending %}not graded yet / {{ q.possible | pts }}{% else %}{{ q.earned | pts }} / {{ q.possible | pts }}{% endif %}</td>
<td colspan="2">written answer, graded by the teaching team</td></tr>
{% if q.comment %}
<tr class="comment"><td colspan="4"><strong>Comment from the teaching team:</strong> <span class="ta-comment">{{ q.comment }}</span></td></tr>
{% endif %}
{% else %}
<tr class="{{ q.status }}"><td>{{ q.name }}</td><td class="num points">{{ q.earned | pts }} / {{ q.possible | pts }}</td>
<td class="num">{% if q.hidden_total %}{{ q.hidden_passed }} of {{ q.hidden_total }}{% else %}&ndash;{% endif %}</td>
<td class="num">{% if q.public_total %}{{ q.public_passed }} of {{ q.public_total }}{% else %}&ndash;{% endif %}</td></tr>
{% endif %}
{% endfor %}
</tbody>
</table>
{% for q in assignment.questions if q.failures %}
<h3>{{ q.name }} <span class="score">{{ q.earned | pts }} / {{ q.possible | pts }}</span></h3>
{% for failure in q.failures %}
<div class="failure"><span class="label">{{ failure.label }} failed:</span>
<div class="message">{{ failure.message | markdown }}</div></div>
{% endfor %}
{% endfor %}
{% if assignment.recorded and not assignment.problem and not assignment.questions | selectattr("failures") | list %}
<p class="ok">Every check passed.</p>
{% endif %}
</section>
{% endfor %}
</body>
</html>
""")


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
