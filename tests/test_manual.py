"""Written (manual) questions: the answers read from notebooks, one page per question for the
TAs, the scores file and its merge into grades.csv and the feedback pages.

Most tests build their notebooks from the released ones and call the functions directly (no
kernel); one runs ``grade_class`` for real, twice, to show that recording scores needs no
regrading.
"""

from __future__ import annotations

import base64
import copy
import csv
import hashlib
import io
import json
import re
import shutil
from pathlib import Path

import pytest

from labkit import paths
from labkit.cli import build_parser
from labkit.course import autograders
from labkit.course.questions import Question
from labkit.grading import classrun
from labkit.outputs import feedback, gradebook, page_files, pages
from labkit.course import written
from labkit.grading import written_answers
from labkit.outputs import manual_scores, markdown, written_pages

from .conftest import LAB

LINEAR, LOGISTIC = "1_1_linear_regression", "1_2_logistic_regression"
DERIVATION = f"{LINEAR}/gradient_derivation"
OBSERVATIONS = f"{LINEAR}/learning_rate_observations"
TRAINING = f"{LOGISTIC}/training_observations"
LATEX = r"Let $\mathbf{r} = X\theta - y$; then $a_1 * b_2 < c$ and $$\nabla f = X^\top \mathbf{r}$$"
HOSTILE = "<script>alert(1)</script> and <img src=x onerror=alert(2)> [x](javascript:alert(3))"


@pytest.fixture(scope="module")
def assignments() -> list[autograders.Assignment]:
    return autograders.load_all(LAB)


@pytest.fixture(scope="module")
def questions(assignments) -> list[Question]:
    return autograders.written_questions(assignments)


def _released(stem: str) -> dict:
    return json.loads(paths.student_notebook(stem).read_text("utf-8"))


def _answer_cell(nb: dict, k: int) -> dict:
    """The k-th written question's answer cell (otter's placeholder, as released)."""
    begin, _ = written.regions(nb["cells"])[k]
    cell = nb["cells"][begin + 1]
    assert "otter_answer_cell" in cell["metadata"]["tags"]
    return cell


def _answered(stem: str, *texts: str) -> dict:
    nb = _released(stem)
    for k, text in enumerate(texts):
        if text is not None:
            _answer_cell(nb, k)["source"] = text
    return nb


def _markdown(text: str) -> dict:
    return {"cell_type": "markdown", "metadata": {}, "source": text}


def _write(folder: Path, nb: dict, stem: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{stem}.ipynb").write_text(json.dumps(nb), encoding="utf-8")


def _of(questions, stem):
    return [q for q in questions if q.assignment == stem]


# --- the questions and the answers -------------------------------------------------------------

def test_written_questions_come_from_the_masters(assignments, questions) -> None:
    assert [q.column for q in questions] == [DERIVATION, OBSERVATIONS, TRAINING]
    assert all(q.points == 2 for q in questions)
    derivation = questions[0]
    assert derivation.prompt.startswith("### Exercise 3.1 (written)")
    assert "<!--" not in derivation.prompt
    assert derivation.solution.startswith("**SOLUTION:**")
    by_stem = {a.stem: a for a in assignments}
    assert [(q.name, q.points) for q in by_stem[LINEAR].written] == [
        ("gradient_derivation", 2.0), ("learning_rate_observations", 2.0)]
    assert gradebook.columns(assignments)[:len(by_stem[LINEAR].columns)] == [
        f"{LINEAR}/{q.name}" for q in [*by_stem[LINEAR].graded, *by_stem[LINEAR].written]]


def test_released_notebook_is_unanswered_and_solutions_are_answered(questions) -> None:
    asked = _of(questions, LINEAR)
    blank = written.read_answers(_released(LINEAR)["cells"], asked)
    assert [blank[q.column].status for q in asked] == [written.UNANSWERED] * 2
    solved = json.loads(paths.solution_notebook(LINEAR).read_text("utf-8"))["cells"]
    answers = written.read_answers(solved, asked)
    assert [answers[q.column].status for q in asked] == [written.ANSWERED] * 2
    assert answers[DERIVATION].parts[0].markdown.startswith("**SOLUTION:** Write $")
    assert "Type your answer here" not in json.dumps([p.markdown for a in answers.values() for p in a.parts])


def test_answers_are_found_when_students_add_and_move_cells(questions) -> None:
    asked = _of(questions, LINEAR)
    nb = _answered(LINEAR, "_Type your answer here, replacing this text._ First part.", "Observed.")
    begin, _ = written.regions(nb["cells"])[0]
    nb["cells"].insert(begin + 2, _markdown("Second part, in a cell of my own."))
    nb["cells"].insert(begin + 3, {"cell_type": "code", "metadata": {}, "outputs": [],
                                   "execution_count": None, "source": "print(1)"})
    nb["cells"][0:0] = [_markdown("My notes"), _markdown("<!-- BEGIN QUESTION -->\n\nnot otter's")]
    answers = written.read_answers(nb["cells"], asked)
    derivation = [p.markdown for p in answers[DERIVATION].parts]
    assert derivation == ["First part.", "Second part, in a cell of my own.", "```python\nprint(1)\n```"]
    assert [p.markdown for p in answers[OBSERVATIONS].parts] == ["Observed."]
    assert answers[DERIVATION].notes == answers[OBSERVATIONS].notes == []


def test_answers_are_found_when_otters_markers_are_gone(questions) -> None:
    asked = _of(questions, LINEAR)
    nb = _answered(LINEAR, "By hand.", None)
    begin, _ = written.regions(nb["cells"])[0]
    nb["cells"][begin]["source"] = nb["cells"][begin]["source"].replace(written.BEGIN_MARKER, "")
    answers = written.read_answers(nb["cells"], asked)
    assert [p.markdown for p in answers[DERIVATION].parts] == ["By hand."]
    assert "markers are missing" in answers[DERIVATION].notes[0]
    assert answers[OBSERVATIONS].status == written.UNANSWERED
    # Typed into the question's own cell (Colab and VS Code do not lock cells).
    nb = _released(LINEAR)
    begin, _ = written.regions(nb["cells"])[1]
    nb["cells"][begin]["source"] += "\n\nMy answer here."
    typed = written.read_answers(nb["cells"], asked)
    assert [p.markdown for p in typed[OBSERVATIONS].parts] == ["My answer here."]
    # Both question cells deleted: said so, not guessed.
    nb = _released(LOGISTIC)
    begin, end = written.regions(nb["cells"])[0]
    del nb["cells"][begin:end + 1]
    lost = written.read_answers(nb["cells"], _of(questions, LOGISTIC))
    assert lost[TRAINING].status == written.NOT_FOUND


def test_odd_cells_do_not_stop_the_reading(questions) -> None:
    nb = _answered(LOGISTIC, None)
    begin, _ = written.regions(nb["cells"])[0]
    nb["cells"][begin + 1] = {"cell_type": "markdown", "metadata": ["odd"],
                              "source": ["Line one\n", "line two"], "attachments": "odd"}
    nb["cells"].insert(begin + 2, "not a cell")
    nb["cells"][begin + 3]["metadata"] = None  # the END cell
    answers = written.read_answers(written._cells(nb), _of(questions, LOGISTIC))
    assert [p.markdown for p in answers[TRAINING].parts] == ["Line one\nline two"]


# --- the pages for the TAs ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def class_pages(tmp_path_factory, assignments, questions) -> Path:
    """Four students (written in a shuffled order) and their written question pages."""
    root = tmp_path_factory.mktemp("manual")
    submissions, out = root / "submissions", root / "out"
    _write(submissions / "zoe", _answered(LINEAR, LATEX, "Slow then fast."), LINEAR)
    _write(submissions / "zoe", _answered(LOGISTIC, "It goes down."), LOGISTIC)
    _write(submissions / "adam", _answered(LINEAR, HOSTILE, None), LINEAR)
    _write(submissions / "mia", _released(LINEAR), LINEAR)  # untouched: unanswered
    _write(submissions / "mia", _released(LOGISTIC), LOGISTIC)
    (submissions / "bob.ipynb").write_text("{not json", encoding="utf-8")
    entries = [submissions / name for name in ("zoe", "mia", "bob.ipynb", "adam")]
    answers = written_answers.collect(entries, [a.stem for a in assignments], questions)
    written_pages.write_pages(out, questions, answers, {"zoe": {DERIVATION: 1.5}})
    return out


def _sections(html: str) -> list[tuple[str, str]]:
    """(student id, section html) for each answer on a page, in page order."""
    parts = re.split(r'<section class="answer"', html)[1:]
    return [(re.search(r'<span class="id">([^<]*)</span>', p).group(1), p) for p in parts]


def _page(question: Question) -> str:
    return page_files.written_page(question.assignment, question.name)


def test_one_page_per_written_question_in_order_of_student(class_pages, questions) -> None:
    written = sorted(p.name for p in (class_pages / "manual").iterdir())
    assert written == sorted([_page(q) for q in questions] + ["index.html"])
    assert (class_pages / "manual" / f"{LINEAR}-gradient_derivation.html").is_file()
    unanswered: set[str] = set()
    for question in questions:
        html = (class_pages / "manual" / _page(question)).read_text("utf-8")
        assert [s for s, _ in _sections(html)] == ["adam", "bob", "mia", "zoe"]
        # Each answer (or the reason there is none) is read before its score box; an answer
        # left unanswered, with no score recorded, gets 0 points without a box: nothing to grade.
        boxes = 0
        for _, section in _sections(html):
            shown = min(i for i in (section.find('class="body"'), section.find('class="status"'))
                        if i >= 0)
            if 'class="auto-zero"' in section:
                assert 'class="body"' not in section and "recorded:" not in section
                assert '<input class="points"' not in section and "<textarea" not in section
                assert shown < section.index("0 points, given without grading")
                unanswered.add(question.column)
            else:
                assert shown < section.index('<input class="points"')
                boxes += 1
        # An empty score box and comment box for each other student, out of the question's points.
        assert html.count('<input class="points" type="text"') == boxes and "value=" not in html
        assert html.count('<textarea class="comment"') == boxes
        assert html.count(" / 2\n") == boxes
        assert question.prompt.splitlines()[0].lstrip("# ") in html
    assert unanswered  # the class has students who handed nothing in for some question
    index = (class_pages / "manual" / "index.html").read_text("utf-8")
    assert all(f'href="{_page(q)}"' in index for q in questions)


def test_pages_render_answers_and_latex_as_mathml(class_pages) -> None:
    sections = dict(_sections((class_pages / "manual" / f"{LINEAR}-gradient_derivation.html")
                              .read_text("utf-8")))
    zoe = sections["zoe"].split("</section>")[0]
    assert '<math display="inline"><mrow><mi>𝐫</mi><mo>=</mo><mi>X</mi><mi>θ</mi>' in zoe
    # not turned into emphasis; the "<" escaped
    assert "<msub><mi>a</mi><mn>1</mn></msub><mo>*</mo>" in zoe and "<mo>&lt;</mo><mi>c</mi>" in zoe
    assert '<math display="block"><mrow><mo>∇</mo><mi>f</mi>' in zoe
    assert "<em>" not in zoe and "$" not in zoe
    assert '<span class="recorded">recorded: 1.5</span>' in zoe
    assert "Unanswered." in sections["mia"]
    assert "Unanswered: no notebook for 1_1_linear_regression was submitted." in sections["bob"]
    training = dict(_sections((class_pages / "manual" / f"{LOGISTIC}-training_observations.html")
                              .read_text("utf-8")))
    assert "<p>It goes down.</p>" in training["zoe"]
    assert "no notebook for 1_2_logistic_regression" in training["adam"]


def test_pages_escape_hostile_answers(class_pages) -> None:
    for page in (class_pages / "manual").iterdir():
        html = page.read_text("utf-8")
        scripts = re.findall(r"<script[^>]*>", html, re.IGNORECASE)
        if page.name == "index.html":
            assert scripts == []
        else:  # the form's data and its script, nothing loaded
            assert scripts == ['<script type="application/json" id="labkit-scores">', "<script>"]
        assert "<img src=x" not in html and "javascript:" not in html.replace(
            "[x](javascript:alert(3))", "")
        assert "Content-Security-Policy" in html
    adam = dict(_sections((class_pages / "manual" / f"{LINEAR}-gradient_derivation.html")
                          .read_text("utf-8")))["adam"]
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in adam
    assert "&lt;img src=x onerror=alert(2)&gt;" in adam


def test_markdown_rendering_is_safe_and_shows_attachments() -> None:
    shown = {"p.png": markdown.Shown(src="attachments/ab.png"), "big.png": markdown.Shown(note="too big")}
    used: set[str] = set()
    html = markdown.render_markdown("![photo](attachment:p.png) ![away](https://example.org/x.png) "
                                  "![](attachment:big.png) ![](attachment:gone.png)",
                                  shown.get, used)
    assert '<img src="attachments/ab.png" alt="photo" loading="lazy">' in html
    assert used == {"attachments/ab.png"}
    # Any other image is text, never fetched: the URL shows, the attachment's problem too.
    assert "[image: away (https://example.org/x.png)]" in html and html.count("<img") == 1
    assert "[image: attachment:big.png, not shown: too big]" in html
    assert "attachment:gone.png, not shown: not among the notebook's attachments" in html
    assert "<b>" not in markdown.render_markdown("<b>bold</b>")
    assert markdown.render_markdown("\\begin{align}a &= b\\end{align}").startswith(
        '<div class="math display"><math display="block"><mrow><mtable')
    # What latex2mathml cannot convert, or would pass through unsafely, shows as LaTeX source.
    assert '<code class="tex">$\\left( x \\right$</code>' in markdown.render_markdown("$\\left( x \\right$")
    assert '<code class="tex">$\\text{&lt;b&gt;}$</code>' in markdown.render_markdown("$\\text{<b>}$")
    linked = markdown.render_markdown("$\\href{javascript:alert(1)}{x} \\style{color:red}{y}$")
    assert "<math" in linked and "href" not in linked and "style" not in linked
    # A table's alignment is a class: the pages' policy refuses style attributes.
    table = markdown.render_markdown("| a |\n|--:|\n| 1 |")
    assert '<td class="align-right">1</td>' in table and "style=" not in table


def _png(width: int, height: int, mode: str = "RGB") -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new(mode, (width, height)).save(buffer, format="PNG")
    return buffer.getvalue()


def test_attachments_are_checked_and_written_once_by_content(tmp_path) -> None:
    small, huge = _png(30, 20), _png(10_000, 6_000, "1")  # 60 megapixels in a few kB
    giant = _png(15_000, 15_000, "1")  # so many that Pillow refuses it
    b64 = lambda data: base64.b64encode(data).decode("ascii")  # noqa: E731
    cell = {"cell_type": "markdown", "metadata": {}, "source": "x", "attachments": {
        "a.png": {"image/png": b64(small)}, "same.png": {"image/png": b64(small)},
        "drawing.svg": {"image/svg+xml": "PHN2Zz48L3N2Zz4="},
        "big.png": {"image/png": "A" * (written.MAX_ATTACHMENT_BYTES * 3 // 2 + 1)},
        "bomb.png": {"image/png": b64(huge)}, "giant.png": {"image/png": b64(giant)},
        "text.png": {"image/png": b64(b"<svg></svg>")},
        "broken.png": {"image/png": "not base64!"}}}
    part = written._part(cell)
    assert part.skipped == {"drawing.svg": "not a png, jpeg or gif image",
                            "big.png": f"larger than {written.MAX_ATTACHMENT_BYTES >> 20} MB"}
    files = markdown.AttachmentFiles(tmp_path / markdown.ATTACHMENTS_FOLDER)
    look = markdown._lookup(part, files)
    name = f"{hashlib.sha256(small).hexdigest()}.png"
    assert look("a.png") == look("same.png") == markdown.Shown(src=f"attachments/{name}")
    assert look("bomb.png").note == "10000 x 6000 pixels, more than 50 megapixels"
    assert look("giant.png").note == "more than 50 megapixels"
    assert look("text.png").note == "not a png, jpeg or gif image"
    assert look("broken.png").note == "not readable (bad base64)"
    assert look("gone.png") is None
    assert [p.name for p in files.folder.iterdir()] == [name]
    assert (files.folder / name).read_bytes() == small
    # A file no answer on a page shows is removed when the pages are done.
    files.kept = {f"attachments/{name}"}
    (files.folder / "0ld.png").write_bytes(small)
    files.remove_unused()
    assert [p.name for p in files.folder.iterdir()] == [name]
    files.kept = set()
    files.remove_unused()
    assert not files.folder.exists()


# --- the scores --------------------------------------------------------------------------------

STUDENTS = ["adam", "mia", "zoe"]


def _scores(path: Path, rows: list[list[str]], header=("student", "assignment", "question", "points"),
            delimiter=",", encoding="utf-8") -> Path:
    with open(path, "w", newline="", encoding=encoding) as handle:
        writer = csv.writer(handle, delimiter=delimiter, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
    return path


def test_template_has_one_empty_row_per_student_and_question(tmp_path, questions) -> None:
    path = tmp_path / "scores.csv"
    manual_scores.write_template(path, ["zoe", "adam", "mia", "zoe"], questions)
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == len(questions) * 3
    assert rows[:3] == [{"student": s, "assignment": LINEAR, "question": "gradient_derivation",
                         "points": "", "comment": ""} for s in STUDENTS]
    sheet = manual_scores.read_scores(path, STUDENTS, questions)
    assert sheet.exists and sheet.points == {} and sheet.problems == []


def test_bad_rows_are_reported_and_skipped_while_good_rows_merge(tmp_path, questions) -> None:
    path = _scores(tmp_path / "scores.csv", [
        ["zoe", LINEAR, "gradient_derivation", "1.5"],          # line 2: good
        ["adam", LINEAR, "gradient_derivation", "2"],           # good
        ["mia", LINEAR, "gradient_derivation", ""],             # not graded yet: no problem
        ["eve", LINEAR, "gradient_derivation", "1"],            # line 5: unknown student
        ["zoe", LINEAR, "no_such_question", "1"],               # unknown question
        ["zoe", LINEAR, "pinv_svd", "1"],                       # autograded, not written
        ["mia", LINEAR, "learning_rate_observations", "3"],     # over the question's 2 points
        ["adam", LINEAR, "learning_rate_observations", "-1"],   # negative
        ["zoe", LINEAR, "learning_rate_observations", "good"],  # line 10: not a number
        ["zoe", LOGISTIC, "training_observations", "nan"],      # not a number either
        ["zoe", LINEAR, "gradient_derivation", "0.5"],          # contradicts line 2
        ["zoe", LINEAR, "gradient_derivation", "1.5"],          # repeats line 2: fine
        [" mia ", "", f"{LOGISTIC}/training_observations", " 0 "],  # good, loosely written
    ])
    sheet = manual_scores.read_scores(path, STUDENTS, questions)
    assert sheet.points == {"zoe": {DERIVATION: 1.5}, "adam": {DERIVATION: 2.0},
                            "mia": {TRAINING: 0.0}}
    problems = sheet.problems
    assert len(problems) == 8, problems
    assert problems[0].startswith("line 5: unknown student 'eve'")
    assert "unknown written question '1_1_linear_regression/no_such_question'" in problems[1]
    assert "unknown written question '1_1_linear_regression/pinv_svd'" in problems[2]
    assert "exceed the question's 2" in problems[3]
    assert "negative" in problems[4]
    assert problems[5].startswith("line 10: points 'good'") and "not a number" in problems[5]
    assert "not a number" in problems[6]
    assert "a second score" in problems[7] and "line 2 gives 1.5" in problems[7]
    assert all(p.endswith("skipped") for p in problems)
    problems_file = manual_scores.write_problems(tmp_path, sheet)
    assert problems_file.read_text("utf-8").splitlines()[1:] == problems
    manual_scores.write_problems(tmp_path, manual_scores.ScoreSheet(path))  # no problems: no stale file
    assert not problems_file.exists()


def test_scores_from_a_spreadsheet_and_a_broken_header(tmp_path, questions) -> None:
    path = _scores(tmp_path / "s.csv", [["zoe", LOGISTIC, "training_observations", "2"]],
                   delimiter=";", encoding="utf-8-sig")
    assert manual_scores.read_scores(path, STUDENTS, questions).points == {"zoe": {TRAINING: 2.0}}
    path = _scores(tmp_path / "t.csv", [["zoe", "2"]], header=("id", "score"))
    sheet = manual_scores.read_scores(path, STUDENTS, questions)
    assert sheet.points == {} and "nothing merged" in sheet.problems[0]


def test_scores_merge_into_grades_and_feedback(tmp_path, assignments, questions) -> None:
    out = tmp_path / "out"
    rows = [gradebook.StudentRow("zoe", {f"{LINEAR}/as_column": 4.0}),
            gradebook.StudentRow("mia", {f"{LINEAR}/as_column": 1.0})]
    scores = {"zoe": {DERIVATION: 1.5, TRAINING: 2.0}}
    gradebook.write_grades(out / "grades.csv", assignments, rows, scores)
    gradebook.write_questions(out / "questions.csv", assignments)
    with open(out / "grades.csv", newline="") as handle:
        grades = {r["student"]: r for r in csv.DictReader(handle)}
    assert grades["zoe"][DERIVATION] == "1.5" and grades["zoe"][TRAINING] == "2"
    assert grades["zoe"][OBSERVATIONS] == "" and grades["mia"][DERIVATION] == ""
    assert grades["zoe"]["total"] == "7.5" and grades["mia"]["total"] == "1"
    assert grades["zoe"][f"{LINEAR}/pinv_svd"] == "0"  # autograded columns stay numbers
    with open(out / "questions.csv", newline="") as handle:
        listed = list(csv.DictReader(handle))
    assert {(r["assignment"], r["question"], r["points"]) for r in listed if r["manual"] == "true"} \
        == {(q.assignment, q.name, "2") for q in questions}
    assert {r["manual"] for r in listed} == {"true", "false"}

    pages.write_feedback_and_report(out)
    names = dict(zip(["mia", "zoe"], page_files.page_names(["mia", "zoe"])))
    zoe = (out / "feedback" / names["zoe"]).read_text("utf-8")
    assert re.search(r"<td>gradient_derivation</td><td class=\"num points\">1.5 / 2</td>", zoe)
    assert re.search(r"<td>learning_rate_observations</td><td class=\"num points\">not graded yet / 2</td>", zoe)
    assert "Written questions worth 2 points are not graded yet" in zoe
    assert "themselves. Written answers are graded by the teaching team." in zoe
    mia = (out / "feedback" / names["mia"]).read_text("utf-8")
    assert "Written questions worth 6 points are not graded yet" in mia
    report = (out / "report.html").read_text("utf-8")
    assert f'href="manual/{LINEAR}-gradient_derivation.html"' in report
    assert "(1 of 2 graded)" in report and "(0 of 2 graded)" in report
    assert "<script" not in report.lower()
    # An OUT graded before written questions existed (no "manual" column) still reads.
    (out / "questions.csv").write_text("assignment,question,points\nA,q,1\n", encoding="utf-8")
    assert feedback.read_questions(out) == [Question("A", "q", 1.0, written=False)]


def test_students_added_later_get_rows_appended_and_entered_scores_stay_byte_for_byte(
        tmp_path, questions) -> None:
    path = tmp_path / "scores.csv"  # as a spreadsheet saved it: ";", a BOM, CRLF, no final newline
    entered = ("\ufeffstudent;assignment;question;points;comment\r\n"
               f"zoe;{LINEAR};gradient_derivation;1,5;\"Good; but \"\"why\"\"?\"\r\n"
               f"mia;{LOGISTIC};training_observations;2;")
    path.write_bytes(entered.encode("utf-8"))
    sheet = manual_scores.read_scores(path, ["mia", "zoe", "adam"], questions)
    assert sheet.points == {"zoe": {DERIVATION: 1.5}, "mia": {TRAINING: 2.0}}  # "1,5" too
    assert sheet.comments == {"zoe": {DERIVATION: 'Good; but "why"?'}}
    added = manual_scores.prepare_scores_file(path, ["mia", "zoe", "adam"], questions, sheet)
    assert added == 3 * 3 - 2
    text = path.read_bytes().decode("utf-8")
    assert text.startswith(entered + "\r\n")
    appended = text[len(entered) + 2:].split("\r\n")
    assert appended[0] == f"adam;{LINEAR};gradient_derivation;;" and appended[-1] == ""
    assert len(appended) - 1 == added
    again = manual_scores.read_scores(path, ["mia", "zoe", "adam"], questions)
    assert manual_scores.prepare_scores_file(path, ["mia", "zoe", "adam"], questions, again) == 0
    assert path.read_bytes().decode("utf-8") == text  # nothing more to add: untouched
    broken = _scores(tmp_path / "broken.csv", [["zoe", "2"]], header=("id", "score"))
    before = broken.read_bytes()
    sheet = manual_scores.read_scores(broken, ["zoe"], questions)
    assert manual_scores.prepare_scores_file(broken, ["zoe"], questions, sheet) == 0
    assert broken.read_bytes() == before  # an unreadable header: left alone, reported instead


def test_comments_are_read_with_the_scores_and_reach_the_feedback_page(
        tmp_path, assignments, questions) -> None:
    path = _scores(tmp_path / "scores.csv", [
        ["zoe", LINEAR, "gradient_derivation", "1.5", "Right idea; the sign of r is off."],
        ["mia", LINEAR, "gradient_derivation", "", "Started, not finished <b>"],
        ["adam", LINEAR, "gradient_derivation", "9", "over the points: skipped with its comment"],
        ["zoe", LINEAR, "learning_rate_observations", "1", "Use `X.T`:\n\n- **sign** right"],
    ], header=("student", "assignment", "question", "points", "comment"))
    sheet = manual_scores.read_scores(path, STUDENTS, questions)
    assert sheet.comments == {"zoe": {DERIVATION: "Right idea; the sign of r is off.",
                                      f"{LINEAR}/learning_rate_observations":
                                      "Use `X.T`:\n\n- **sign** right"},
                              "mia": {DERIVATION: "Started, not finished <b>"}}
    out = tmp_path / "out"
    rows = [gradebook.StudentRow(s) for s in STUDENTS]
    gradebook.write_grades(out / "grades.csv", assignments, rows, sheet.points)
    gradebook.write_questions(out / "questions.csv", assignments)
    gradebook.write_comments(out, sheet.comments)
    pages.write_feedback_and_report(out)
    names = dict(zip(STUDENTS, page_files.page_names(STUDENTS)))
    zoe = (out / "feedback" / names["zoe"]).read_text("utf-8")
    assert ('Comment from the teaching team:</strong>\n<div class="ta-comment"><p>Right idea; the '
            'sign of r is off.</p>\n</div>') in zoe
    # A comment is markdown, as a TA writes it (its raw HTML shown as text, as mia's shows).
    assert "<p>Use <code>X.T</code>:</p>\n<ul>\n<li><strong>sign</strong> right</li>" in zoe
    mia = (out / "feedback" / names["mia"]).read_text("utf-8")
    assert "Started, not finished &lt;b&gt;" in mia
    assert "Comment from the teaching team" not in (out / "feedback" / names["adam"]).read_text("utf-8")
    gradebook.write_comments(out, {})  # no comments left: no stale file
    assert not (out / gradebook.COMMENTS_FILE).exists()


def test_command_line_and_makefile_take_a_scores_path() -> None:
    args = build_parser().parse_args(["grade", "--manual-scores", "s.csv"])
    assert args.manual_scores == "s.csv"
    assert build_parser().parse_args(["grade"]).manual_scores is None
    makefile = (paths.ROOT / "Makefile").read_text("utf-8")
    assert "MANUAL_SCORES ?=" in makefile and '--manual-scores "$(MANUAL_SCORES)"' in makefile


# --- through grade_class -----------------------------------------------------------------------

@pytest.mark.slow
def test_make_grade_writes_pages_and_template_then_merges_without_regrading(tmp_path) -> None:
    submissions, out = tmp_path / "submissions", tmp_path / "out"
    submissions.mkdir()
    shutil.copy(paths.solution_notebook(LOGISTIC), submissions / "ada.ipynb")
    shutil.copy(paths.student_notebook(LOGISTIC), submissions / "bo.ipynb")
    first = classrun.grade_class(submissions, out, workers=2)
    assert "2 new or changed" in first and "wrote a template" in first
    template = out / "manual_scores.csv"
    with open(template, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 2 * 3 and {r["points"] for r in rows} == {""}
    page = (out / "manual" / f"{LOGISTIC}-training_observations.html").read_text("utf-8")
    assert [s for s, _ in _sections(page)] == ["ada", "bo"]
    assert "**SOLUTION:**" not in page and "<strong>SOLUTION:</strong>" in page
    with open(out / "grades.csv", newline="") as handle:
        before = {r["student"]: r for r in csv.DictReader(handle)}
    assert before["ada"][TRAINING] == ""

    _scores(template, [["ada", LOGISTIC, "training_observations", "1.5"],
                       ["bo", LOGISTIC, "training_observations", "5"],
                       ["cy", LOGISTIC, "training_observations", "1"],
                       ["bo", LINEAR, "gradient_derivation", ""]])
    entered = template.read_text("utf-8")
    second = classrun.grade_class(submissions, out, workers=2)
    assert "0 new or changed, 2 unchanged" in second  # no notebook ran again
    assert "merged 1 of 6 scores" in second
    assert "2 row(s) of manual_scores.csv skipped" in second
    assert "line 3: points 5 for 'bo'" in second and "unknown student 'cy'" in second
    problems = (out / manual_scores.PROBLEMS_FILE).read_text("utf-8")
    assert "line 3" in problems and "line 4" in problems
    with open(out / "grades.csv", newline="") as handle:
        after = {r["student"]: r for r in csv.DictReader(handle)}
    # bo handed in the blank notebook: nothing to grade, 0 without a score.
    assert after["ada"][TRAINING] == "1.5" and after["bo"][TRAINING] == "0"
    assert "5 left unanswered got 0 without grading" in second
    assert float(after["ada"]["total"]) == float(before["ada"]["total"]) + 1.5
    assert after["bo"]["total"] == before["bo"]["total"]
    names = dict(zip(["ada", "bo"], page_files.page_names(["ada", "bo"])))
    ada = (out / "feedback" / names["ada"]).read_text("utf-8")
    assert re.search(r"<td>training_observations</td><td class=\"num points\">1.5 / 2</td>", ada)
    # The TAs' file is never rewritten: the pairs it lacked are appended, empty.
    now = template.read_text("utf-8")
    assert now.startswith(entered) and "added empty rows" in second
    assert sorted(now[len(entered):].splitlines()) == sorted(
        f"{student},{column.replace('/', ',')}," for student in ("ada", "bo")
        for column in (DERIVATION, OBSERVATIONS, TRAINING)
        if (student, column) not in {("ada", TRAINING), ("bo", TRAINING), ("bo", DERIVATION)})
