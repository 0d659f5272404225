"""A lab as a folder of content, read through its declarative files.

``assignments/<lab>/lab.toml`` says what the lab's notebooks need loaded before they start;
``assignments/<lab>/<stem>/grading.toml`` says what the kit needs to know about one assignment
beyond its master notebook: every question's points and hidden checks (``[questions.<name>]``,
the one place points are stated; ``course.assemble`` writes them into the notebook otter gets),
the demo class's mistakes, the bench's slow answers, the data files its notebook reads. The
machinery reads these rather than naming any lab, assignment, function or data set itself, so a
new lab is added by adding a folder.
"""

from __future__ import annotations

import math
import re
import runpy
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from labkit import paths


class SpecError(ValueError):
    """A lab's or assignment's declarative file that cannot be read; the message names it."""


@dataclass(frozen=True)
class DemoMistake:
    """An edit of the solution's text that makes the demo class's typical mistake."""

    solution: str
    mistaken: str
    what: str


#: A name a hidden check is given or a test is called by: a Python identifier.
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
#: What a hidden check calls in the checks module: a name, or an attribute of one.
_CALL = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")


@dataclass(frozen=True)
class HiddenCheck:
    """One hidden test of a question: a call into the assignment's checks module, worth
    ``points``, given the notebook's objects named in ``uses`` (or its whole namespace)."""

    #: the test's name after the question's: ``test_<question>_<test>``
    test: str
    #: the function of the checks module called, ``name`` or ``name.attribute``
    call: str
    points: int | float = 1
    #: the notebook's names passed to the call, in order (the question's ``uses`` by default)
    uses: tuple[str, ...] = ()
    #: pass the notebook's global namespace instead of names, for a check that must report a
    #: name the student never defined rather than fail on it
    namespace: bool = False
    #: literal values passed before the names (a check shared by several tests)
    args: tuple[str | int | float | bool, ...] = ()


@dataclass(frozen=True)
class QuestionSpec:
    """A question's grading: its hidden checks (an autograded question's points are theirs), or
    the points of a written question."""

    name: str
    hidden: tuple[HiddenCheck, ...] = ()
    #: a written question's points (an autograded question states none: its checks do)
    points: int | float | None = None

    @property
    def total(self) -> int | float:
        return self.points if self.points is not None else sum(c.points for c in self.hidden)


@dataclass(frozen=True)
class AssignmentSpec:
    stem: str
    folder: Path
    #: the module name the hidden tests import the checks as (``labkit.checks.<name>``)
    checks_module: str
    demo_mistakes: tuple[DemoMistake, ...] = ()
    #: the demo's hanging notebook gets its endless loop before the first cell holding this text
    hanging_before: str | None = None
    #: graded function name -> a correct but slow (looping) definition, for ``make bench``
    slow_answers: dict[str, str] = field(default_factory=dict)
    #: question name -> its points and hidden checks, in the spec's order
    questions: dict[str, QuestionSpec] = field(default_factory=dict)
    #: the data files the notebook reads beside itself, as paths from ``folder``
    #: (``data = [...]``; shipped and protected as ``labkit.datafiles`` says)
    data: tuple[str, ...] = ()

    @property
    def spec_file(self) -> Path:
        return self.folder / paths.SPEC_FILE

    @property
    def checks_file(self) -> Path:
        return self.folder / "checks.py"

    @property
    def answers_file(self) -> Path:
        return self.folder / "answers.py"

    def answer_bank(self) -> dict:
        """The assignment's bank of answer variants (``WRONG``, ``CORRECT``, ...; see
        docs/instructors.md), empty where it has none."""
        return runpy.run_path(str(self.answers_file)) if self.answers_file.is_file() else {}


@dataclass(frozen=True)
class Lab:
    name: str
    folder: Path
    title: str
    #: modules the grader's processes import once, before any notebook of the lab starts
    preload: tuple[str, ...] = ()
    #: Python run once in the notebooks' fork server after the imports (see ``lab.toml``)
    warm_up: str = ""


def shown(path: Path) -> str:
    """A path as a message names it: relative to the repository where it lies inside it."""
    return str(path.relative_to(paths.ROOT) if path.is_relative_to(paths.ROOT) else path)


def _read_toml(path: Path) -> dict:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        return {}
    except tomllib.TOMLDecodeError as error:
        raise SpecError(f"{shown(path)} is not valid TOML: {error}") from None


def _points(value, where: str) -> int | float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or value < 0:
        raise SpecError(f"{where} must be a number of points, 0 or more (it is {value!r}).")
    return value


def _names(value, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not value or not all(
            isinstance(v, str) and _IDENTIFIER.match(v) for v in value):
        raise SpecError(f"{where} must be a list of the notebook's names, such as "
                        f'["my_function"] (it is {value!r}).')
    return tuple(value)


def _hidden_check(entry, question: str, uses: tuple[str, ...], where: str) -> HiddenCheck:
    if not isinstance(entry, dict):
        raise SpecError(f'{where} must be a table such as {{ test = "values", call = '
                        f'"check_values" }} (it is {entry!r}).')
    unknown = sorted(set(entry) - {"test", "call", "points", "uses", "namespace", "args"})
    if unknown:
        raise SpecError(f"{where} has keys the kit does not know: {', '.join(unknown)} (the keys "
                        "are test, call, points, uses, namespace, args).")
    test, call = entry.get("test"), entry.get("call")
    if not isinstance(test, str) or not _IDENTIFIER.match(f"_{test}"):
        raise SpecError(f"{where}.test must name the test in letters, digits and underscores "
                        f"(it is {test!r}).")
    if not isinstance(call, str) or not _CALL.match(call):
        raise SpecError(f"{where}.call must name a function of the checks module, such as "
                        f'"check_values" or "{question}.check_values" (it is {call!r}).')
    namespace = entry.get("namespace", False)
    if not isinstance(namespace, bool):
        raise SpecError(f"{where}.namespace must be true or false (it is {namespace!r}).")
    args = entry.get("args", [])
    if not isinstance(args, list) or not all(
            isinstance(a, (str, int, float, bool)) for a in args):
        raise SpecError(f"{where}.args must be a list of strings or numbers (it is {args!r}).")
    if namespace and "uses" in entry:
        raise SpecError(f"{where} sets both namespace and uses: a check is given either the "
                        "notebook's namespace or its names.")
    return HiddenCheck(
        test=test, call=call, points=_points(entry.get("points", 1), f"{where}.points"),
        uses=() if namespace else (_names(entry["uses"], f"{where}.uses") if "uses" in entry
                                   else uses),
        namespace=namespace, args=tuple(args))


def _question_spec(name: str, table, spec_path: Path) -> QuestionSpec:
    where = f"{shown(spec_path)}: [questions.{name}]"
    if not isinstance(table, dict):
        raise SpecError(f"{where} must be a table.")
    unknown = sorted(set(table) - {"uses", "hidden", "points"})
    if unknown:
        raise SpecError(f"{where} has keys the kit does not know: {', '.join(unknown)} (the keys "
                        "are uses, hidden and, for a written question, points).")
    uses = _names(table["uses"], f"{where} uses") if "uses" in table else (name,)
    hidden = table.get("hidden", [])
    if not isinstance(hidden, list):
        raise SpecError(f"{where} hidden must be a list of checks.")
    checks = tuple(_hidden_check(entry, name, uses, f"{where} hidden[{k}]")
                   for k, entry in enumerate(hidden))
    tests = [check.test for check in checks]
    if len(set(tests)) != len(tests):
        twice = sorted({t for t in tests if tests.count(t) > 1})
        raise SpecError(f"{where} names the test {twice[0]!r} twice: each hidden check needs "
                        "its own test name.")
    points = _points(table["points"], f"{where} points") if "points" in table else None
    if points is not None and checks:
        raise SpecError(f"{where} states points and hidden checks: an autograded question's "
                        "points are its checks' points, so remove its points.")
    return QuestionSpec(name=name, hidden=checks, points=points)


def checks_module_name(stem: str) -> str:
    """The module name of an assignment's checks: its stem without its number
    (``3_2_convolutions`` -> ``convolutions``); ``labkit.checks`` finds it by the same rule."""
    parts = stem.split("_", 2)
    return parts[2] if len(parts) == 3 else stem


def lab(name: str) -> Lab:
    folder = paths.ASSIGNMENTS / name
    data = _read_toml(folder / paths.LAB_FILE)
    return Lab(name=name, folder=folder, title=str(data.get("title", name)),
               preload=tuple(str(m) for m in data.get("preload", [])),
               warm_up=str(data.get("warm_up", "")))


def assignment(stem: str, folder: Path | None = None) -> AssignmentSpec:
    """The spec of an assignment of the course, or of the assignment folder given (a master
    read outside the course's tree, as a test's copy)."""
    folder = paths.assignment_folder(stem) if folder is None else folder
    spec_path = folder / paths.SPEC_FILE
    data = _read_toml(spec_path)
    demo = data.get("demo", {})
    try:
        mistakes = tuple(DemoMistake(str(m["solution"]), str(m["mistaken"]), str(m["what"]))
                         for m in demo.get("mistakes", []))
    except (KeyError, TypeError) as error:
        raise SpecError(f"{spec_path}: each [[demo.mistakes]] needs solution, mistaken and what "
                        f"({error})") from None
    questions = data.get("questions", {})
    if not isinstance(questions, dict):
        raise SpecError(f"{shown(spec_path)}: questions must be tables, [questions.<name>].")
    names = data.get("data", [])
    if not isinstance(names, list) or not all(isinstance(name, str) for name in names):
        raise SpecError(f"{spec_path}: `data` must be a list of file names, as in "
                        f'data = ["points.csv"]')
    return AssignmentSpec(
        stem=stem, folder=folder,
        checks_module=checks_module_name(stem),
        demo_mistakes=mistakes, hanging_before=demo.get("hanging_before"),
        slow_answers={str(k): str(v) for k, v in data.get("bench", {}).get("slow", {}).items()},
        questions={str(name): _question_spec(str(name), table, spec_path)
                   for name, table in questions.items()},
        data=tuple(names))


def stems(lab_name: str | None = None) -> list[str]:
    """The assignments whose masters are in the course (of one lab, or every lab), in order."""
    return [m.stem for m in paths.master_notebooks(lab_name)]


def preload(lab_name: str) -> tuple[str, ...]:
    """What the grader's processes import before grading this lab: the lab's preload and the
    checks module of each of its assignments."""
    return (*lab(lab_name).preload,
            *(f"labkit.checks.{assignment(stem).checks_module}" for stem in stems(lab_name)))
