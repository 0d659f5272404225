"""Lab 2's content (assignments/lab2/: notebooks 2.1 and 2.2, their hidden checks and answer banks)
proved without the release, which takes only the top-level masters so far.

Each master is staged as the release stages one (the master, the grading requirements and the
``labkit`` package with the shared checks and the folder's ``checks.py`` as
``labkit/checks/<module>.py``) and given to ``otter assign``, which runs its tests on the
solutions; its autograder zip's test files are then run in-process by otter's own test runner on
the objects the master's code defines, reached through stand-ins for the grader's handles (which
allow attribute reads, calls, construction, operators, comparisons and ``str()`` only), as the
hidden tests will reach a student's notebook. Every CORRECT variant of the answer banks keeps full
marks, and every WRONG one loses points in its own question only, under several grading keys; the
solutions and the WRONG variants are graded once more as confined notebooks, through the grader's
own handles (``labkit.grading.standins``).
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import labkit.checks
from labkit import notebooks, paths
from labkit.checks import core
from labkit.course import masters, release, student_setup

from . import marks

LAB2 = paths.ASSIGNMENTS / "lab2"
STEMS = ("2_1_forward_mode", "2_2_reverse_mode")
#: Grading keys the banks are judged under: the seeds as written, and three keys, so that hidden
#: inputs differ between runs (``core.seed_for``).
KEYS = (None, b"lab2-key-1", b"lab2-key-2", b"lab2-key-3")


def _load(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _answers(stem: str) -> ModuleType:
    return _load(LAB2 / stem / "answers.py", f"lab2_answers_{stem}")


# ---------------------------------------------------------------------------------------------
# Staging and otter assign, once per master.


@dataclass
class Assigned:
    """A master given to ``otter assign``: its question names and the test file of each."""

    stem: str
    build: Path
    tests: dict[str, str]

    @property
    def student(self) -> Path:
        return self.build / "dist" / "student" / f"{self.stem}.ipynb"

    @property
    def autograder_zip(self) -> Path:
        (found,) = (self.build / "dist" / "autograder").glob(f"{self.stem}-autograder_*.zip")
        return found


def _stage(stem: str, build: Path) -> Path:
    """A master of ``lab2/<stem>/`` staged as the release stages it."""
    return release.stage(LAB2 / stem / f"{stem}.ipynb", build)


@pytest.fixture(scope="module")
def assigned(tmp_path_factory) -> dict[str, Assigned]:
    """Both masters staged and assigned (otter assign runs every test on the solutions and fails
    if one fails)."""
    found = {}
    for stem in STEMS:
        build = tmp_path_factory.mktemp(stem)
        release._run_otter_assign(_stage(stem, build), build / "dist")
        done = Assigned(stem, build, {})
        with zipfile.ZipFile(done.autograder_zip) as archive:
            for name in archive.namelist():
                if name.startswith("tests/") and name.endswith(".py"):
                    done.tests[Path(name).stem] = archive.read(name).decode("utf-8")
        found[stem] = done
    return found


@pytest.fixture(scope="module")
def checks_importable():
    """The folders' checks importable as the release will ship them (``labkit.checks.<module>``),
    which the hidden test cells import."""
    added = {}
    for stem in STEMS:
        short = release.checks_module(stem)
        name = f"labkit.checks.{short}"
        added[name] = _load(LAB2 / stem / "checks.py", name)
        sys.modules[name] = added[name]
        setattr(labkit.checks, short, added[name])
    yield added
    for name in added:
        sys.modules.pop(name, None)
        delattr(labkit.checks, name.rsplit(".", 1)[1])


# ---------------------------------------------------------------------------------------------
# The notebook's objects, and the grader's handles on them.


def _master_code(stem: str) -> list[str]:
    """The master's code cells outside its test blocks (given code, solutions, examples)."""
    sources, blocks = [], []
    for cell in notebooks.read(LAB2 / stem / f"{stem}.ipynb").cells:
        first = cell.source.strip().splitlines()[0] if cell.source.strip() else ""
        if cell.cell_type == "raw":
            if first.startswith("# BEGIN "):
                blocks.append(first.split()[2])
            elif first.startswith("# END ") and blocks:
                blocks.pop()
        elif cell.cell_type == "code" and "TESTS" not in blocks:
            sources.append(cell.source)
    return sources


def notebook_namespace(stem: str, variant: str = "") -> dict[str, Any]:
    """What the notebook defines once every code cell of the master has run, then ``variant``
    (an answer bank's source, which redefines its question's names)."""
    env: dict[str, Any] = {"__name__": "__main__"}
    with contextlib.redirect_stdout(io.StringIO()):
        for index, source in enumerate([*_master_code(stem), variant]):
            exec(compile(source, f"<{stem} cell {index}>", "exec"), env)
    return env


def blank_namespace(assigned: Assigned) -> dict[str, Any]:
    """What the student notebook as released defines when run as it is (solutions replaced by
    `...`; cells that raise go on to the next, as in a grading run)."""
    blank: dict[str, Any] = {"__name__": "__main__"}
    with contextlib.redirect_stdout(io.StringIO()):
        for cell in notebooks.read(assigned.student).cells:
            if cell.cell_type == "code" and "otter" not in cell.source \
                    and "grader." not in cell.source:
                with contextlib.suppress(Exception):
                    exec(cell.source, blank)
    return blank


class Handle:
    """Stands in for the grader's handle on an object of the notebook: attribute reads, calls
    (construction included), the operators ``+ - * / **`` (and reflected, unary minus),
    comparisons, ``str()`` and the name of its type reach the object; plain numbers, strings and None come back as
    themselves, anything else as another handle. ``bool()``, ``hash()``, ``len()``, iteration and
    attribute writes are refused, as the grader refuses them."""

    __slots__ = ("_target",)

    def __init__(self, target: Any):
        object.__setattr__(self, "_target", target)

    def __getattr__(self, name: str) -> Any:
        return wrap(getattr(object.__getattribute__(self, "_target"), name))

    def __setattr__(self, name: str, value: Any) -> None:
        raise TypeError("the grader cannot set attributes of a notebook's object")

    def __call__(self, *args: Any) -> Any:
        return wrap(self._target(*map(unwrap, args)))

    def __str__(self) -> str:
        return str(self._target)

    def __bool__(self) -> bool:
        raise TypeError("bool() of a notebook's object is refused")

    def __hash__(self) -> int:
        raise TypeError("hash() of a notebook's object is refused")

    def __len__(self) -> int:
        raise TypeError("len() of a notebook's object is refused")

    def __iter__(self):
        raise TypeError("iterating over a notebook's object is refused")

    def __neg__(self) -> Any:
        return wrap(-self._target)

    @property
    def __notebook_type__(self) -> str:
        """The notebook's name for the object's type (``core.type_name`` reads it)."""
        return type(self._target).__name__


def _binary(op: Any, reflected: bool = False) -> Any:
    def method(self: Handle, other: Any) -> Any:
        pair = (unwrap(other), self._target) if reflected else (self._target, unwrap(other))
        return wrap(op(*pair))
    return method


for _name, _op in [("add", lambda a, b: a + b), ("sub", lambda a, b: a - b),
                   ("mul", lambda a, b: a * b), ("truediv", lambda a, b: a / b),
                   ("pow", lambda a, b: a ** b)]:
    setattr(Handle, f"__{_name}__", _binary(_op))
    setattr(Handle, f"__r{_name}__", _binary(_op, reflected=True))
for _name, _op in [("eq", lambda a, b: a == b), ("ne", lambda a, b: a != b),
                   ("lt", lambda a, b: a < b), ("le", lambda a, b: a <= b),
                   ("gt", lambda a, b: a > b), ("ge", lambda a, b: a >= b)]:
    setattr(Handle, f"__{_name}__", _binary(_op))


def wrap(value: Any) -> Any:
    return value if value is None or type(value) in (int, float, bool, str) else Handle(value)


def unwrap(value: Any) -> Any:
    return object.__getattribute__(value, "_target") if isinstance(value, Handle) else value


def handles(env: dict[str, Any]) -> dict[str, Any]:
    """The names a hidden test is given, as the grader gives them: handles on the notebook's
    objects (modules and dunder names left out)."""
    return {name: wrap(value) for name, value in env.items()
            if not name.startswith("__") and not isinstance(value, ModuleType)}


# ---------------------------------------------------------------------------------------------
# Grading one namespace with the assigned test files.


def hidden_results(assigned: Assigned, env: dict[str, Any], folder: Path,
                   key: bytes | None = None) -> dict[str, dict[str, tuple[bool, str]]]:
    """Per question, per hidden test: (passed, what the feedback page shows when it failed),
    each case run by the grader's own runner on handles on ``env``'s objects under ``key``."""
    results = {}
    for question, source in assigned.tests.items():
        path = folder / f"{assigned.stem}-{question}.py"
        if not path.exists():
            path.write_text(source)
        results[question] = graded(path, question, handles(env), key)
    return results


def graded(path: Path, question: str, names: dict[str, Any], key: bytes | None = None, *,
           hidden: bool = True) -> dict[str, tuple[bool, str]]:
    """One question's hidden tests (or with ``hidden=False`` its public ones), each case run by
    the grader's runner (``grading.outcomes``) on ``names`` under ``key``: per test, (passed,
    the message a student is shown)."""
    from otter.test_files import ExceptionTestFile

    from labkit.grading import outcomes

    tests = ExceptionTestFile.from_file(str(path))
    with core.keyed(key):
        _, results = outcomes.run_question(tests, names)
    return {marks.test_name(case, question): (result.passed, result.message)
            for case, result in zip(tests.test_cases, results) if case.hidden == hidden}


def failed(results: dict[str, dict[str, tuple[bool, str]]]) -> dict[str, set[str]]:
    return {question: {name for name, (passed, _) in tests.items() if not passed}
            for question, tests in results.items()
            if any(not passed for passed, _ in tests.values())}


def _variants(kind: str) -> list:
    cases = []
    for stem in STEMS:
        bank = getattr(_answers(stem), kind)
        for question, variants in bank.items():
            for name, source in variants.items():
                cases.append(pytest.param(stem, question, name, source,
                                          id=f"{stem[:3]}-{question}-{name}"))
    return cases


# ---------------------------------------------------------------------------------------------
# The masters.


def test_otter_assign_accepts_each_master_and_leaks_nothing(assigned):
    """otter assign ran every test, public and hidden, on the solutions (it fails otherwise);
    the student notebook holds no solution line and no hidden test, and takes the kit's first
    cell."""
    for stem, done in assigned.items():
        parsed = masters.parse(LAB2 / stem / f"{stem}.ipynb")
        assert masters.find_leaks(parsed, done.student) == [], stem
        assert set(done.tests) == {q.name for q in parsed.questions if not q.written}
        # The release puts the kit's setup cell under the title, carrying every public check.
        student = notebooks.read(done.student)
        student_setup.install(student, stem)
        setup = student.cells[1]
        assert student_setup.is_setup_cell(setup)
        carried = student_setup.carried_code(setup.source)
        assert all(f"test_{question}_example" in carried for question in done.tests)


def test_masters_ask_written_questions_graded_by_hand():
    written = {stem: {q.name for q in masters.parse(LAB2 / stem / f"{stem}.ipynb").questions
                      if q.written} for stem in STEMS}
    assert written == {"2_1_forward_mode": {"symbolic_derivatives"},
                       "2_2_reverse_mode": {"algorithm_by_hand"}}


def test_masters_fix_the_original_defects():
    """2.2 is part 2 (not "Part 3") and has no dual-number TODO; 2.1 says whether `**` takes a
    plain number; the public checks of the stored floats accept a correct 0.5, not any
    non-zero number (`assert dzdy`)."""
    texts = {stem: (LAB2 / stem / f"{stem}.ipynb").read_text(encoding="utf-8") for stem in STEMS}
    assert "Part 3" not in texts["2_2_reverse_mode"]
    assert "TODO" not in texts["2_2_reverse_mode"]
    assert "Both operands of every operator are dual numbers" in texts["2_1_forward_mode"]
    for text in texts.values():
        assert "assert dzdy\"" not in text and "assert dzdy," not in text


def test_public_checks_pass_on_the_solution_and_fail_on_the_blank_notebook(assigned,
                                                                           checks_importable,
                                                                           tmp_path):
    """The student notebook as released (solutions replaced by `...`) fails every public check;
    the master's solutions pass them (the public tests run on the objects themselves, in the
    student's kernel)."""
    for stem, done in assigned.items():
        solved, blank = notebook_namespace(stem), blank_namespace(done)
        for question, source in done.tests.items():
            path = tmp_path / f"{stem}-{question}.py"
            path.write_text(source)
            for env, should_pass in ((solved, True), (blank, False)):
                public = graded(path, question, env, hidden=False)
                assert public and all(passed == should_pass for passed, _ in public.values()), (
                    stem, question, should_pass, public)


@pytest.mark.slow
def test_otter_run_gives_the_solution_full_marks(assigned, tmp_path):
    """otter's own grading of the solution notebook with its autograder zip: the notebook runs in
    a kernel, and the hidden tests import the checks shipped in the zip."""
    for stem, done in assigned.items():
        solution = done.build / "dist" / "autograder" / f"{stem}.ipynb"
        out = tmp_path / stem
        out.mkdir()
        result = subprocess.run(
            [sys.executable, "-m", "otter", "run", "-a", str(done.autograder_zip), "-o", str(out),
             str(solution)], capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
        graded = json.loads((out / "results.json").read_text())
        scored = [t for t in graded["tests"] if "score" in t]  # not the public tests' summary
        lost = [(t["name"], t.get("output", "")[:300]) for t in scored
                if t["score"] != t["max_score"]]
        assert not lost, lost
        assert {t["name"] for t in scored} == set(done.tests)


# ---------------------------------------------------------------------------------------------
# Hidden checks on the solutions and the answer banks.


@pytest.mark.parametrize("stem", STEMS)
def test_the_solution_gets_full_marks_under_every_key(stem, assigned, checks_importable,
                                                      tmp_path):
    for key in KEYS:
        results = hidden_results(assigned[stem], notebook_namespace(stem), tmp_path, key)
        assert sum(len(tests) for tests in results.values()) >= 12
        assert failed(results) == {}, (key, results)


def test_hidden_inputs_depend_on_the_grading_key(checks_importable):
    forward, reverse = checks_importable.values()
    with core.keyed(None):
        plain = forward._operands("/"), reverse._operands("**")
    with core.keyed(b"lab2-key-1"):
        keyed = forward._operands("/"), reverse._operands("**")
    assert plain[0] != keyed[0] and plain[1] != keyed[1]
    assert all(a > 0 for a, _ in keyed[1]), "a power's base stays positive under every key"


@pytest.mark.parametrize("stem, question, name, source", _variants("CORRECT"))
def test_correct_variant_keeps_full_marks(stem, question, name, source, assigned,
                                          checks_importable, tmp_path):
    for key in KEYS:
        results = hidden_results(assigned[stem], notebook_namespace(stem, source), tmp_path, key)
        assert failed(results) == {}, (key, results)


@pytest.mark.parametrize("stem, question, name, source", _variants("WRONG"))
def test_wrong_variant_loses_points_in_its_own_question_only(stem, question, name, source,
                                                             assigned, checks_importable,
                                                             tmp_path):
    answers = _answers(stem)
    words = answers.WORDS.get(question, {}).get(name)
    assert words, f"no WORDS for {question}/{name}"
    exact = answers.FAILS.get(question, {}).get(name)
    for key in KEYS:
        results = hidden_results(assigned[stem], notebook_namespace(stem, source), tmp_path, key)
        lost = failed(results)
        assert set(lost) == {question}, (key, lost)
        if exact is not None:
            assert lost[question] == exact, (key, lost)
        shown = "\n".join(message for _, message in results[question].values()).lower()
        absent = [word for word in words if word.lower() not in shown]
        assert not absent, f"the feedback lacks {absent}:\n{shown}"


def test_a_blank_notebook_scores_zero(assigned, checks_importable, tmp_path):
    for stem, done in assigned.items():
        results = hidden_results(done, blank_namespace(done), tmp_path)
        assert all(not passed for tests in results.values() for passed, _ in tests.values()), (
            stem, results)
        assert "the placeholder" in results["dzdy"]["value"][1]  # `dzdy = ...` left as given


def test_the_banks_hold_enough_variants():
    counts = {kind: sum(len(variants) for stem in STEMS
                        for variants in getattr(_answers(stem), kind).values())
              for kind in ("WRONG", "CORRECT")}
    assert counts["WRONG"] >= 15 and counts["CORRECT"] >= 10, counts
    for stem in STEMS:
        answers = _answers(stem)
        graded = {q.name for q in masters.parse(LAB2 / stem / f"{stem}.ipynb").questions
                  if not q.written}
        assert set(answers.WRONG) == graded, f"{stem}: every graded question has wrong answers"


def test_stored_results_must_be_plain_floats(checks_importable):
    """A correct number of another type (a tensor, a dual number, an int-like bool) is refused
    with a message, never compared."""
    import torch

    forward, reverse = checks_importable.values()
    for check in (forward.check_dzdy, reverse.check_dzdy):
        check(0.5)
        for wrong in (torch.tensor(0.5), True, "0.5", None):
            with pytest.raises(core.CheckFailed, match="Python float"):
                check(wrong)
        with pytest.raises(core.CheckFailed, match="no variable named `dzdy`"):
            check(core.MissingName("dzdy"))


def test_a_missing_class_or_function_is_named_in_the_message(checks_importable):
    forward, reverse = checks_importable.values()
    with pytest.raises(core.CheckFailed, match="no class named `DualNumber`"):
        forward.check_add(core.MissingName("DualNumber"))
    with pytest.raises(core.CheckFailed, match="no class named `Var`"):
        reverse.check_used_twice(core.MissingName("Var"), lambda x: x)
    env = notebook_namespace("2_2_reverse_mode")
    with pytest.raises(core.CheckFailed, match="no function named `tan`"):
        reverse.check_tan(wrap(env["Var"]), core.MissingName("tan"))


# ---------------------------------------------------------------------------------------------
# Through the grader's own handles.


@pytest.mark.slow
@pytest.mark.parametrize("stem", STEMS)
def test_hidden_tests_judge_a_confined_notebook_through_the_graders_handles(stem, assigned,
                                                                            checks_importable,
                                                                            tmp_path):
    """The solution and every variant of the bank run as a notebook in the grader's confined
    process, their objects reached by the grader's own stand-ins: the solution keeps full marks
    and each wrong variant loses points in its own question only, as on the local stand-ins."""
    import nbformat

    from labkit.grading import standins
    from labkit.sandbox.confine import Limits
    from labkit.sandbox.session import ForkServerClient, NotebookSession

    answers = _answers(stem)
    runs = [("solution", None, "")] + [
        (f"{question}/{name}", question, source)
        for question, variants in answers.WRONG.items() for name, source in variants.items()]
    names = ("DualNumber", "Var", "sin", "cos", "tan", "exp", "z", "dzdy", "grad")
    server = ForkServerClient()
    try:
        for label, own, source in runs:
            path = tmp_path / label.replace("/", "-") / f"{stem}.ipynb"
            path.parent.mkdir()
            nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code)
                                                 for code in [*_master_code(stem), source]])
            nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                         "language": "python"}
            nbformat.write(nb, path)
            session = NotebookSession(server, path, path.name, Limits(call_seconds=10), [])
            session.start()
            try:
                env = standins.RemoteEnv(session)
                given = {name: env.get(name, core.MissingName(name)) for name in names}
                lost = set()
                for question, test_source in assigned[stem].tests.items():
                    test_file = path.parent / f"{question}.py"
                    test_file.write_text(test_source)
                    if not all(passed for passed, _ in graded(test_file, question, given).values()):
                        lost.add(question)
            finally:
                session.close()
            assert lost == ({own} if own else set()), (label, lost)
    finally:
        server.close()
