"""The master as ``otter assign`` gets it: the instructor's notebook with what the assignment's
``grading.toml`` declares written into it.

An instructor states a question's points once, in the spec: a written question's ``points``, an
autograded question's hidden checks (each a call into the assignment's ``checks.py`` worth its
own points). Here, in a copy of the master that only the release sees, each hidden check becomes
the otter test cell it stands for (after the question's public tests, inside its BEGIN/END
TESTS), and each question's ``points:`` is written into its BEGIN QUESTION cell, public tests
counting 0; so the test files otter writes, the manifest and what students see all come from
that one statement and cannot drift apart. A master that still states points itself, a spec
naming a question the master lacks or a check its module lacks, is refused with a sentence
naming the file and the key.
"""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
import yaml

from labkit import notebooks

from . import labs
from .labs import AssignmentSpec, HiddenCheck, SpecError, shown

_BEGIN = re.compile(r"^\s*#\s*BEGIN\s+(QUESTION|TESTS)\b", re.IGNORECASE)
_END = re.compile(r"^\s*#\s*END\s+(QUESTION|TESTS)\b", re.IGNORECASE)
_HEADING = re.compile(r"^ {0,3}#{1,6}[ \t]+\S")
_FENCE = re.compile(r"^ {0,3}(```|~~~)")
#: A heading that already says what it is worth: the release writes that, so a master must not.
_STATED_POINTS = re.compile(r"\(\s*\d+(\.\d+)?\s+points?\s*\)", re.IGNORECASE)
_TEST_CONFIG = re.compile(r'^\s*"""\s*#\s*BEGIN TEST CONFIG\s*\n(.*?)\n\s*"""\s*#\s*END TEST CONFIG',
                          re.DOTALL)

#: One hidden check as otter's test cell: the same text for every check, so that the checks
#: stay declared (a call into the checks module) and the rules of a fair grade live there.
HIDDEN_CELL = '''""" # BEGIN TEST CONFIG
hidden: true
points: {points}
""" # END TEST CONFIG
def {function}({parameters}):
    from labkit.checks import {module} as checks
    checks.{call}({arguments})


{function}({values})'''


@dataclass
class _Question:
    """Where a question of the master lies: its BEGIN cell, its TESTS block, its END cell."""

    name: str
    begin: int
    config: dict
    end: int = -1
    tests_end: int | None = None
    public_tests: list[int] = field(default_factory=list)

    @property
    def written(self) -> bool:
        return bool(self.config.get("manual", False))


def _first_line(source: str) -> str:
    return source.strip().splitlines()[0] if source.strip() else ""


def _yaml(text: str, where: str) -> dict:
    try:
        config = yaml.safe_load(text)
    except yaml.YAMLError as error:
        problem = " ".join(str(error).split())
        raise SpecError(f"{where} is not valid YAML ({problem}); fix its text.") from None
    return config if isinstance(config, dict) else {}


def _test_config(source: str, where: str) -> dict:
    found = _TEST_CONFIG.match(source)
    return _yaml(found.group(1), where) if found else {}


def _questions(nb: nbformat.NotebookNode, where: str) -> list[_Question]:
    """The questions of a master, with the cells of their tests; refuses a hidden test written
    in the master (its points would be stated twice)."""
    found: list[_Question] = []
    open_blocks: list[str] = []
    for index, cell in enumerate(nb.cells):
        first = _first_line(cell.source)
        if cell.cell_type == "raw" and (begin := _BEGIN.match(first)):
            kind = begin.group(1).upper()
            open_blocks.append(kind)
            if kind == "QUESTION":
                config = _yaml("\n".join(cell.source.strip().splitlines()[1:]),
                               f"{where}: cell {index}, a BEGIN QUESTION cell,")
                if not config.get("name"):
                    raise SpecError(f"{where}: cell {index}, a BEGIN QUESTION cell, has no "
                                    "name: give the question one (name: ...).")
                found.append(_Question(str(config["name"]), index, config))
        elif cell.cell_type == "raw" and _END.match(first) and open_blocks:
            kind = open_blocks.pop()
            if found and kind == "QUESTION":
                found[-1].end = index
            elif found and kind == "TESTS" and "QUESTION" in open_blocks:
                found[-1].tests_end = index
        elif cell.cell_type == "code" and "TESTS" in open_blocks and found:
            config = _test_config(cell.source, f"{where}: cell {index}'s TEST CONFIG")
            if config.get("hidden"):
                raise SpecError(
                    f"{where}: cell {index} of question {found[-1].name!r} is a hidden test "
                    "written in the master; declare it in the grading.toml beside the master, "
                    f"under [questions.{found[-1].name}] hidden, instead.")
            if config.get("points", 0) not in (0, None):
                raise SpecError(
                    f"{where}: cell {index}, a public test of question {found[-1].name!r}, "
                    f"states points ({config['points']!r}); public tests are worth 0, the "
                    "question's points are its hidden checks' in grading.toml.")
            found[-1].public_tests.append(index)
    return found


def _literal(value: str | int | float | bool) -> str:
    if isinstance(value, bool):
        return repr(value)
    return json.dumps(value) if isinstance(value, str) else repr(value)


def hidden_cell(question: str, check: HiddenCheck, module: str) -> str:
    """The otter test cell of one hidden check."""
    parameters = "env" if check.namespace else ", ".join(check.uses)
    return HIDDEN_CELL.format(
        points=check.points, function=f"test_{question}_{check.test}", parameters=parameters,
        module=module, call=check.call,
        arguments=", ".join([*map(_literal, check.args), parameters]),
        values="globals()" if check.namespace else parameters)


def points_text(points: list[int | float] | int | float) -> str:
    """A question's ``points:`` as its BEGIN QUESTION cell states it (YAML)."""
    if isinstance(points, list):
        return "[" + ", ".join(map(str, points)) + "]"
    return str(points)


def _heading_lines(source: str) -> list[int]:
    """The lines of a markdown cell that are headings (``#`` to ``######``), outside code fences."""
    found, fenced = [], False
    for number, line in enumerate(source.split("\n")):
        if _FENCE.match(line):
            fenced = not fenced
        elif not fenced and _HEADING.match(line):
            found.append(number)
    return found


def _heading(nb: nbformat.NotebookNode, questions: list[_Question], k: int) -> tuple[int, int]:
    """(cell, line) of question ``k``'s heading: the first markdown heading inside the question
    (a written question's prompt starts with it), or else the last one between the previous
    question's end and this question's start (an autograded question is introduced above its
    BEGIN QUESTION cell). Two questions never share a heading, so each shows its own points."""
    question = questions[k]
    for index in range(question.begin + 1, question.end):
        cell = nb.cells[index]
        if cell.cell_type == "markdown" and (lines := _heading_lines(cell.source)):
            return index, lines[0]
    start = questions[k - 1].end + 1 if k else 0
    for index in range(question.begin - 1, start - 1, -1):
        cell = nb.cells[index]
        if cell.cell_type == "markdown" and (lines := _heading_lines(cell.source)):
            return index, lines[-1]
    raise SpecError(f"question {question.name!r} has no markdown heading to show its points: "
                    "put one (### ...) inside the question or between it and the question "
                    "before it.")


def points_label(points: int | float) -> str:
    """What a heading says a question is worth: "1 point", "5 points", "2.5 points"."""
    value = int(points) if float(points).is_integer() else points
    return f"{value} point" if value == 1 else f"{value} points"


def _show_points(nb: nbformat.NotebookNode, questions: list[_Question], k: int,
                 points: int | float, where: str) -> None:
    index, number = _heading(nb, questions, k)
    lines = nb.cells[index].source.split("\n")
    if _STATED_POINTS.search(lines[number]):
        raise SpecError(f"{where}: cell {index}, the heading of question {questions[k].name!r}, "
                        "states points itself; the release adds them from grading.toml, so "
                        "remove them from the heading.")
    lines[number] = f"{lines[number].rstrip()} ({points_label(points)})"
    nb.cells[index].source = "\n".join(lines)


def _check_against_master(questions: list[_Question], spec: AssignmentSpec, where: str) -> None:
    spec_file = shown(spec.spec_file)
    names = [q.name for q in questions]
    for question in questions:
        if "points" in question.config:
            raise SpecError(
                f"{where}: question {question.name!r} states its points in its BEGIN QUESTION "
                f"cell; points are stated once, in {spec_file} [questions.{question.name}], so "
                "remove its `points:` line.")
        declared = spec.questions.get(question.name)
        if declared is None:
            raise SpecError(f"{spec_file} has no [questions.{question.name}]: declare the "
                            f"points of question {question.name!r} of {where} there.")
        if question.written and declared.hidden:
            raise SpecError(f"{spec_file}: [questions.{question.name}] hidden: question "
                            f"{question.name!r} is written (manual: true), graded by hand, so it "
                            "takes points, not hidden checks.")
        if question.written and declared.points is None:
            raise SpecError(f"{spec_file}: [questions.{question.name}] needs points, the "
                            "points of this written question.")
        if not question.written and not declared.hidden:
            raise SpecError(f"{spec_file}: [questions.{question.name}] needs hidden checks, "
                            "hidden = [{ test = ..., call = ... }]: an autograded question's "
                            "points are its hidden checks'.")
    for name in spec.questions:
        if name not in names:
            raise SpecError(f"{spec_file}: [questions.{name}] names a question {where} does not "
                            f"have (its questions are {', '.join(names) or 'none'}).")


def assemble(master: Path, headings: bool = True) -> nbformat.NotebookNode:
    """The master with its spec's hidden tests and points written in (see the module's text),
    and each question's heading showing its points (unless ``headings`` is false)."""
    where = shown(master)
    nb = notebooks.read(master)
    spec = labs.assignment(master.stem, master.parent)
    questions = _questions(nb, where)
    _check_against_master(questions, spec, where)
    if headings:
        for k, question in enumerate(questions):
            try:
                _show_points(nb, questions, k, spec.questions[question.name].total, where)
            except SpecError as error:
                raise SpecError(str(error) if str(error).startswith(where)
                                else f"{where}: {error}") from None
    # Insert from the last question back, so the indices found above stay valid.
    for position, question in reversed(list(enumerate(questions))):
        declared = spec.questions[question.name]
        header = nb.cells[question.begin]
        if question.written:
            points: list[int | float] | int | float = declared.total
        else:
            points = [0] * len(question.public_tests) + [c.points for c in declared.hidden]
        header.source = header.source.rstrip("\n") + f"\npoints: {points_text(points)}"
        if question.written:
            continue
        cells = [nbformat.v4.new_code_cell(hidden_cell(question.name, check, spec.checks_module))
                 for check in declared.hidden]
        for k, cell in enumerate(cells):
            cell["id"] = f"hidden-{position}-{k}"
        if question.tests_end is None:  # no public tests: the hidden ones get a block of their own
            cells = [nbformat.v4.new_raw_cell("# BEGIN TESTS"), *cells,
                     nbformat.v4.new_raw_cell("# END TESTS")]
            for k, cell in enumerate((cells[0], cells[-1])):
                cell["id"] = f"tests-{position}-{k}"
            at = question.end
        else:
            at = question.tests_end
        nb.cells[at:at] = cells
    return nb


def verify_calls(master: Path) -> None:
    """Refuse a spec whose hidden check calls what the assignment's checks module lacks: run
    the module (it only defines checks) and look each call up in it."""
    spec = labs.assignment(master.stem, master.parent)
    checks = [(name, k, check) for name, declared in spec.questions.items()
              for k, check in enumerate(declared.hidden)]
    if not checks:
        return
    if not spec.checks_file.is_file():
        raise SpecError(f"{shown(spec.spec_file)} declares hidden checks but "
                        f"{shown(spec.checks_file)} does not exist: write the checks there.")
    module = _load_checks(spec)
    for name, k, check in checks:
        found = module
        for part in check.call.split("."):
            found = getattr(found, part, None)
        if not callable(found):
            raise SpecError(
                f"{shown(spec.spec_file)}: [questions.{name}] hidden[{k}].call names "
                f"{check.call!r}, which {shown(spec.checks_file)} does not define as a function.")


def _load_checks(spec: AssignmentSpec):
    """The assignment's checks module, run from its file under the name the hidden tests import
    it by (its relative imports of the shared checks need it), then unregistered again."""
    name = f"labkit.checks.{spec.checks_module}"
    loader = importlib.util.spec_from_file_location(name, spec.checks_file)
    module = importlib.util.module_from_spec(loader)
    before = sys.modules.get(name)
    sys.modules[name] = module
    try:
        loader.loader.exec_module(module)
    except Exception as error:  # noqa: BLE001 - course content; the message says where
        raise SpecError(f"{shown(spec.checks_file)} fails when imported "
                        f"({type(error).__name__}: {error}); fix it before releasing.") from None
    finally:
        if before is None:
            sys.modules.pop(name, None)
        else:
            sys.modules[name] = before
    return module
