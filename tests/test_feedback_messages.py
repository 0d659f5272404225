"""Feedback a student can act on, through the real grading path (real notebooks, real kernels):
a crashed cell is named as a student finds it in Jupyter (its heading and first line) with its
error, a check whose input cell crashed says so, a deleted function is named as missing, the
check's own messages (a too-slow training's advice included) are shown whole, and grading one
file twice under the same secret gives the same result."""

from __future__ import annotations

import csv
import json
import re

import nbformat
import pytest

from labkit import notebooks, paths
from labkit.grading import classrun, keys
from labkit.outputs import markdown, page_files

from .conftest import answer_bank

STEM = "1_1_linear_regression"
SOFTMAX = "1_3_softmax_regression"
STUDENTS = ["crashes", "no_as_column", "theta_crashes", "slow_softmax", "markers"]
#: The heading of the exercise above the inserted cell, and of the cell that sets theta.
PINV_HEADING = "Exercise 2 — the pseudoinverse from the SVD (5 points)"
THETA_HEADING = "Exercise 4.2 — fit by the pseudoinverse (4 points)"
#: What the "markers" student's pinv_svd raises: the words otter writes around a failure, and
#: "; " followed by what reads like the start of another note.
MARKERS = "❌ Test case failed; Error at line 3 in test q: boom; x: y"


def _solution(stem: str = STEM) -> nbformat.NotebookNode:
    return nbformat.read(paths.solution_notebook(stem), 4)


def _after(nb: nbformat.NotebookNode, text: str, source: str) -> int:
    """Insert a code cell after the cell holding ``text``; return its code-cell number (from 1)."""
    index = next(i for i, c in enumerate(nb.cells) if text in c.source)
    nb.cells.insert(index + 1, nbformat.v4.new_code_cell(source))
    return sum(1 for c in nb.cells[: index + 2] if c.cell_type == "code")


def _replace(nb: nbformat.NotebookNode, old: str, new: str) -> nbformat.NotebookNode:
    (cell,) = [c for c in nb.cells if c.cell_type == "code" and old in c.source]
    cell.source = new
    return nb


def _slow_softmax() -> nbformat.NotebookNode:
    """1.3's solution with the full gradient written as Python loops over items and classes
    (right values, far too slow for the training check): its cells up to that gradient's public
    check, and the reduced gradient's definition (none of the notebook's own training)."""
    nb = _replace(_solution(SOFTMAX), "def softmax_regression_loss_grad(Theta",
                  answer_bank(SOFTMAX)["WRONG"]["softmax_regression_loss_grad"][
                      "python_loops_over_items_and_classes"])
    end = next(i for i, c in enumerate(nb.cells)
               if 'grader.check("softmax_regression_loss_grad")' in c.source)
    reduced = [c for c in nb.cells if "def softmax_regression_loss_grad_0(" in c.source]
    nb.cells = nb.cells[: end + 1] + reduced
    return nb


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    submissions = tmp_path_factory.mktemp("feedback") / "submissions"
    crashing = _solution()
    cell = _after(crashing, "X_inv_svd = pinv_svd(X)", "ratio = 1 / 0")
    missing = _solution()
    _after(missing, "def as_column(", "del as_column")
    theta = _replace(_solution(), "theta = pinv_svd(X_train) @ y_train",
                     "theta = pinv_svd(X_train) @ y_tain")
    markers = _replace(_solution(), "def pinv_svd(",
                       f"def pinv_svd(X):\n    raise ValueError({MARKERS!r})\n")
    notebooks = {"crashes": (STEM, crashing), "no_as_column": (STEM, missing),
                 "theta_crashes": (STEM, theta), "slow_softmax": (SOFTMAX, _slow_softmax()),
                 "markers": (STEM, markers)}
    for name, (stem, nb) in notebooks.items():
        (submissions / name).mkdir(parents=True)
        nbformat.write(nb, submissions / name / f"{stem}.ipynb")
    outs = []
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(keys.ENVIRONMENT_VARIABLE, "a class secret for this test")
        for run in ("first", "second"):
            out = tmp_path_factory.mktemp(run)
            classrun.grade_class(submissions, out, workers=2, limits=classrun.Limits(cell_seconds=15))
            outs.append(out)
    return outs, cell


def _rows(out) -> dict[str, dict[str, str]]:
    with open(out / "grades.csv", newline="", encoding="utf-8") as handle:
        return {row["student"]: row for row in csv.DictReader(handle)}


def _page(out, student: str) -> str:
    names = dict(zip(STUDENTS, page_files.page_names(STUDENTS)))
    return (out / "feedback" / names[student]).read_text("utf-8")


def _text(html: str) -> str:
    """A page's text as a reader sees it: tags dropped, entities read."""
    import html as entities
    import re

    return entities.unescape(re.sub(r"<[^>]+>", "", html))


def test_a_crashed_cell_is_named_by_its_heading_and_first_line(graded):
    (out, _), _ = graded
    note = (f'the cell under "{PINV_HEADING}" that starts "ratio = 1 / 0" raised an error: '
            "ZeroDivisionError: division by zero")
    assert note in _rows(out)["crashes"]["notes"]
    assert note in _text(_page(out, "crashes"))
    assert "code cell" not in _rows(out)["crashes"]["notes"]


def test_a_check_whose_input_cell_crashed_names_that_cell(graded):
    (out, _), _ = graded
    page = _text(_page(out, "theta_crashes"))
    cell = f'the cell under "{THETA_HEADING}" that starts "theta = pinv_svd(X_train) @ y_tain"'
    assert (f"There is no theta in your notebook because {cell} raised an error (NameError: "
            "name 'y_tain' is not defined), so theta was never set") in page
    assert "Set it in the cell of 4.2" not in page


def test_a_too_slow_training_is_shown_whole_with_its_advice(graded):
    (out, _), _ = graded
    page = _text(_page(out, "slow_softmax"))
    assert "softmax_regression_loss_grad is too slow for the grader" in page
    assert "the grader allows" in page and "times what the reference gradient takes" in page
    assert "Compute it with matrix operations, as the exercise asks" in page
    assert "TooSlow" not in page and "the gr..." not in page


def test_a_deleted_function_is_reported_missing_by_name(graded):
    (out, _), _ = graded
    page = _page(out, "no_as_column")
    assert "no function named <code>as_column</code> in your notebook" in page
    body = page.split("<body>", 1)[1]
    assert "NoneType" not in body and "meta" not in body


def test_a_message_holding_otters_own_words_and_semicolons_reaches_the_page_whole(graded):
    """What a check says is kept as data from the check to the page: otter's marker words,
    line breaks and "; " inside it change nothing, and a note holding "; " stays one note."""
    (out, _), _ = graded
    page = _page(out, "markers")
    notes = re.findall(r"<li>(.*?)</li>", page.split('id="problems"', 1)[1].split("</ul>", 1)[0],
                       re.DOTALL)
    crashed = (f'{STEM}: the cell under "{PINV_HEADING}" that starts "X_inv_svd = pinv_svd(X)" '
               f"raised an error: ValueError: {MARKERS}")
    assert crashed in [_text(note) for note in notes]
    assert not [note for note in notes if note.startswith(("x: y", "Error at line"))]
    assert f"raised ValueError: {MARKERS}\nwhen called with (a float" in _text(page)
    record = json.loads((out / "results" / "markers" / f"{STEM}.json").read_text())
    checks = [c for c in record["cases"] if c["question"] == "pinv_svd" and c["kind"] == "check"]
    assert checks
    for case in checks:
        assert case["message"].startswith(f"`pinv_svd` raised ValueError: {MARKERS}\n  when "
                                          "called with (a float")
        assert str(markdown.render_message(case["message"])) in page


def test_grading_the_same_files_twice_gives_the_same_results(graded):
    (first, second), _ = graded
    timed = {"slow_softmax"}  # its message says how slow it was, which varies
    assert {k: v for k, v in _rows(first).items() if k not in timed} == \
        {k: v for k, v in _rows(second).items() if k not in timed}
    for student, stem in (("crashes", STEM), ("no_as_column", STEM), ("theta_crashes", STEM)):
        a = json.loads((first / "results" / student / f"{stem}.json").read_text())
        b = json.loads((second / "results" / student / f"{stem}.json").read_text())
        assert a["cases"] == b["cases"]


def test_the_secret_comes_from_the_environment_or_a_file_made_once(tmp_path, monkeypatch):
    monkeypatch.delenv(keys.ENVIRONMENT_VARIABLE, raising=False)
    path = tmp_path / ".grading-secret"
    made = keys.grading_secret(path)
    assert len(made) == keys.SECRET_BYTES and keys.grading_secret(path) == made
    assert path.stat().st_mode & 0o077 == 0
    monkeypatch.setenv(keys.ENVIRONMENT_VARIABLE, "shared")
    assert keys.grading_secret(path) == b"shared"
    assert keys.notebook_key(b"nb", b"shared") != keys.notebook_key(b"nb2", b"shared")


def _notebook_bytes(*cells: tuple[str, str]) -> bytes:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell(source) if kind == "markdown"
                else nbformat.v4.new_code_cell(source) for kind, source in cells]
    return nbformat.writes(nb).encode()


def test_cells_are_named_by_heading_and_first_line_and_numbered_only_as_a_last_resort():
    names = notebooks.code_cell_names(_notebook_bytes(
        ("code", "import torch"),
        ("markdown", "# Lab\nSome text.\n## Exercise 2 — the SVD\nWrite it."),
        ("code", "\n\ndef pinv_svd(X):\n    pass"),
        ("code", "x = 1"),
        ("code", "x = 1"),
        ("code", ""),
        ("markdown", "No heading here."),
        ("code", "y = 2"),
    ))
    assert names == [
        'the cell that starts "import torch"',
        'the cell under "Exercise 2 — the SVD" that starts "def pinv_svd(X):"',
        'the cell under "Exercise 2 — the SVD" that starts "x = 1" (code cell 3)',
        'the cell under "Exercise 2 — the SVD" that starts "x = 1" (code cell 4)',
        'the empty cell under "Exercise 2 — the SVD"',
        'the cell under "Exercise 2 — the SVD" that starts "y = 2"',
    ]
    assert notebooks.code_cell_names(_notebook_bytes(("code", "  \n"))) == ["code cell 1"]


def test_a_cell_name_is_one_safe_line_of_bounded_length():
    """Headings and first lines are the student's text: in a note they must not start another
    note ("; x: "), break the line or run on."""
    (name,) = notebooks.code_cell_names(_notebook_bytes(
        ("markdown", '## A; b: "c"\x1b[31m' + "x" * 200),
        ("code", 'z = 1; w: "v"\u2028' + "y" * 200),
    ))
    assert ";" not in name and "\x1b" not in name and "\u2028" not in name
    assert len(name) <= 2 * notebooks.CELL_EXCERPT_CHARS + 40


def test_every_kind_of_failed_check_is_shown_whole():
    """Each exception type the checks raise carries the check's own message, never cut (the
    grader's own kinds included: a call that stopped the notebook's process)."""
    from labkit.checks import core
    from labkit.grading import outcomes, standins

    kinds, todo = set(), [core.CheckFailed]
    while todo:
        kind = todo.pop()
        kinds.add(kind)
        todo.extend(kind.__subclasses__())
    assert standins.NotebookStopped in kinds and core.TooSlow in kinds
    advice = "x" * 500
    for kind in kinds:
        message = f"`f` is too slow for the grader, and the grader allows 2 s. {advice}"
        assert outcomes.failure(kind(message)) == (
            "stopped" if kind is standins.NotebookStopped else "check", message)


def test_the_cell_that_sets_a_name_is_found_in_python_and_in_cells_with_magics():
    assert notebooks.binds("theta = pinv_svd(X_train) @ y_train", "theta")
    assert notebooks.binds("for theta in range(3):\n    pass", "theta")
    assert notebooks.binds("%time theta = fit()", "theta")  # not Python: read as text
    assert notebooks.binds("def as_column(y):\n    return y", "as_column")
    assert not notebooks.binds("print(theta)\ntheta == 1", "theta")
    assert not notebooks.binds("%time print(theta)", "theta")
    assert not notebooks.binds("(" * 200_000 + ")" * 200_000, "theta")  # too deep to parse
