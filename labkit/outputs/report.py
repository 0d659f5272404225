"""``OUT/report.html``: the class at a glance, for the teaching team.

One self-contained page (inline CSS, plots as inline base64 PNG drawn with matplotlib's Agg
backend), so it can be mailed or archived as a single file. Its Content-Security-Policy
(``page_policy``) allows its own style sheet and ``data:`` images, the kit's charts, and nothing
else: no script, and nothing from any other place. It is built only from what grading
wrote to OUT and holds no timestamps, so the same OUT always gives the same bytes and a rerun
shows up in ``diff`` only when results changed.
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

from .feedback import ENVIRONMENT, TOLERANCE, ClassResults, Question, load_class, page_names
from .gradebook import has_problems, write_atomically
from labkit.course.written import page_name
from .page_policy import EMBEDDED, content_security_policy

#: How many of the most common failures the report lists.
TOP_FAILURES = 15

_INPUTS = re.compile(r"for inputs \((?:[^()]|\([^()]*\))*\)")
_SHAPE = re.compile(r"\(\d+(?:,\s*\d+)*,?\)")
_NUMBER = re.compile(r"(?<![\w.])[-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?(?!\w)")
_ASSIGNMENT_NUMBER = re.compile(r"^(\d+)_(\d+)_")


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
                  if not question.manual or question.column in s.points]
        stats.append(QuestionStats(
            question=question,
            mean=sum(earned) / len(earned) if earned else 0.0,
            full=sum(1 for e in earned if question.points > 0 and e >= question.points - TOLERANCE),
            students=len(earned), total_students=len(data.students),
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
                key = (f"{stem}/{case.question}", normalise(case.message))
                who[key].add(index)
                kinds[key].add("hidden" if case.hidden else "public")
    ranked = sorted(who, key=lambda key: (-len(who[key]), key))
    return [Failure(column, " + ".join(sorted(kinds[(column, message)])), message,
                    len(who[(column, message)]))
            for column, message in ranked[:top]]


# --- plots -------------------------------------------------------------------------------------

def _png(figure: Figure) -> str:
    """The figure as base64 PNG text, without the software-version stamp, so the bytes depend
    only on the data."""
    FigureCanvasAgg(figure)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100, metadata={"Software": None})
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _short(question: Question) -> str:
    """A bar label: "1.3 softmax_regression_loss" rather than the whole assignment stem."""
    match = _ASSIGNMENT_NUMBER.match(question.assignment)
    prefix = f"{match.group(1)}.{match.group(2)}" if match else question.assignment
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

STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif;
       max-width: 64rem; margin: 2rem auto; padding: 0 1rem; color: #1d2433; line-height: 1.4; }
.counts { display: flex; gap: 1rem; margin: 1rem 0; }
.count { border: 1px solid #ccd; border-radius: 6px; padding: .5rem 1rem; min-width: 8rem; }
.count strong { display: block; font-size: 1.6rem; }
table { border-collapse: collapse; width: 100%; margin: .5rem 0 1rem; }
th, td { border: 1px solid #ccd; padding: .3rem .5rem; text-align: left; vertical-align: top; }
th { background: #f1f3f8; } td.num { text-align: right; white-space: nowrap; }
td.message, td.notes { word-break: break-word; } td.notes ul { margin: 0; padding-left: 1.1rem; }
td.student { font-family: ui-monospace, monospace; word-break: break-all; }
img { max-width: 100%; display: block; margin: .5rem 0; }
"""
#: The charts are embedded so that the report stays one file to mail or archive; no student text
#: is rendered as markup on it, and a ``data:`` image reaches no network.
CSP = content_security_policy(styles=[STYLE], images=[EMBEDDED])

PAGE = ENVIRONMENT.from_string("""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
{{ csp | policy }}
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Class report</title>
<style>{{ style | safe }}</style>
</head>
<body>
<h1>Class report</h1>
<div class="counts" id="counts">
<div class="count"><strong>{{ students }}</strong>students</div>
<div class="count"><strong>{{ graded }}</strong>graded (a notebook ran)</div>
<div class="count"><strong>{{ problems | length }}</strong>with problems</div>
</div>

<h2 id="totals">Distribution of totals</h2>
<img alt="Histogram of total points per student" src="data:image/png;base64,{{ histogram }}">

<h2 id="questions">Per question</h2>
<p>Means over all {{ students }} students of grades.csv; work not handed in counts as 0.
{% if stats | selectattr("question.manual") | list %}Written questions, graded by hand, are
marked &#9998;: their means are over the students graded so far.{% endif %}</p>
<table id="questions-table">
<thead><tr><th>Assignment</th><th>Question</th><th>Points possible</th><th>Mean points</th>
<th>Mean (% of possible)</th><th>Full marks</th></tr></thead>
<tbody>
{% for s in stats %}
{% if s.question.manual %}
<tr><td>{{ s.question.assignment }}</td><td>&#9998; <a href="manual/{{ pages[s.question.column] }}">{{ s.question.name }}</a>
({{ s.students }} of {{ s.total_students }} graded)</td>
{% else %}
<tr><td>{{ s.question.assignment }}</td><td>{{ s.question.name }}</td>
{% endif %}
<td class="num">{{ s.question.points | pts }}</td>
{% if s.students %}
<td class="num">{{ "%.2f" | format(s.mean) }}</td>
<td class="num">{{ "%.0f" | format(100 * s.mean_share) }}%</td>
<td class="num">{{ s.full }} of {{ s.students }} ({{ "%.0f" | format(100 * s.full_share) }}%)</td></tr>
{% else %}
<td class="num">&mdash;</td><td class="num">&mdash;</td><td class="num">&mdash;</td></tr>
{% endif %}
{% endfor %}
</tbody>
</table>
<img alt="Bar chart of mean points and share of full marks per question" src="data:image/png;base64,{{ chart }}">

<h2 id="failures">Checks that fail most often</h2>
<p>Failed checks grouped by question and by their message to students, with inputs, shapes and
numbers blanked (&hellip;); counted in students. Top {{ top }}.</p>
{% if failures %}
<table id="failures-table">
<thead><tr><th>#</th><th>Question</th><th>Check</th><th>Message (normalised)</th><th>Students</th></tr></thead>
<tbody>
{% for f in failures %}
<tr><td class="num">{{ loop.index }}</td><td>{{ f.column }}</td><td>{{ f.kind }}</td>
<td class="message">{{ f.message }}</td><td class="num">{{ f.students }}</td></tr>
{% endfor %}
</tbody>
</table>
{% else %}
<p>No check failed.</p>
{% endif %}

<h2 id="problems">Submissions with problems</h2>
{% if problems %}
<table id="problems-table">
<thead><tr><th>Student</th><th>Total</th><th>Problems</th></tr></thead>
<tbody>
{% for student, page in problems %}
<tr><td class="student"><a href="feedback/{{ page }}">{{ student.student }}</a></td>
<td class="num">{{ student.total | pts }}</td>
<td class="notes"><ul>{% for note in student.notes %}<li>{{ note }}</li>{% endfor %}</ul></td></tr>
{% endfor %}
</tbody>
</table>
{% else %}
<p>None.</p>
{% endif %}
</body>
</html>
""")


def render_report(data: ClassResults) -> str:
    stats = question_stats(data)
    names = page_names([s.student for s in data.students])
    problems = [(s, name) for s, name in zip(data.students, names) if has_problems(s.notes)]
    return PAGE.render(
        style=STYLE, csp=CSP, students=len(data.students),
        graded=sum(1 for s in data.students if s.graded), problems=problems,
        histogram=totals_histogram(data), stats=stats, chart=questions_chart(stats),
        failures=common_failures(data), top=TOP_FAILURES,
        pages={q.column: page_name(q.assignment, q.name) for q in data.questions if q.manual},
    )


def write_report(out: Path, data: ClassResults | None = None) -> Path:
    """Write ``OUT/report.html``; returns its path."""
    path = out / "report.html"
    write_atomically(path, render_report(data or load_class(out)))
    return path


if __name__ == "__main__":
    print(write_report(Path(sys.argv[1])))
