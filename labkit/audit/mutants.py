"""The reference answers of an assignment and their mutants, as submissions to grade.

Everything comes from the released assignment, nothing is Lab 1's: the graded questions and their
points from the autograder (``grade.autograders``), each question's solution cell from the master
(``masters``, which knows which question each solution cell answers, and which of its lines are
the solution). The answer to mutate is the function named as the question when the cell defines
one, else the cell's own statements (``theta = ...``). A mutant is submitted as the released
solution notebook with that one answer replaced, so it is graded exactly as a student would be.
"""

from __future__ import annotations

import ast
import difflib
import json
import re
from dataclasses import dataclass
from pathlib import Path

from labkit.course import assemble, masters
from labkit import paths
from labkit.course import autograders
from . import operators

_BEGIN = re.compile(r"^\s*#\s*BEGIN SOLUTION", re.IGNORECASE)
_END = re.compile(r"^\s*#\s*END SOLUTION", re.IGNORECASE)
_LINE = re.compile(r"#\s*SOLUTION\s*$", re.IGNORECASE)
#: The name the statements of a cell answer are wrapped in, to be mutated like a function body.
_CELL = "__solution_cell__"


@dataclass(frozen=True)
class Answer:
    """One graded question's reference answer: a function, or the statements of a cell."""

    stem: str
    question: str
    points: float
    #: the master cell's source
    cell: str
    #: a top-level function named as the question, else None (the cell's statements are mutated)
    function: str | None
    #: line numbers of the cell (from 1) that are the solution
    lines: frozenset[int]

    def unit(self) -> ast.FunctionDef:
        """What is mutated: the function, or the cell's statements wrapped in one."""
        module = ast.parse(self.cell)
        if self.function is not None:
            return next(node for node in module.body
                        if isinstance(node, ast.FunctionDef) and node.name == self.function)
        wrapper = ast.FunctionDef(name=_CELL, args=ast.arguments(
            posonlyargs=[], args=[], kwonlyargs=[], kw_defaults=[], defaults=[]),
            body=module.body, decorator_list=[], returns=None, type_comment=None, lineno=0)
        return wrapper


@dataclass(frozen=True)
class Mutant:
    answer: Answer
    number: int
    operator: str
    #: the mutated unit (a function, or the wrapped statements), unparsed
    source: str

    @property
    def id(self) -> str:
        """The submission's name: assignment, question, number and operator."""
        return f"{self.answer.stem}--{self.answer.question}--{self.number:03d}-{self.operator}"

    @property
    def code(self) -> str:
        """The mutated answer as it stands in the notebook: the function, or the statements."""
        return _unwrap(self.source)

    def diff(self) -> str:
        """A unified diff from the reference answer (both unparsed, so layout does not show)."""
        original = _unwrap(ast.unparse(self.answer.unit())) + "\n"
        return "".join(difflib.unified_diff(
            original.splitlines(keepends=True), (self.code + "\n").splitlines(keepends=True),
            fromfile=f"{self.answer.question} (reference)",
            tofile=f"{self.answer.question} ({self.operator})"))


def _unwrap(source: str) -> str:
    """The statements of a wrapped cell, dedented; a function's source as it is."""
    tree = ast.parse(source)
    node = tree.body[0]
    if isinstance(node, ast.FunctionDef) and node.name == _CELL:
        return ast.unparse(ast.Module(body=node.body, type_ignores=[]))
    return source


def solution_lines(cell: str) -> frozenset[int]:
    """The lines of a code cell inside ``# BEGIN SOLUTION`` / ``# END SOLUTION`` or ending in
    ``# SOLUTION``; every line when the cell carries no marker (a cell in a solution block)."""
    found, within, marked = set(), False, False
    for number, line in enumerate(cell.splitlines(), start=1):
        if _BEGIN.match(line):
            within, marked = True, True
        elif _END.match(line):
            within = False
        elif within or _LINE.search(line):
            found.add(number)
            marked = True
    return frozenset(found if marked else range(1, len(cell.splitlines()) + 1))


def answers(stem: str) -> list[Answer]:
    """The reference answers of an assignment's autograded questions, in the notebook's order.
    A question whose solution cell does not parse as Python is left out."""
    master = masters.parse(paths.master_notebook(stem))
    # The cells as the release gives them to otter (hidden tests written in from the spec): the
    # indexes ``masters.parse`` found the solutions at.
    cells = assemble.assemble(master.path).cells
    graded = {q.name: q.points for q in autograders.load(stem).graded}
    found = []
    for index, question in master.solution_questions.items():
        cell = cells[index]
        if question not in graded or cell.cell_type != "code":
            continue
        try:
            module = ast.parse(cell.source)
        except SyntaxError:
            continue
        named = any(isinstance(node, ast.FunctionDef) and node.name == question
                    for node in module.body)
        found.append(Answer(stem, question, graded[question], cell.source,
                            question if named else None, solution_lines(cell.source)))
    return found


def mutants_of(answer: Answer, chosen: tuple[operators.Operator, ...] = operators.OPERATORS
               ) -> list[Mutant]:
    """Every mutant of one answer, numbered in a stable order (operators, then sites)."""
    return [Mutant(answer, number, name, source) for number, (name, source) in enumerate(
        operators.mutants(answer.unit(), answer.lines, chosen), start=1)]


def _replace_function(cell: str, name: str, source: str) -> str | None:
    """``cell`` with its top-level ``def name`` replaced by ``source``, or None."""
    try:
        module = ast.parse(cell)
    except SyntaxError:
        return None
    for node in module.body:
        if isinstance(node, ast.FunctionDef) and node.name == name:
            lines = cell.splitlines()
            start = node.lineno - 1 - len(node.decorator_list)
            return "\n".join(lines[:start] + source.splitlines() + lines[node.end_lineno:])
    return None


def _same_code(a: str, b: str) -> bool:
    try:
        return ast.dump(ast.parse(a)) == ast.dump(ast.parse(b))
    except SyntaxError:
        return False


def submission(mutant: Mutant | None, answer: Answer) -> dict:
    """The released solution notebook (as JSON) with ``mutant``'s answer in place of the
    reference (None: the solution as released, the audit's control)."""
    nb = json.loads(paths.solution_notebook(answer.stem).read_text("utf-8"))
    if mutant is None:
        return nb
    for cell in nb["cells"]:
        if cell.get("cell_type") != "code":
            continue
        source = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
        if answer.function is not None:
            replaced = _replace_function(source, answer.function, mutant.code)
        else:
            replaced = mutant.code if _same_code(source, answer.cell) else None
        if replaced is not None:
            cell["source"] = replaced
            cell["outputs"], cell["execution_count"] = [], None
            return nb
    raise LookupError(f"{answer.stem}: the solution notebook has no cell answering "
                      f"{answer.question}")


def write_submission(nb: dict, path: Path) -> None:
    """Write a submission notebook, leaving the file as it is when its bytes would not change
    (the grading secret keys hidden inputs to a notebook's bytes, and a rerun reuses records)."""
    text = json.dumps(nb, indent=1, sort_keys=True, ensure_ascii=False) + "\n"
    if path.is_file() and path.read_text("utf-8") == text:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
