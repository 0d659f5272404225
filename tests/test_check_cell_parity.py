"""Each question is judged where otter's autograder judges it: on the notebook as it stands right
after the cell that runs ``grader.check("q")`` (the end of the notebook when no cell does).

The notebooks are Lab 1.1's released solution with one change each; the kit's grades are compared
with plain ``otter run`` of the same notebook with the same autograder zip.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile
from dataclasses import replace
from pathlib import Path

import nbformat
import pytest

from labkit import notebooks, paths
from labkit.course import autograders
from labkit.course.questions import Question
from labkit.grading import checkpoints, judge
from labkit.outputs.results import PASSED, STOPPED
from labkit.sandbox.confine import Limits
from labkit.sandbox.session import MAX_FATAL_CELLS, ForkServerClient

STEM = "1_1_linear_regression"

#: An instructor's new question named like a helper that a later cell of the notebook defines
#: with other arguments (1.1's ``mse(theta, X, y)``): the mean squared error of predictions.
MSE_TEST = '''from otter.test_files import test_case

OK_FORMAT = False

name = "mse"
points = 2

@test_case(points=2, hidden=True)
def test_mse_of_predictions(mse):
    import torch
    y_hat = torch.tensor([[1.0], [2.0], [4.0]], dtype=torch.float64)
    y = torch.tensor([[1.0], [0.0], [0.0]], dtype=torch.float64)
    assert abs(float(mse(y_hat, y)) - 20 / 3) < 1e-9, "mse(y_hat, y) must be the mean of the squared errors"
'''
MSE_ANSWER = ('def mse(y_hat, y):\n    """Mean squared error of the predictions y_hat against y."""\n'
              '    return ((y_hat - y) ** 2).mean()')


def _released() -> autograders.Assignment:
    return autograders.load(STEM)


@pytest.fixture(scope="module")
def with_mse(tmp_path_factory) -> autograders.Assignment:
    """1.1's autograder with one more question, ``mse``: its zip holds one more test file."""
    released = _released()
    zip_path = tmp_path_factory.mktemp("mse") / released.zip_path.name
    shutil.copy(released.zip_path, zip_path)
    with zipfile.ZipFile(zip_path, "a") as archive:
        archive.writestr("tests/mse.py", MSE_TEST)
    return replace(released, zip_path=zip_path,
                   questions=(*released.questions, Question(STEM, "mse", 2.0)))


def _solution() -> nbformat.NotebookNode:
    return nbformat.read(paths.solution_notebook(STEM), 4)


def _index(nb: nbformat.NotebookNode, text: str) -> int:
    return next(i for i, cell in enumerate(nb.cells) if text in cell.source)


def _write(nb: nbformat.NotebookNode, folder: Path) -> Path:
    folder.mkdir(parents=True)
    path = folder / f"{STEM}.ipynb"  # named as the master, as otter's client expects
    nbformat.write(nb, path)
    return path


def _kit(notebook: Path, assignment: autograders.Assignment, limits: Limits = Limits()):
    server = ForkServerClient()
    try:
        return judge.grade_notebook(notebook, assignment, server=server, limits=limits)
    finally:
        server.close()


def _otter(notebook: Path, assignment: autograders.Assignment, out: Path) -> dict[str, float]:
    """Plain ``otter run`` of the notebook with the assignment's zip: each question's score."""
    out.mkdir()
    done = subprocess.run([sys.executable, "-m", "otter", "run", "-a", str(assignment.zip_path),
                           "-o", str(out), str(notebook)], capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    tests = json.loads((out / "results.json").read_text())["tests"]
    return {t["name"]: float(t["score"]) for t in tests if "score" in t}


def _full(assignment: autograders.Assignment) -> dict[str, float]:
    return {q.name: q.points for q in assignment.graded}


@pytest.mark.slow
def test_a_graded_name_reused_by_a_later_cell_keeps_full_marks_as_under_otter(with_mse, tmp_path):
    """The instructor's ``mse(y_hat, y)`` is checked before the notebook's own
    ``mse(theta, X, y)`` is defined further down: judged at its check cell it is right, as otter
    judges it (judged at the end of the notebook it would be called with the wrong arguments)."""
    nb = _solution()
    at = _index(nb, "def mse(theta, X, y)")
    nb.cells[at:at] = [nbformat.v4.new_code_cell(MSE_ANSWER),
                       nbformat.v4.new_code_cell('grader.check("mse")')]
    notebook = _write(nb, tmp_path / "reuses_a_graded_name")
    kit = _kit(notebook, with_mse)
    assert kit.problem is None, kit.notes
    assert kit.scores == _full(with_mse), [c.message for c in kit.cases if not c.passed]
    assert _otter(notebook, with_mse, tmp_path / "otter") == kit.scores


@pytest.mark.slow
def test_a_name_defined_only_after_its_check_cell_scores_as_under_otter(tmp_path):
    """``as_column`` defined in the cell below its check: the check ran without it, so the
    question earns nothing, and the message says the name did not exist yet when its check ran.
    ``train_test_split``'s check cell is deleted: it is judged at the end of the notebook, with a
    note, as otter's last cell judges it."""
    assignment = _released()
    assert assignment.graded[1].name == "as_column"
    nb = _solution()
    at = _index(nb, "def as_column(")
    nb.cells[at], nb.cells[at + 1] = nb.cells[at + 1], nb.cells[at]
    assert 'grader.check("as_column")' in nb.cells[at].source
    del nb.cells[_index(nb, 'grader.check("train_test_split")')]
    notebook = _write(nb, tmp_path / "defines_after_check")
    kit = _kit(notebook, assignment)
    assert kit.problem is None, kit.notes
    assert kit.scores == {**_full(assignment), "as_column": 0.0}
    hidden = [c for c in kit.cases if c.question == "as_column" and c.hidden]
    assert hidden and not any(c.passed for c in hidden)
    for case in hidden:
        assert "no function named `as_column` in your notebook yet when this question's check " \
               "ran" in case.message, case.message
        assert 'that starts "def as_column(y):" defines' in case.message, case.message
        assert "move that definition above the check cell" in case.message
    assert 'no cell runs grader.check("train_test_split"): judged on the notebook as it ' \
           'stands at its end, as otter does' in kit.notes
    otter = _otter(notebook, assignment, tmp_path / "otter")
    # otter also fails the values, dtypes and unmodified cases of as_column; it may credit the
    # devices case, which calls the student kernel's stand-in for a missing name (it raises a
    # NameError) and, with no GPU, cannot tell that error from an inconclusive run. The grader
    # knows the name is missing and credits nothing.
    assert otter.pop("as_column") < assignment.graded[1].points
    assert otter == {name: score for name, score in kit.scores.items() if name != "as_column"}


@pytest.mark.slow
def test_questions_after_the_point_where_the_notebook_stopped_are_stopped(tmp_path):
    """Cells that end the notebook's process, once more than the grader drops, after the check
    of ``as_column``: the questions checked before keep their grades, the others are "stopped",
    with a message saying their check never ran."""
    assignment = _released()
    nb = _solution()
    at = _index(nb, 'grader.check("as_column")') + 1
    nb.cells[at:at] = [nbformat.v4.new_code_cell(f"import os\nos._exit({n})")
                       for n in range(1, MAX_FATAL_CELLS + 2)]
    kit = _kit(_write(nb, tmp_path / "exits_too_often"), assignment)
    assert kit.problem is None, kit.notes
    assert kit.scores == {**{q: 0.0 for q in _full(assignment)},
                          "add_bias_column": 4.0, "as_column": 4.0}
    for case in kit.cases:
        early = case.question in ("add_bias_column", "as_column")
        assert case.kind == (PASSED if early else STOPPED), case
        if not early:
            assert case.message.startswith("Not judged: the notebook stopped before this "
                                           "question's check ran (")
    assert any(note.startswith("the notebook stopped before pinv_svd, ") for note in kit.notes)


def test_check_cells_are_read_as_otters_client_calls():
    """A call of the client's ``check`` with the question's name written out checks it;
    ``check_all()`` checks every question; a name in a comment or a string does not."""
    sources = [
        'grader.check("a")',
        "x = 1\n# grader.check('b')\ns = 'grader.check(\"b\")'",
        "result = grader.check('b')\nprint(result)",
        "%%time\ngrader.check('c')",  # IPython magic: read by its text
        'grader.check("a")',
        "grader.check_all()",
        "grader.export(pdf=False)",
    ]
    assert notebooks.checked_questions(sources[1]) == ([], False)
    assert notebooks.checked_questions(sources[3]) == (["c"], False)
    assert checkpoints.last_checks(sources[:5], ["a", "b", "c", "d"]) == {"a": 4, "b": 2, "c": 3}
    assert checkpoints.stops(sources[:5], ["a", "b", "c", "d"]) == [
        checkpoints.Stop(2, ("b",)), checkpoints.Stop(3, ("c",)), checkpoints.Stop(4, ("a",)),
        checkpoints.Stop(None, ("d",))]
    assert checkpoints.stops(sources, ["a", "d"]) == [checkpoints.Stop(5, ("a", "d")),
                                                      checkpoints.Stop(None, ())]
