"""Lab 2 graded through the grader's own path, as ``make grade`` grades a class: each notebook run
confined (as root, and as an ordinary user on a TA's laptop), the released autograder's own test
files run case by case in the grader by ``labkit.grading.judge``, on stand-ins of the notebook's
objects (``labkit.grading.standins``).

2.3 (PyTorch autograd): its solution earns every point, each wrong answer of its bank loses
points in its own question only, and its blank notebook scores zero; its checks pass a
``torch.Generator`` to the student's function and differentiate through its results, which
reach the grader as data (``labkit.sandbox.objects`` keeps the graphs). 2.1 and 2.2: a
``DualNumber`` or ``Var`` that attacks whoever touches it (an attribute lookup that loops, an
``__eq__``/``__bool__`` that lie, a ``__del__`` that kills its process, gigabytes of text) costs
only the checks that touch it.

The notebooks are the released ones (``paths.solution_notebook``, ``paths.student_notebook``),
a wrong answer or a hostile cell appended to the solution (the check cells of the questions it
touches removed, so that those are judged after it), graded with the released autograder zips
and manifests, as ``make grade LAB=lab2`` grades them.
"""

from __future__ import annotations

import json
import shutil

import nbformat
import pytest

from labkit import notebooks, paths
from labkit.course import autograders

from .test_confinement import _chown_tree, _run, _workspace, mode, ta_subtree, ta_user  # noqa: F401
from .test_lab2_autograd_content import BANK as AUTOGRAD_BANK

pytestmark = pytest.mark.slow

FORWARD, REVERSE, AUTOGRAD = "2_1_forward_mode", "2_2_reverse_mode", "2_3_pytorch_autograd"

#: What a notebook may cost the grader at most: seconds to grade a notebook that only answers
#: (one restart at most), and the grader's own peak memory, far below the gigabyte of text a
#: hostile object builds in the notebook.
SECONDS_PER_ANSWERING_NOTEBOOK = 30
MAX_GRADER_RSS_KB = 1 << 20

# -- hostile objects: a cell appended to a master's solution, after its own cells ran ------------

#: An attribute lookup that loops: the results of one operator lose an attribute the checks read,
#: and ``__getattr__`` never answers for it.
LOOPS = '''
def _loops(self, name):
    while True:
        pass
CLASS.__getattr__ = _loops
_operator = CLASS.OPERATOR
def _stuck(self, other):
    result = _operator(self, other)
    del result.ATTRIBUTE
    return result
CLASS.OPERATOR = _stuck
'''

#: Comparisons and truth that say yes to everything, on a wrong ``__add__`` and on stored answers
#: that are no numbers: lying earns nothing.
LIES = '''
class _Yes:
    def __eq__(self, other):
        return True
    __ne__ = lambda self, other: False
    def __bool__(self):
        return True
    def __float__(self):
        return EXPECTED
CLASS.__eq__ = lambda self, other: _Yes()
CLASS.__ne__ = lambda self, other: False
CLASS.__bool__ = lambda self: True
_add = CLASS.__add__
def _wrong_add(self, other):
    result = _add(self, other)
    WRONG_ADD
    return result
CLASS.__add__ = _wrong_add
dzdy = _Yes()
'''

#: A finaliser that kills its process: every power frees such an object on the way.
DOOMED = '''
import os
def _kill(self):
    if self.__dict__.get("doomed"):
        os.kill(os.getpid(), 9)
CLASS.__del__ = _kill
_power = CLASS.__pow__
def _doomed_power(self, other):
    victim = CLASS(ARGS)
    victim.doomed = True
    del victim
    return _power(self, other)
CLASS.__pow__ = _doomed_power
'''

#: A gigabyte of text from ``str()`` of every instance, 128 MB from ``repr()``, and a division
#: whose error message carries the reprs of both operands.
HUGE = '''
CLASS.__str__ = lambda self: "x" * (1 << 30)
CLASS.__repr__ = lambda self: "y" * (1 << 27)
def _refuses(self, other):
    raise ZeroDivisionError(f"will not divide {self!r} by {other!r}")
CLASS.__truediv__ = _refuses
'''

HOSTILE = {
    FORWARD: {
        "loops": LOOPS.replace("OPERATOR", "__sub__").replace("ATTRIBUTE", "dvalue"),
        "lies": LIES.replace("EXPECTED", "0.5").replace(
            "WRONG_ADD", "result.dvalue = self.dvalue - other.dvalue"),
        "doomed": DOOMED.replace("ARGS", "0.0, 0.0"),
        "huge": HUGE,
    },
    REVERSE: {
        "loops": LOOPS.replace("OPERATOR", "__truediv__").replace("ATTRIBUTE", "value"),
        "lies": LIES.replace("EXPECTED", "0.5").replace(
            "WRONG_ADD", "other.children[-1] = (-1.0, result)"),
        "doomed": DOOMED.replace("ARGS", "0.0"),
        "huge": HUGE,
    },
}
CLASSES = {FORWARD: "DualNumber", REVERSE: "Var"}
#: The question of each stem whose checks read what each hostile cell spoils, and the questions
#: that lose points (the others keep every point).
LOSES = {
    FORWARD: {"loops": {"dual_operators"}, "lies": {"dual_operators", "dzdy"},
              "doomed": {"dual_operators"}, "huge": {"dual_operators"}},
    REVERSE: {"loops": {"var_operators"}, "lies": {"var_operators", "dzdy"},
              "doomed": {"var_operators"}, "huge": {"var_operators"}},
}


# -- the notebooks, graded once per mode -------------------------------------------------------

def _solution(stem: str, *extra: str, unchecked: tuple[str, ...] = ()) -> nbformat.NotebookNode:
    """The released solution, with ``extra`` code cells after its own, and without the check
    cells of the ``unchecked`` questions: a question is judged where its check cell runs, and
    one that no cell checks at the end, after the extra cells (``grading.checkpoints``)."""
    nb = nbformat.read(paths.solution_notebook(stem), 4)
    nb.cells = [cell for cell in nb.cells if cell.cell_type != "code"
                or not set(notebooks.checked_questions(cell.source)[0]) & set(unchecked)]
    nb.cells.extend(nbformat.v4.new_code_cell(code) for code in extra)
    return nb


@pytest.fixture(scope="module")
def released() -> dict:
    """Each Lab 2 assignment as released: its autograder zip and its autograded questions."""
    found = {}
    for stem in (FORWARD, REVERSE, AUTOGRAD):
        assignment = autograders.load(stem)
        found[stem] = {"zip": assignment.zip_path,
                       "questions": [[q.name, q.points] for q in assignment.graded]}
    return found


def _runs() -> dict[str, tuple[str, nbformat.NotebookNode]]:
    """label -> (stem, notebook) of every notebook graded."""
    runs = {"2.3/solution": (AUTOGRAD, _solution(AUTOGRAD)),
            "2.3/blank": (AUTOGRAD, nbformat.read(paths.student_notebook(AUTOGRAD), 4))}
    for question, variants in AUTOGRAD_BANK.WRONG.items():
        for name, source in variants.items():
            runs[f"2.3/{question}/{name}"] = (AUTOGRAD, _solution(AUTOGRAD, source,
                                                                  unchecked=(question,)))
    for stem, cells in HOSTILE.items():
        runs[f"{stem}/solution"] = (stem, _solution(stem))
        every = tuple(q.name for q in autograders.load(stem).graded)
        for name, cell in cells.items():
            runs[f"{stem}/{name}"] = (stem, _solution(stem, cell.replace("CLASS", CLASSES[stem]),
                                                      unchecked=every))
    return runs


@pytest.fixture(scope="module")
def graded(mode, released) -> dict:
    """Every notebook graded by ``judge.grade_notebook`` in one grading process, as root or as
    the TA: label -> scores, cases, notes and seconds."""
    workspace = _workspace(mode)
    items = []
    for label, (stem, nb) in _runs().items():
        folder = workspace / "notebooks" / label.replace("/", "-").replace(".", "_")
        folder.mkdir(parents=True)
        nbformat.write(nb, folder / f"{stem}.ipynb")
        zip_path = workspace / f"{stem}.zip"
        if not zip_path.exists():
            shutil.copy(released[stem]["zip"], zip_path)
        items.append({"label": label, "notebook": str(folder / f"{stem}.ipynb"),
                      "zip": str(zip_path), "questions": released[stem]["questions"]})
    spec = workspace / "spec.json"
    spec.write_text(json.dumps({"notebooks": items}))
    _chown_tree(workspace, mode)
    result = _run(mode, workspace, "notebooks", str(spec))
    result["full"] = {stem: {q: p for q, p in released[stem]["questions"]}
                      for stem in released}
    yield result
    shutil.rmtree(workspace, ignore_errors=True)


def _lost(graded: dict, label: str, stem: str) -> set[str]:
    result = graded["results"][label]
    assert result["problem"] is None, (label, result["problem"], result["notes"])
    full = graded["full"][stem]
    assert set(result["scores"]) == set(full), (label, result["scores"])
    return {question for question, score in result["scores"].items() if score < full[question]}


def _failures(graded: dict, label: str) -> str:
    return "\n".join(f"{case['question']}/{case['name']}: {case['message'][:300]}"
                     for case in graded["results"][label]["cases"] if case["kind"] != "passed")


# -- 2.3 -------------------------------------------------------------------------------------

def test_the_solution_of_2_3_earns_every_point_and_passes_its_public_checks(graded):
    label = "2.3/solution"
    assert _lost(graded, label, AUTOGRAD) == set(), _failures(graded, label)
    cases = graded["results"][label]["cases"]
    assert all(case["kind"] == "passed" for case in cases), _failures(graded, label)
    assert {case["question"] for case in cases if not case["hidden"]} == {
        q for q, _ in graded["full"][AUTOGRAD].items()}


@pytest.mark.parametrize("question, name", [
    (question, name) for question, variants in AUTOGRAD_BANK.WRONG.items() for name in variants])
def test_a_wrong_2_3_answer_loses_points_in_its_own_question_only(graded, question, name):
    label = f"2.3/{question}/{name}"
    assert _lost(graded, label, AUTOGRAD) == {question}, _failures(graded, label)


def test_the_blank_2_3_notebook_scores_zero(graded):
    result = graded["results"]["2.3/blank"]
    assert result["problem"] is None, result["notes"]
    assert result["scores"] == {q: 0.0 for q in graded["full"][AUTOGRAD]}, result["scores"]


def test_a_2_3_notebook_is_graded_in_seconds(graded):
    """Through the confined path a 2.3 notebook costs the grader a few seconds (the first one
    also starts the fork server); the figures are in docs/maintainers.md."""
    seconds = {label: result["seconds"] for label, result in graded["results"].items()
               if label.startswith("2.3/")}
    assert max(seconds.values()) < SECONDS_PER_ANSWERING_NOTEBOOK, seconds


# -- 2.1 and 2.2: objects that attack whoever touches them --------------------------------------

@pytest.mark.parametrize("stem", [FORWARD, REVERSE])
def test_the_solutions_of_2_1_and_2_2_pass_every_check_public_ones_included(graded, stem):
    """Their public checks ask ``isinstance(z, DualNumber)`` of the notebook's own objects."""
    label = f"{stem}/solution"
    assert _lost(graded, label, stem) == set(), _failures(graded, label)
    assert all(case["kind"] == "passed" for case in graded["results"][label]["cases"]), \
        _failures(graded, label)


@pytest.mark.parametrize("stem", [FORWARD, REVERSE])
@pytest.mark.parametrize("hostile", ["loops", "lies", "doomed", "huge"])
def test_a_hostile_dual_number_or_var_costs_only_the_checks_that_touch_it(graded, stem, hostile):
    label = f"{stem}/{hostile}"
    assert _lost(graded, label, stem) == LOSES[stem][hostile], _failures(graded, label)


@pytest.mark.parametrize("stem", [FORWARD, REVERSE])
def test_what_each_hostile_object_did_is_said_in_its_checks(graded, stem):
    def said(hostile: str) -> str:
        return _failures(graded, f"{stem}/{hostile}")

    assert "the call ran longer than 6 s" in said("loops")
    assert "ended the notebook's process" in said("doomed")
    lies = said("lies")
    assert "wrong dvalue" in lies or "is wrong: off by" in lies, lies
    assert "`dzdy` is an object of type `_Yes`" in lies, lies
    huge = said("huge")
    assert "ZeroDivisionError: will not divide yyyy" in huge, huge
    assert max(len(case["message"]) for case in graded["results"][f"{stem}/huge"]["cases"]) < 1000


def test_the_grader_holds_none_of_the_hostile_text_and_never_hangs(graded):
    assert graded["max_rss_kb"] < MAX_GRADER_RSS_KB
    for stem in (FORWARD, REVERSE):
        assert graded["results"][f"{stem}/huge"]["seconds"] < SECONDS_PER_ANSWERING_NOTEBOOK
