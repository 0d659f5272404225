"""Lab 2.3 (automatic differentiation in PyTorch) as content: its master is a valid otter master
whose solution passes its own public and hidden tests, and its hidden checks judge the answer
bank fairly (each wrong answer loses points in its own question only, each correct one keeps
full marks).

This runs without the grading machinery: the master is staged by ``labkit.course.release.stage``
(its hidden tests and points from its grading.toml, the shared check modules, this lab's
``checks.py`` as ``labkit/checks/pytorch_autograd.py``, the grading requirements),
``otter assign`` splits it, and the hidden tests are the autograder zip's own test files, run by
otter's runner in this process as tests/conftest.py runs Lab 1's.
"""

from __future__ import annotations

import importlib.util
import math
import subprocess
import sys
import types
import zipfile
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from labkit import notebooks, paths
from labkit.checks import core
from labkit.course import masters, release, student_setup

from . import marks

LAB = paths.ASSIGNMENTS / "lab2" / "2_3_pytorch_autograd"
MASTER = LAB / "2_3_pytorch_autograd.ipynb"
CHECKS = LAB / "checks.py"
CHECKS_NAME = "labkit.checks.pytorch_autograd"
QUESTIONS = ("algorithm_grad", "two_output_grads", "gradient_descent", "sample")
WRITTEN = ("multiple_output_derivatives", "why_x_data")
#: Grading keys the bank is judged under: the seeds as written (a plain otter run), and two keys
#: (the kit draws each notebook's hidden inputs under its own, ``core.seed_for``).
KEYS = (None, b"lab2-key-1", b"lab2-key-2")


def _load(path: Path, name: str) -> types.ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


BANK = _load(LAB / "answers.py", "lab2_pytorch_autograd_answers")


def stage(build: Path) -> Path:
    """The master with what its tests import, staged as the release stages a master (its hidden
    tests and points written in from its grading.toml)."""
    return release.stage(MASTER, build)


@pytest.fixture(scope="module")
def assigned(tmp_path_factory) -> Path:
    """``otter assign`` of the staged master, tests run on its solution (otter fails the command
    unless the solution earns every point of every public and hidden test)."""
    build = tmp_path_factory.mktemp("lab2-stage")
    staged = stage(build)
    result = subprocess.run([sys.executable, "-m", "otter", "assign", staged.name, "dist"],
                            cwd=build, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, \
        f"otter assign failed:\n{result.stdout[-4000:]}{result.stderr[-4000:]}"
    return build / "dist"


@pytest.fixture(scope="module")
def hidden_tests(assigned, tmp_path_factory) -> dict[str, Path]:
    """The autograder zip's test file of each question."""
    (archive,) = (assigned / "autograder").glob("*-autograder_*.zip")
    folder = tmp_path_factory.mktemp("lab2-tests")
    with zipfile.ZipFile(archive) as opened:
        for question in QUESTIONS:
            (folder / f"{question}.py").write_bytes(opened.read(f"tests/{question}.py"))
    return {question: folder / f"{question}.py" for question in QUESTIONS}


@pytest.fixture(scope="module")
def checks_installed():
    """This lab's checks importable as the zip ships them (``labkit.checks.pytorch_autograd``)."""
    import labkit.checks

    module = _load(CHECKS, CHECKS_NAME)
    sys.modules[CHECKS_NAME] = module
    labkit.checks.pytorch_autograd = module
    yield module
    del sys.modules[CHECKS_NAME]
    del labkit.checks.pytorch_autograd


def _solution_sources() -> list[str]:
    """The master's code cells as its solution runs them: every code cell outside the tests."""
    sources, in_tests = [], False
    for cell in notebooks.read(MASTER).cells:
        text = cell.source.strip()
        if cell.cell_type == "raw" and text.upper().startswith("# BEGIN TESTS"):
            in_tests = True
        elif cell.cell_type == "raw" and text.upper().startswith("# END TESTS"):
            in_tests = False
        elif cell.cell_type == "code" and not in_tests:
            sources.append(cell.source)
    return sources


def solution_env(*extra: str) -> dict:
    """The notebook's names after running the master's solution (its two error demonstrations
    included), then ``extra`` sources (an answer variant) in the same namespace."""
    env: dict = {"__name__": "__main__", "torch": torch, "math": math, "F": F}
    for index, source in enumerate([*_solution_sources(), *extra]):
        exec(compile(source, f"<lab 2.3 cell {index}>", "exec"), env)
    return env


def grade(env: dict, hidden_tests: dict[str, Path], key: bytes | None = None, *,
          hidden: bool = True) -> dict[str, dict[str, tuple[bool, str]]]:
    """Per question, per hidden test (by its name after the question's): passed, and its
    message as the feedback page shows it (each case run as the grader runs it). The public
    checks (no points) are left out, as points are the hidden tests'; with ``hidden=False``, the
    public checks alone."""
    from otter.test_files import ExceptionTestFile

    from labkit.grading import outcomes

    graded = {}
    for question, path in hidden_tests.items():
        tests = ExceptionTestFile.from_file(str(path))
        with core.keyed(key):
            _, results = outcomes.run_question(tests, env)
        graded[question] = {marks.test_name(case, question): (result.passed, result.message)
                            for case, result in zip(tests.test_cases, results)
                            if case.hidden == hidden}
    return graded


def student_env(assigned: Path) -> dict:
    """The names a blank student notebook defines: its code cells run in order, a cell that
    raises skipped (as the grader goes on past it), otter's own cells left out."""
    env: dict = {"__name__": "__main__"}
    for cell in notebooks.read(assigned / "student" / MASTER.name).cells:
        if cell.cell_type != "code" or "otter" in cell.source or "grader." in cell.source:
            continue
        try:
            exec(compile(cell.source, "<blank lab 2.3 cell>", "exec"), env)
        except Exception:  # a blank answer's cell may raise; the notebook goes on
            continue
    return env


def _failed(graded: dict) -> dict[str, set[str]]:
    return {question: {name for name, (passed, _) in tests.items() if not passed}
            for question, tests in graded.items()}


def _lost(graded: dict) -> str:
    """The failed tests' messages, for an assertion's explanation."""
    return "\n".join(f"{question}/{name}: {message}" for question, tests in graded.items()
                     for name, (passed, message) in tests.items() if not passed)


def _variants(kind: dict) -> list:
    return [pytest.param(question, name, source, key,
                         id=f"{question}-{name}-{key.decode() if key else 'seeds'}")
            for question, variants in kind.items() for name, source in variants.items()
            for key in KEYS]


def test_the_master_assigns_and_its_solution_passes_every_test(assigned):
    """otter assign ran the solution against every test (it fails otherwise); the student
    notebook holds no solution line and no hidden test."""
    parsed = masters.parse(MASTER)
    assert [q.name for q in parsed.questions if not q.written] == list(QUESTIONS)
    assert [q.name for q in parsed.questions if q.written] == list(WRITTEN)
    leaks = masters.find_leaks(parsed, assigned / "student" / MASTER.name)
    assert not leaks, leaks
    student = notebooks.read(assigned / "student" / MASTER.name)
    assert "checks." not in "".join(cell.source for cell in student.cells)
    # The release's first cell is the kit's setup cell (no pip cell of the notebook's own), and
    # it carries the four public checks.
    assert not any("pip install" in cell.source for cell in student.cells)
    student_setup.install(student, MASTER.stem)
    setup = student.cells[1]  # under the title
    assert student_setup.is_setup_cell(setup)
    carried = student_setup.carried_code(setup.source)
    assert all(f"test_{question}_example" in carried for question in QUESTIONS)


def test_the_error_demonstrations_are_caught_so_run_all_survives_them(capsys):
    solution_env()
    printed = capsys.readouterr().out
    assert printed.count("RuntimeError:") == 2
    assert "modified by an inplace operation" in printed
    assert "leaf Variable that requires grad" in printed


@pytest.mark.parametrize("key", KEYS)
def test_the_masters_solution_earns_every_point(key, hidden_tests, checks_installed):
    graded = grade(solution_env(), hidden_tests, key)
    assert _failed(graded) == {question: set() for question in QUESTIONS}, _lost(graded)
    assert all(len(tests) >= 5 for tests in graded.values())


def test_the_public_checks_pass_on_the_solution(hidden_tests, checks_installed):
    """otter assign's own run cannot show it: public checks carry no points."""
    graded = grade(solution_env(), hidden_tests, hidden=False)
    assert {q: len(tests) for q, tests in graded.items()} == {q: 1 for q in QUESTIONS}
    assert _failed(graded) == {question: set() for question in QUESTIONS}, _lost(graded)


def test_a_blank_notebook_fails_every_public_check_and_scores_zero(assigned, hidden_tests,
                                                                   checks_installed):
    env = student_env(assigned)
    assert all(env[name] is None or env[name] is Ellipsis or callable(env[name])
               for name in ("dzdx", *QUESTIONS))
    for hidden in (False, True):
        graded = grade(env, hidden_tests, hidden=hidden)
        assert _failed(graded) == {q: set(tests) for q, tests in graded.items()}


def test_the_bank_holds_enough_variants():
    wrong = sum(len(v) for v in BANK.WRONG.values())
    correct = sum(len(v) for v in BANK.CORRECT.values())
    assert wrong >= 10 and correct >= 5
    assert set(BANK.WRONG) == set(QUESTIONS) and set(BANK.CORRECT) == set(QUESTIONS)
    missing = [f"{q}/{v}" for q, variants in BANK.WRONG.items() for v in variants
               if not BANK.WORDS.get(q, {}).get(v)]
    assert not missing, f"no WORDS for {missing}"


@pytest.mark.parametrize("question, name, source, key", _variants(BANK.WRONG))
def test_a_wrong_answer_loses_points_in_its_own_question_only(question, name, source, key,
                                                             hidden_tests, checks_installed):
    graded = grade(solution_env(source), hidden_tests, key)
    failed = _failed(graded)
    assert failed[question], f"a wrong answer kept full marks: {graded[question]}"
    others = {q: f for q, f in failed.items() if q != question and f}
    assert not others, f"it cost points in other questions: {others}"
    exact = BANK.FAILS.get(question, {}).get(name)
    if exact is not None:
        assert failed[question] == exact, _lost(graded)
    shown = "\n".join(message for passed, message in graded[question].values() if not passed)
    absent = [w for w in BANK.WORDS[question][name] if w.lower() not in shown.lower()]
    assert not absent, f"the feedback lacks {absent}:\n{shown}"


@pytest.mark.parametrize("question, name, source, key", _variants(BANK.CORRECT))
def test_a_correct_alternative_keeps_full_marks(question, name, source, key, hidden_tests,
                                                checks_installed):
    graded = grade(solution_env(source), hidden_tests, key)
    assert _failed(graded) == {q: set() for q in QUESTIONS}, _lost(graded)
