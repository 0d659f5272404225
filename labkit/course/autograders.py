"""The released autograders: which assignments exist, their questions and points.

The autograder zip holds tests for the autograded questions only; the written (manual) questions,
graded by hand, and their points are read from the assignment's master notebook.
"""

from __future__ import annotations

import ast
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

from . import masters
from labkit import paths


@dataclass(frozen=True)
class Assignment:
    stem: str
    zip_path: Path
    #: (question, points) in the order of the notebook: the autograded questions
    questions: tuple[tuple[str, float], ...]
    #: (question, points) of the written questions, graded by hand, in the order of the notebook
    manual: tuple[tuple[str, float], ...] = ()

    @property
    def max_points(self) -> float:
        """Points of the autograded questions."""
        return sum(points for _, points in self.questions)

    @property
    def columns(self) -> list[tuple[str, float, bool]]:
        """(question, points, manual) for every question: the autograded ones, then the written."""
        return [(q, p, False) for q, p in self.questions] + [(q, p, True) for q, p in self.manual]


def _test_file_points(source: str) -> tuple[str, float]:
    """Read ``name`` and ``points`` from an otter test file without running it."""
    values = {}
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target = node.targets[0]
            if isinstance(target, ast.Name) and target.id in ("name", "points"):
                values[target.id] = ast.literal_eval(node.value)
    points = values.get("points", 1)
    total = float(sum(points)) if isinstance(points, list) else float(points)
    return str(values["name"]), total


def load(stem: str, zip_path: Path | None = None) -> Assignment:
    zip_path = zip_path or paths.autograder_zip(stem)
    with zipfile.ZipFile(zip_path) as archive:
        tests = [
            _test_file_points(archive.read(name).decode("utf-8"))
            for name in sorted(archive.namelist())
            if name.startswith("tests/") and name.endswith(".py")
        ]
    order = _question_order(stem)
    tests.sort(key=lambda item: order.get(item[0], len(order)))
    return Assignment(stem=stem, zip_path=zip_path, questions=tuple(tests),
                      manual=_manual_questions(stem))


def _manual_questions(stem: str) -> tuple[tuple[str, float], ...]:
    """The written questions of the master notebook, with their points (none without a master)."""
    master = paths.ASSIGNMENTS / f"{stem}.ipynb"
    if not master.is_file():
        return ()
    return tuple((q.name, q.points) for q in masters.parse(master).questions if q.manual)


def _question_order(stem: str) -> dict[str, int]:
    """Position of each ``grader.check`` in the released student notebook."""
    notebook = paths.student_notebook(stem)
    if not notebook.is_file():
        return {}
    found = re.findall(r'grader\.check\(\\"([A-Za-z0-9_]+)\\"\)', notebook.read_text("utf-8"))
    return {name: index for index, name in enumerate(dict.fromkeys(found))}


def load_all() -> list[Assignment]:
    return [load(stem) for stem in paths.assignment_stems()]
