"""One page per written question with every student's answer, and their index.

``make grade`` writes, for each written question of the masters, ``OUT/manual/<assignment>-
<question>.html``: the question, the reference solution (folded), then every student's answer in
order of student id, rendered from its markdown, each with an empty score box, so that one TA
grades one question across the class in one sitting. ``OUT/manual/index.html`` lists the pages.
The pages carry the kit's Content-Security-Policy (``page_policy``): no script but the scoring
form's, no image but the answers' own attachments, nothing fetched from anywhere else.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labkit.course.written import ANSWERED, NO_NOTEBOOK, Answer, StudentAnswers, WrittenQuestion

from .feedback import ENVIRONMENT, page_names
from .gradebook import read_comments, write_atomically
from .manual_scores import DEFAULT_SCORES_FILE
from .markdown import (ATTACHMENTS_FOLDER, MAX_ANSWER_HTML_BYTES, AttachmentFiles, render_answer,
                       render_markdown)
from .page_policy import ALIGN_STYLE, SAME_FOLDER, content_security_policy

# --- the pages -------------------------------------------------------------------------------

#: The scoring form: what the TA types is kept in the browser's localStorage (one entry per class,
#: shared by the question pages, so any page's download holds every question), starting from the
#: scores and comments recorded in the scores file. A kept entry remembers the recorded value it
#: started from; once the file says something else (it was merged, or edited by hand), the file
#: wins. "Download scores" writes the whole scores file: every written question, every student.
SCORING_SCRIPT = r"""
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("labkit-scores").textContent);
  var status = document.getElementById("saved");
  function recorded(column, student) {
    var byStudent = data.recorded[column] || {};
    return byStudent[student] || {points: "", comment: ""};
  }
  function load() {
    try { return JSON.parse(window.localStorage.getItem(data.key) || "{}") || {}; }
    catch (error) { return {}; }
  }
  function save(state) {
    try { window.localStorage.setItem(data.key, JSON.stringify(state)); return true; }
    catch (error) { status.textContent = "Cannot keep your entries in this browser: download them before closing the page."; return false; }
  }
  var state = load();
  Object.keys(state).forEach(function (key) {
    var entry = state[key], file = recorded(entry.column, entry.student);
    if (!entry.base || file.points !== entry.base.points || file.comment !== entry.base.comment) {
      delete state[key];
    }
  });
  save(state);
  function current(column, student) {
    var entry = state[column + "\n" + student];
    return entry ? entry : recorded(column, student);
  }
  function valid(text) {
    if (text === "") { return true; }
    var value = Number(text.replace(",", "."));  // "1,5": a decimal comma, as make grade reads it
    return /^\s*[0-9]*[.,]?[0-9]+\s*$/.test(text) && value >= 0 && value <= data.points + 1e-9;
  }
  var sections = document.querySelectorAll("section.answer");
  Array.prototype.forEach.call(sections, function (section) {
    var student = section.getAttribute("data-student");
    var points = section.querySelector("input.points");
    var comment = section.querySelector("textarea.comment");
    var entry = current(data.column, student);
    points.value = entry.points;
    comment.value = entry.comment;
    function check() { points.classList.toggle("invalid", !valid(points.value.trim())); }
    function changed() {
      check();
      state[data.column + "\n" + student] = {
        column: data.column, student: student, points: points.value.trim(),
        comment: comment.value.trim(), base: recorded(data.column, student)};
      if (save(state)) { status.textContent = "Kept in this browser; download when done."; }
    }
    points.addEventListener("input", changed);
    comment.addEventListener("input", changed);
    check();
  });
  function cell(value) {
    value = String(value);
    // Spreadsheet-safe, as gradebook.spreadsheet_safe: text that starts like a formula (or with
    // an apostrophe) gets a leading apostrophe; numbers stay numbers.
    if (/^[=+\-@\t\r']/.test(value) && !/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(value)) {
      value = "'" + value;
    }
    return /[",;\t\r\n]|^\s|\s$/.test(value) ? '"' + value.replace(/"/g, '""') + '"' : value;
  }
  document.getElementById("download").addEventListener("click", function () {
    var lines = [["student", "assignment", "question", "points", "comment"]];
    data.questions.forEach(function (question) {
      data.students.forEach(function (student) {
        var entry = current(question.column, student);
        lines.push([student, question.assignment, question.name, entry.points, entry.comment]);
      });
    });
    var text = lines.map(function (row) { return row.map(cell).join(","); }).join("\n") + "\n";
    var link = document.createElement("a");
    link.href = URL.createObjectURL(new Blob([text], {type: "text/csv"}));
    link.download = data.file;
    document.body.appendChild(link);
    link.click();
    link.remove();
    status.textContent = "Downloaded " + data.file + ": put it at " + data.path + " and run make grade.";
  });
}());
"""


STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif;
       max-width: 60rem; margin: 2rem auto; padding: 0 1rem; color: #1d2433; line-height: 1.45; }
.prompt, details.solution { background: #eef3fb; border-left: 4px solid #3c6fb4;
       padding: .3rem 1rem; margin: 1rem 0; }
details.solution { background: #eef8f0; border-color: #1e7b3a; }
.howto { font-size: .92rem; color: #44506a; }
section.answer { border-top: 1px solid #ccd; padding: .6rem 0 1rem; page-break-inside: avoid; }
section.answer h2 { font-size: 1.1rem; margin: .2rem 0 .5rem; display: flex; gap: 1rem;
       align-items: baseline; flex-wrap: wrap; }
.id { font-family: ui-monospace, monospace; word-break: break-all; }
.score { margin-left: auto; font-weight: normal; white-space: nowrap; }
.score input { width: 4rem; font-size: 1rem; padding: .1rem .3rem; border: 2px solid #1d2433; }
.score input.invalid { border-color: #a93226; background: #fbe3e1; }
textarea.comment { width: 100%; min-height: 2.6rem; font: inherit; font-size: .95rem;
       box-sizing: border-box; margin-top: .4rem; }
.toolbar { position: sticky; top: 0; background: #fff; padding: .5rem 0; z-index: 1;
       border-bottom: 1px solid #ccd; display: flex; gap: 1rem; align-items: center; }
.toolbar button { font-size: 1rem; padding: .3rem .8rem; }
#saved { font-size: .9rem; color: #44506a; }
.recorded { font-size: .85rem; color: #1e7b3a; font-weight: normal; }
.status { font-style: italic; color: #a93226; }
.note { font-size: .9rem; color: #8a5a00; }
.body { overflow-x: auto; word-break: break-word; }
.body img { max-width: 100%; }
.body pre { background: #f7f7f9; padding: .4rem .6rem; border-radius: 4px; white-space: pre-wrap; }
table { border-collapse: collapse; margin: .5rem 0; }
th, td { border: 1px solid #ccd; padding: .3rem .5rem; text-align: left; vertical-align: top; }
th { background: #f1f3f8; } td.num { text-align: right; }
code.tex { white-space: pre-wrap; }
math[display="block"] { margin: .4rem 0; }
""" + ALIGN_STYLE + "\n"

#: A question's page: its style sheet, the scoring form's script, and the attachments' files.
CSP = content_security_policy(styles=[STYLE], scripts=[SCORING_SCRIPT], images=[SAME_FOLDER])
#: The index: its style sheet only.
INDEX_CSP = content_security_policy(styles=[STYLE])

_HEAD = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
{{ csp | policy }}
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ title }}</title>
<style>{{ style | safe }}</style>
"""

QUESTION_PAGE = ENVIRONMENT.from_string(_HEAD + """</head>
<body>
<p><a href="index.html">All written questions</a></p>
<h1>{{ q.assignment }} &mdash; {{ q.name }} <small>({{ q.points | pts }} point{{ "s" if q.points != 1 }})</small></h1>
{% if prompt %}<div class="prompt">{{ prompt | safe }}</div>{% endif %}
{% if solution %}
<details class="solution"><summary>Reference solution</summary>{{ solution | safe }}</details>
{% endif %}
<p class="howto">{{ students | length }} submissions, in order of student id; {{ answered }} answered.
Type each student's points (0 to {{ q.points | pts }}) and, if you like, a comment for the student:
this browser keeps them while you work, on every written question's page. When done, click
<em>Download scores</em>: it writes one file with every written question's scores and comments;
put it at <code>{{ scores_file }}</code> (replacing the old one) and run <code>make grade</code> again
to merge them into <code>grades.csv</code> and the feedback pages. (The file can also be edited by
hand: columns <code>student,assignment,question,points,comment</code>.) Chrome, Edge and Chromium
share what you type across these pages; if a download lacks another page's entries (a browser that
keeps each file apart), download and run <code>make grade</code> after each question.
Math is shown as MathML, converted when the page was written; what could not be converted shows
as LaTeX source.</p>
<div class="toolbar"><button type="button" id="download">Download scores</button>
<span id="saved" role="status"></span></div>
{% for s in students %}
<section class="answer" id="{{ s.anchor }}" data-student="{{ s.student }}">
<h2><span class="id">{{ s.student }}</span>{% if s.entry_shown %} <small>({{ s.entry }})</small>{% endif %}
<label class="score">Points: <input class="points" type="text" inputmode="decimal" aria-label="points for {{ s.student }}"> / {{ q.points | pts }}
{% if s.recorded is not none %}<span class="recorded">recorded: {{ s.recorded | pts }}</span>{% endif %}</label></h2>
<textarea class="comment" aria-label="comment for {{ s.student }}" placeholder="Comment for the student (optional; shown on their feedback page)"></textarea>
{% for note in s.answer.notes %}<p class="note">{{ note }}</p>{% endfor %}
{% if s.answer.status == "answered" and s.too_large %}
<p class="status">This answer is too large to show here ({{ s.too_large }}): open the student's
notebook ({{ s.entry }}) to read it.</p>
{% elif s.answer.status == "answered" %}
<div class="body">{% for html in s.html %}{{ html | safe }}{% endfor %}</div>
{% elif s.answer.status == "no notebook" %}
<p class="status">Unanswered: no notebook for {{ q.assignment }} was submitted.</p>
{% elif s.answer.status == "not found" %}
<p class="status">Unanswered: the question is not in the submitted notebook.</p>
{% else %}
<p class="status">Unanswered.</p>
{% endif %}
</section>
{% endfor %}
<script type="application/json" id="labkit-scores">{{ data | safe }}</script>
<script>{{ scoring_script | safe }}</script>
</body>
</html>
""")

INDEX_PAGE = ENVIRONMENT.from_string(_HEAD + """</head>
<body>
<h1>Written questions</h1>
<p>One page per question with every student's answer, and a box for the points and one for a
comment per student. Score in the browser, then <em>Download scores</em> (on any page) and put
the file at <code>{{ scores_file }}</code>; <code>make grade</code> merges it into
<code>grades.csv</code> and the feedback pages.</p>
<table>
<thead><tr><th>Assignment</th><th>Question</th><th>Points</th><th>Answered</th><th>Scores recorded</th></tr></thead>
<tbody>
{% for row in rows %}
<tr><td>{{ row.q.assignment }}</td><td><a href="{{ row.q.page }}">{{ row.q.name }}</a></td>
<td class="num">{{ row.q.points | pts }}</td><td class="num">{{ row.answered }} of {{ row.students }}</td>
<td class="num">{{ row.recorded }} of {{ row.students }}</td></tr>
{% endfor %}
</tbody>
</table>
</body>
</html>
""")


@dataclass
class _AnswerView:
    student: str
    entry: str
    entry_shown: bool
    anchor: str
    answer: Answer
    html: list[str]
    recorded: float | None
    #: for an answer over the budget, its size and the budget, in words
    too_large: str = ""


def _json_for_html(value: Any) -> str:
    """JSON that cannot end the ``<script>`` element it sits in, whatever the student ids hold."""
    return (json.dumps(value, sort_keys=True, ensure_ascii=False)
            .replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026"))


def _form_data(out: Path, questions: list[WrittenQuestion], students: list[str],
               scores: dict[str, dict[str, float]], comments: dict[str, dict[str, str]],
               scores_file: str) -> dict[str, Any]:
    """What every question page's form needs: the class, and what the scores file holds.

    The browser keeps the entries under a key named after OUT, not after the class: a student
    added later, or a question added, must not hide what the TA typed before (entries are per
    student and question)."""
    key = hashlib.sha256(str(out.resolve()).encode()).hexdigest()[:16]
    recorded = {q.column: {s: {"points": f"{scores[s][q.column]:g}"
                               if q.column in scores.get(s, {}) else "",
                               "comment": comments.get(s, {}).get(q.column, "")}
                           for s in students} for q in questions}
    return {"key": f"labkit-scores-{key}", "students": students, "recorded": recorded,
            "questions": [{"column": q.column, "assignment": q.assignment, "name": q.name}
                          for q in questions],
            "file": Path(scores_file).name,
            # Where to put the download, as a path that works from where make grade ran.
            "path": scores_file if Path(scores_file).is_absolute() else str(out / scores_file)}


def write_pages(out: Path, questions: list[WrittenQuestion], answers: list[StudentAnswers],
                scores: dict[str, dict[str, float]] | None = None,
                scores_file: str = DEFAULT_SCORES_FILE) -> list[Path]:
    """Write ``OUT/manual/<assignment>-<question>.html`` per written question and an index, and
    the answers' attachments under ``OUT/manual/attachments``; pages of questions that no longer
    exist, and files no page shows, are removed. Returns the question pages. The forms start
    from ``scores`` and the comments recorded in OUT (``gradebook.read_comments``)."""
    folder = out / "manual"
    scores = scores or {}
    form = _form_data(out, questions, sorted({s.student for s in answers}), scores,
                      read_comments(out), scores_file)
    files = AttachmentFiles(folder / ATTACHMENTS_FOLDER)
    if folder.is_dir():
        for old in folder.glob("*.html"):
            old.unlink()
    if not questions:
        files.remove_unused()
        return []
    answers = sorted(answers, key=lambda s: (s.student, s.entry))
    counts = Counter(s.student for s in answers)
    shared = {student for student, count in counts.items() if count > 1}
    anchors = [name[:-len(".html")] for name in page_names([s.student for s in answers])]
    written, rows = [], []
    for question in questions:
        views = []
        for student, anchor in zip(answers, anchors):
            answer = student.answers.get(question.column, Answer(NO_NOTEBOOK))
            html, size = render_answer(answer, files)
            views.append(_AnswerView(
                student=student.student, entry=student.entry, entry_shown=student.student in shared,
                anchor=f"s-{anchor}", answer=answer, html=html,
                recorded=scores.get(student.student, {}).get(question.column),
                too_large="" if size <= MAX_ANSWER_HTML_BYTES else
                f"{size / 1e6:.1f} MB as a page, over the {MAX_ANSWER_HTML_BYTES >> 20} MB limit"))
        answered = sum(1 for v in views if v.answer.status == ANSWERED)
        page = folder / question.page
        write_atomically(page, QUESTION_PAGE.render(
            title=f"{question.column} (written)", csp=CSP, style=STYLE, q=question,
            prompt=render_markdown(question.prompt) if question.prompt else "",
            solution=render_markdown(question.solution) if question.solution else "",
            students=views, answered=answered, scores_file=scores_file,
            data=_json_for_html({**form, "column": question.column, "points": question.points}),
            scoring_script=SCORING_SCRIPT))
        written.append(page)
        rows.append({"q": question, "students": len(views), "answered": answered,
                     "recorded": sum(1 for v in views if v.recorded is not None)})
    write_atomically(folder / "index.html", INDEX_PAGE.render(
        title="Written questions", csp=INDEX_CSP, style=STYLE, rows=rows, scores_file=scores_file))
    files.remove_unused()
    return written
