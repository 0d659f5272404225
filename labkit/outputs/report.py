"""``OUT/report.html``: the class at a glance, for the teaching team.

One self-contained page (inline CSS, plots as inline base64 PNG drawn with matplotlib's Agg
backend), so it can be mailed or archived as a single file. Its Content-Security-Policy
(``page_policy``) allows its own style sheet and ``data:`` images, the kit's charts, and nothing
else: no script, and nothing from any other place. It is built only from what grading
wrote to OUT and holds no timestamps, so the same OUT always gives the same bytes and a rerun
shows up in ``diff`` only when results changed. The page is ``templates/report.html.j2`` with
``static/report.css``.
"""

from __future__ import annotations

import base64
import io
import re
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from .feedback import TOLERANCE, ClassResults, Student, load_class, shown_time
from .lateness import SOURCES, Assessment
from .gradebook import has_problems, write_atomically
from labkit.course.questions import Question, column_key
from .page_files import page_names, written_page
from .page_policy import EMBEDDED, content_security_policy
from .templating import embedded, template

#: How many of the most common failures the report lists.
TOP_FAILURES = 15

_INPUTS = re.compile(r"for inputs \((?:[^()]|\([^()]*\))*\)")
_SHAPE = re.compile(r"\(\d+(?:,\s*\d+)*,?\)")
_NUMBER = re.compile(r"(?<![\w.])[-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?(?!\w)")
#: An assignment's number: the numbers its stem starts with (``3_10_attention`` -> 3.10).
_ASSIGNMENT_NUMBER = re.compile(r"^(\d+(?:_\d+)*)_")


# --- numbers -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class QuestionStats:
    question: Question
    mean: float
    full: int
    #: the students the mean is over: all of them, or for a written question those graded so far
    students: int
    #: every student of grades.csv
    total_students: int = 0
    #: the students whose autograded score a TA changed (``overrides``)
    overridden: int = 0

    @property
    def mean_share(self) -> float:
        """Mean points as a share of the points possible (0 when the question is worth 0)."""
        return self.mean / self.question.points if self.question.points else 0.0

    @property
    def full_share(self) -> float:
        return self.full / self.students if self.students else 0.0


@dataclass(frozen=True)
class Failure:
    column: str
    kind: str
    message: str
    students: int


def question_stats(data: ClassResults) -> list[QuestionStats]:
    """Per question, over every student of ``grades.csv`` (work not handed in counts as 0, as it
    does in the grade); for a written question, over the students whose answer has been graded."""
    stats = []
    for question in data.questions:
        earned = [s.points.get(question.column, 0.0) for s in data.students
                  if not question.written or question.column in s.points]
        stats.append(QuestionStats(
            question=question,
            mean=sum(earned) / len(earned) if earned else 0.0,
            full=sum(1 for e in earned if question.points > 0 and e >= question.points - TOLERANCE),
            students=len(earned), total_students=len(data.students),
            overridden=sum(1 for s in data.students if question.column in s.overrides),
        ))
    return stats


def normalise(message: str) -> str:
    """A failure's student-facing first line with its specifics (inputs, shapes, numbers) blanked,
    so that the same mistake made on different inputs or by different amounts groups together."""
    text = message.split("\n", 1)[0]
    text = _INPUTS.sub("for inputs (…)", text)
    text = _SHAPE.sub("(…)", text)
    return _NUMBER.sub("…", text)


def common_failures(data: ClassResults, top: int = TOP_FAILURES) -> list[Failure]:
    """The failed checks that the most students share, grouped by question and message."""
    who: dict[tuple[str, str], set[int]] = defaultdict(set)
    kinds: dict[tuple[str, str], set[str]] = defaultdict(set)
    for index, student in enumerate(data.students):
        for stem, record in student.results.items():
            for case in record.get("cases", []):
                if case.passed:
                    continue
                key = (column_key(stem, case.question), normalise(case.message))
                who[key].add(index)
                kinds[key].add("hidden" if case.hidden else "public")
    ranked = sorted(who, key=lambda key: (-len(who[key]), key))
    return [Failure(column, " + ".join(sorted(kinds[(column, message)])), message,
                    len(who[(column, message)]))
            for column, message in ranked[:top]]


@dataclass(frozen=True)
class LateRow:
    """One late submission, for the report's late-work table."""
    student: Student
    page: str
    stem: str
    assessment: Assessment
    penalty: float

    @property
    def handed_in(self) -> str:
        return shown_time(self.assessment.handed_in) or SOURCES.get(self.assessment.source, "")


# --- plots -------------------------------------------------------------------------------------

def _png(figure: Figure) -> str:
    """The figure as base64 PNG text, without the software-version stamp, so the bytes depend
    only on the data."""
    FigureCanvasAgg(figure)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100, metadata={"Software": None})
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _short(question: Question) -> str:
    """A bar label: "3.2 conv_forward" rather than the whole assignment stem."""
    match = _ASSIGNMENT_NUMBER.match(question.assignment)
    prefix = match.group(1).replace("_", ".") if match else question.assignment
    return f"{prefix} {question.name}"


def totals_histogram(data: ClassResults) -> str:
    """Histogram of the students' totals, one bin per point."""
    top = max([data.max_total, *(s.total for s in data.students)] or [1.0]) or 1.0
    figure = Figure(figsize=(8, 3.6), layout="constrained")
    axes = figure.add_subplot()
    bins = [float(edge) for edge in range(int(top) + 2)]
    axes.hist([s.total for s in data.students], bins=bins, color="#3c6fb4", edgecolor="white")
    axes.set_xlim(0, top + 1)
    axes.set_xlabel(f"total points (out of {data.max_total:g})")
    axes.set_ylabel("students")
    axes.yaxis.set_major_locator(MaxNLocator(integer=True))
    return _png(figure)


def questions_chart(stats: list[QuestionStats]) -> str:
    """Per question: mean points and share of full marks, both in % so questions compare."""
    # A written question nobody scored has no bars: say so, rather than let it read as 0%.
    labels = [_short(s.question) + ("" if s.students else " (not scored yet)") for s in stats]
    rows = list(range(len(stats)))
    figure = Figure(figsize=(8, 1.2 + 0.45 * max(len(stats), 1)), layout="constrained")
    axes = figure.add_subplot()
    height = 0.38
    axes.barh([r - height / 2 for r in rows], [100 * s.mean_share for s in stats], height,
              label="mean points (% of possible)", color="#3c6fb4")
    axes.barh([r + height / 2 for r in rows], [100 * s.full_share for s in stats], height,
              label="students with full marks (%)", color="#e59a2f")
    axes.set_yticks(rows, labels)
    axes.invert_yaxis()
    axes.set_xlim(0, 100)
    axes.set_xlabel("% (of points possible, or of students)")
    axes.set_ylabel("question")
    # Above the plot, outside it: inside, the legend would hide the last bars.
    figure.legend(loc="outside upper center", ncols=2, fontsize="small", frameon=False)
    return _png(figure)


# --- the page ----------------------------------------------------------------------------------

STYLE = embedded("report.css")
#: The charts are embedded so that the report stays one file to mail or archive; no student text
#: is rendered as markup on it, and a ``data:`` image reaches no network.
CSP = content_security_policy(styles=[STYLE], images=[EMBEDDED])

PAGE = template("report.html.j2")


def render_report(data: ClassResults) -> str:
    stats = question_stats(data)
    names = page_names([s.student for s in data.students])
    problems = [(s, name) for s, name in zip(data.students, names) if has_problems(s.notes)]
    late = [LateRow(s, name, stem, a, s.penalties.get(stem, 0.0))
            for s, name in zip(data.students, names) for stem, a in s.late.items() if a.late]
    return PAGE.render(
        late_rule=data.late_rule, no_times=data.no_times, late=late,
        assessed=sum(len(s.late) for s in data.students),
        late_points=sum(row.penalty for row in late),
        style=STYLE, csp=CSP, students=len(data.students),
        graded=sum(1 for s in data.students if s.graded), problems=problems,
        overrides=sum(len(s.overrides) for s in data.students),
        histogram=totals_histogram(data), stats=stats, chart=questions_chart(stats),
        failures=common_failures(data), top=TOP_FAILURES,
        pages={q.column: written_page(q.assignment, q.name) for q in data.questions if q.written},
    )


def write_report(out: Path, data: ClassResults | None = None) -> Path:
    """Write ``OUT/report.html``; returns its path."""
    path = out / "report.html"
    write_atomically(path, render_report(data or load_class(out)))
    return path


if __name__ == "__main__":
    print(write_report(Path(sys.argv[1])))
