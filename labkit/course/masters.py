"""What a master notebook holds, read from otter's markers: questions, solutions, hidden tests
(the master as released: with what its ``grading.toml`` declares, ``course.assemble``).

otter strips solutions only inside its markers, and silently keeps anything it does not recognise;
the release therefore compares the text of the student notebook against what this module finds
in the master, rather than trusting the markers alone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from labkit import notebooks

from . import assemble
from .questions import Question

_BEGIN = re.compile(r"^\s*#\s*BEGIN\s+(QUESTION|SOLUTION|TESTS)\b", re.IGNORECASE)
_END = re.compile(r"^\s*#\s*END\s+(QUESTION|SOLUTION|TESTS)\b", re.IGNORECASE)
_INLINE_BEGIN = re.compile(r"^\s*#\s*BEGIN SOLUTION", re.IGNORECASE)
_INLINE_END = re.compile(r"^\s*#\s*END SOLUTION", re.IGNORECASE)
_LINE_MARKER = re.compile(r"#\s*SOLUTION\s*$", re.IGNORECASE)
_HIDDEN = re.compile(r"^\s*hidden:\s*true\s*$", re.IGNORECASE | re.MULTILINE)
#: Lines this short ("return x", "else:") say nothing about a solution on their own.
_MIN_DISTINCTIVE = 14


@dataclass
class Master:
    """The parts of a master notebook the kit needs, each with the index of its cell."""

    path: Path
    questions: list[Question] = field(default_factory=list)
    solution_lines: dict[int, list[str]] = field(default_factory=dict)
    hidden_tests: dict[int, str] = field(default_factory=dict)
    other_lines: set[str] = field(default_factory=set)
    #: the question each solution cell answers (cells of ``solution_lines`` inside a question)
    solution_questions: dict[int, str] = field(default_factory=dict)

    @property
    def stem(self) -> str:
        return self.path.stem

    def distinctive_solution_lines(self) -> dict[int, list[str]]:
        """Solution lines long enough to identify, that appear nowhere outside the solutions."""
        found = {}
        for index, lines in self.solution_lines.items():
            keep = [
                line for line in lines
                if len(line) >= _MIN_DISTINCTIVE and line not in self.other_lines
            ]
            if keep:
                found[index] = keep
        return found


def _question_points(config: dict) -> float:
    points = config.get("points", 1)
    if isinstance(points, list):
        return float(sum(points))
    if isinstance(points, dict):
        return float(points.get("each", 1))
    return float(points)


def _inline_solution_lines(source: str) -> tuple[list[str], list[str]]:
    """Split a code cell into lines inside solution markers and lines outside them."""
    inside, outside, within = [], [], False
    for line in source.splitlines():
        if _INLINE_BEGIN.match(line):
            within = True
        elif _INLINE_END.match(line):
            within = False
        elif within or _LINE_MARKER.search(line):
            inside.append(_LINE_MARKER.sub("", line).strip())
        else:
            outside.append(line.strip())
    return inside, outside


def _note_question(master: Master, block: list[str], index: int) -> None:
    """Record which question the solution cell ``index`` answers (the open question's)."""
    if "QUESTION" in block and master.questions:
        master.solution_questions[index] = master.questions[-1].name


def parse(path: Path) -> Master:
    """The master as it is released: with the hidden tests and points its ``grading.toml``
    declares (``assemble``)."""
    return parse_notebook(assemble.assemble(path), path)


def parse_notebook(nb, path: Path) -> Master:
    """A notebook in otter's master format, read as it is."""
    master = Master(path=path)
    block: list[str] = []  # the stack of open raw-cell blocks
    for index, cell in enumerate(nb.cells):
        source = cell.source
        if cell.cell_type == "raw":
            first = source.strip().splitlines()[0] if source.strip() else ""
            if begin := _BEGIN.match(first):
                kind = begin.group(1).upper()
                block.append(kind)
                if kind == "QUESTION":
                    config = yaml.safe_load("\n".join(source.strip().splitlines()[1:])) or {}
                    master.questions.append(
                        Question(
                            assignment=path.stem,
                            name=str(config["name"]),
                            points=_question_points(config),
                            written=bool(config.get("manual", False)),
                        )
                    )
            elif _END.match(first) and block:
                block.pop()
            continue
        if "TESTS" in block:
            if _HIDDEN.search(source):
                master.hidden_tests[index] = source
            continue
        if "SOLUTION" in block:
            lines = [line.strip() for line in source.splitlines()]
            if cell.cell_type == "code":
                lines, outside = _inline_solution_lines(source)
                master.other_lines.update(outside)
            master.solution_lines[index] = [line for line in lines if line]
            _note_question(master, block, index)
            continue
        if cell.cell_type == "code":
            inside, outside = _inline_solution_lines(source)
            if inside:
                master.solution_lines[index] = inside
                _note_question(master, block, index)
            master.other_lines.update(outside)
        else:
            master.other_lines.update(line.strip() for line in source.splitlines())
    return master


def find_leaks(master: Master, student_nb_path: Path) -> list[str]:
    """Solution lines or hidden tests of ``master`` that appear in a student notebook's text.

    The whole file is searched (cells, outputs and metadata, where otter keeps public tests), so
    that a leak is found wherever otter put it. Each finding names the master cell it came from.
    """
    text = student_nb_path.read_text(encoding="utf-8")
    student = notebooks.read(student_nb_path)
    student_text = "\n".join(
        [cell.source for cell in student.cells] + [str(student.metadata.get("otter", ""))]
    )
    leaks = []
    for index, lines in master.distinctive_solution_lines().items():
        for line in lines:
            if line in student_text:
                leaks.append(f"cell {index}: solution line {line!r}")
    for index, source in master.hidden_tests.items():
        body = [
            line.strip() for line in source.splitlines()
            if len(line.strip()) >= _MIN_DISTINCTIVE and "TEST CONFIG" not in line
            and not _HIDDEN.match(line) and not line.strip().startswith("points:")
        ]
        for line in body:
            if line in student_text:
                leaks.append(f"cell {index}: hidden-test line {line!r}")
    if "labkit.checks" in text:
        leaks.append("the student notebook imports the hidden-test helpers (labkit.checks)")
    return leaks
