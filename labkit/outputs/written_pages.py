"""One page per written question with every student's answer, and their index.

``make grade`` writes, for each written question of the masters, ``OUT/manual/<assignment>-
<question>.html``: the question, the reference solution (folded), then every student's answer in
order of student id, rendered from its markdown, each with an empty score box, so that one TA
grades one question across the class in one sitting. ``OUT/manual/index.html`` lists the pages.
The pages carry the kit's Content-Security-Policy (``page_policy``): no script but the scoring
form's, no image but the answers' own attachments, nothing fetched from anywhere else. The
pages are ``templates/written_question.html.j2`` and ``written_index.html.j2``, styled by
``static/written.css``; the scoring form is ``static/scoring.js``.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labkit.course.questions import Question
from labkit.course.written import ANSWERED, NO_NOTEBOOK, Answer, StudentAnswers

from .gradebook import read_comments, write_atomically
from .manual_scores import DEFAULT_SCORES_FILE
from .markdown import (ATTACHMENTS_FOLDER, MAX_ANSWER_HTML_BYTES, AttachmentFiles, render_answer,
                       render_markdown)
from .page_files import page_names, written_page
from .page_policy import SAME_FOLDER, content_security_policy
from .templating import embedded, template

# --- the pages -------------------------------------------------------------------------------

#: The scoring form: what the TA types is kept in the browser's localStorage (one entry per class,
#: shared by the question pages, so any page's download holds every question), starting from the
#: scores and comments recorded in the scores file. A kept entry remembers the recorded value it
#: started from; once the file says something else (it was merged, or edited by hand), the file
#: wins. "Download scores" writes the whole scores file: every written question, every student, and the
#: file's rows about other questions (overrides) as they were, in a ``reason`` column of their own.
SCORING_SCRIPT = embedded("scoring.js")
#: The pages' own rules, then the classes that markdown tables' alignment becomes
#: (``page_policy.styles_as_classes``).
STYLE = embedded("written.css", "table-align.css")

#: A question's page: its style sheet, the scoring form's script, and the attachments' files.
CSP = content_security_policy(styles=[STYLE], scripts=[SCORING_SCRIPT], images=[SAME_FOLDER])
#: The index: its style sheet only.
INDEX_CSP = content_security_policy(styles=[STYLE])

QUESTION_PAGE = template("written_question.html.j2")
INDEX_PAGE = template("written_index.html.j2")


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


def _form_data(out: Path, questions: list[Question], students: list[str],
               scores: dict[str, dict[str, float]], comments: dict[str, dict[str, str]],
               scores_file: str, other_rows: list[list[str]]) -> dict[str, Any]:
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
            # The file's rows about other questions (overrides of autograded scores, with their
            # reasons), written back as they are, so that the download replaces no TA's work.
            "other": other_rows,
            # Where to put the download, as a path that works from where make grade ran.
            "path": scores_file if Path(scores_file).is_absolute() else str(out / scores_file)}


def write_pages(out: Path, questions: list[Question], answers: list[StudentAnswers],
                scores: dict[str, dict[str, float]] | None = None,
                scores_file: str = DEFAULT_SCORES_FILE,
                other_rows: list[list[str]] | None = None) -> list[Path]:
    """Write ``OUT/manual/<assignment>-<question>.html`` per written question and an index, and
    the answers' attachments under ``OUT/manual/attachments``; pages of questions that no longer
    exist, and files no page shows, are removed. Returns the question pages. The forms start
    from ``scores`` and the comments recorded in OUT (``gradebook.read_comments``); their
    download also holds ``other_rows`` (``ScoreSheet.other_rows``) as they are."""
    folder = out / "manual"
    scores = scores or {}
    form = _form_data(out, questions, sorted({s.student for s in answers}), scores,
                      read_comments(out), scores_file, other_rows or [])
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
        page = folder / written_page(question.assignment, question.name)
        write_atomically(page, QUESTION_PAGE.render(
            csp=CSP, style=STYLE, q=question,
            prompt=render_markdown(question.prompt) if question.prompt else "",
            solution=render_markdown(question.solution) if question.solution else "",
            students=views, answered=answered, scores_file=scores_file,
            data=_json_for_html({**form, "column": question.column, "points": question.points}),
            scoring_script=SCORING_SCRIPT))
        written.append(page)
        rows.append({"q": question, "page": page.name, "students": len(views),
                     "answered": answered,
                     "recorded": sum(1 for v in views if v.recorded is not None)})
    write_atomically(folder / "index.html", INDEX_PAGE.render(
        csp=INDEX_CSP, style=STYLE, rows=rows, scores_file=scores_file))
    files.remove_unused()
    return written
