"""The released autograders: which assignments exist, their questions and points."""

from __future__ import annotations

import ast
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

from .. import paths


@dataclass(frozen=True)
class Assignment:
    stem: str
    zip_path: Path
    #: (question, points) in the order of the notebook
    questions: tuple[tuple[str, float], ...]

    @property
    def max_points(self) -> float:
        return sum(points for _, points in self.questions)


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
    return Assignment(stem=stem, zip_path=zip_path, questions=tuple(tests))


def _question_order(stem: str) -> dict[str, int]:
    """Position of each ``grader.check`` in the released student notebook."""
    notebook = paths.student_notebook(stem)
    if not notebook.is_file():
        return {}
    found = re.findall(r'grader\.check\(\\"([A-Za-z0-9_]+)\\"\)', notebook.read_text("utf-8"))
    return {name: index for index, name in enumerate(dict.fromkeys(found))}


def load_all() -> list[Assignment]:
    return [load(stem) for stem in paths.assignment_stems()]
