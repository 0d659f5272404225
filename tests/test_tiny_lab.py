"""A lab is content: a tiny new lab, added as a folder to a copy of the repository, is released
and graded by the kit's commands with no file of ``labkit/`` changed (docs/instructors.md,
"Adding a lab")."""

from __future__ import annotations

import csv
import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from labkit import paths
from labkit.course import student_readme

from .tiny_masters import assignment_config

pytestmark = pytest.mark.slow

LAB = "lab9"
STEM = "9_1_doubling"

ASSIGNMENT_CONFIG = assignment_config(STEM)

PUBLIC_TEST = '''""" # BEGIN TEST CONFIG
points: 0
success_message: "Public check passed."
""" # END TEST CONFIG
def test_double_example(double):
    import torch

    assert torch.equal(double(torch.tensor([1.0, 2.0])), torch.tensor([2.0, 4.0])), "Twice x"


test_double_example(double)'''

CHECKS = '''"""Hidden checks of 9.1: a tensor doubled."""

from __future__ import annotations

from . import core
from .graded import GradedFunction, random_matrix


def _cases():
    gen = core.generator(9)
    return [(random_matrix(gen, 3, 2),), (random_matrix(gen, 1, 5),)]


double = GradedFunction("double", ("x",), _cases, lambda x: 2 * x)
'''

SPEC = """# 9_1_doubling: the question's points, as one hidden check.
[questions.double]
hidden = [
    { test = "values", call = "double.check_values", points = 3 },
]
"""


def _master() -> nbformat.NotebookNode:
    cells = [
        nbformat.v4.new_raw_cell(ASSIGNMENT_CONFIG),
        nbformat.v4.new_markdown_cell("# Lab 9.1 — Doubling"),
        nbformat.v4.new_code_cell("import torch"),
        nbformat.v4.new_markdown_cell("### Exercise 1 — double a tensor\n\nReturn `2 * x`."),
        nbformat.v4.new_raw_cell("# BEGIN QUESTION\nname: double"),
        nbformat.v4.new_raw_cell("# BEGIN SOLUTION"),
        nbformat.v4.new_code_cell("def double(x):\n    # BEGIN SOLUTION\n    return 2 * x\n"
                                  "    # END SOLUTION"),
        nbformat.v4.new_raw_cell("# END SOLUTION"),
        nbformat.v4.new_raw_cell("# BEGIN TESTS"),
        nbformat.v4.new_code_cell(PUBLIC_TEST),
        nbformat.v4.new_raw_cell("# END TESTS"),
        nbformat.v4.new_raw_cell("# END QUESTION"),
    ]
    return nbformat.v4.new_notebook(cells=cells, metadata={
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}})


def _kit_hashes(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted((root / "labkit").rglob("*"))
            if p.is_file() and "__pycache__" not in p.parts}


def _run(root: Path, *args: str) -> subprocess.CompletedProcess:
    environment = {**os.environ, "LABKIT_GRADING_SECRET": "tiny-lab"}
    done = subprocess.run([sys.executable, "-m", "labkit", *args], cwd=root, env=environment,
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, f"labkit {args[0]} failed:\n{done.stdout[-3000:]}{done.stderr[-3000:]}"
    return done


def test_a_new_lab_is_released_and_graded_without_changing_the_kit(tmp_path):
    root = tmp_path / "repo"
    shutil.copytree(paths.ASSIGNMENTS, root / "assignments")
    shutil.copytree(paths.ROOT / "labkit", root / "labkit",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(paths.ROOT / "requirements.txt", root / "requirements.txt")
    (root / "docs").mkdir()
    shutil.copy(student_readme.SOURCE, root / "docs" / student_readme.SOURCE.name)
    before = _kit_hashes(root)

    lab = root / "assignments" / LAB
    (lab / STEM).mkdir(parents=True)
    (lab / "lab.toml").write_text('title = "Lab 9: Doubling"\npreload = []\n', "utf-8")
    nbformat.write(_master(), lab / STEM / f"{STEM}.ipynb")
    (lab / STEM / "checks.py").write_text(CHECKS, "utf-8")
    (lab / STEM / "grading.toml").write_text(SPEC, "utf-8")

    _run(root, "release", "--lab", LAB)
    released = root / "autograder" / LAB / STEM
    assert (released / f"{STEM}-autograder.zip").is_file()
    assert not (root / "autograder" / "lab1").exists(), "only the lab named is released"
    student = nbformat.read(root / "student" / LAB / STEM / f"{STEM}.ipynb", 4)
    assert any(c.source.startswith("### Exercise 1 — double a tensor (3 points)")
               for c in student.cells)

    solution = root / "solutions" / LAB / STEM / f"{STEM}.ipynb"
    submissions = tmp_path / "submissions"
    for student_id, edit in (("right", None), ("wrong", ("return 2 * x", "return 3 * x"))):
        (submissions / student_id).mkdir(parents=True)
        text = solution.read_text("utf-8")
        if edit:
            assert edit[0] in text
            text = text.replace(*edit)
        (submissions / student_id / f"{STEM}.ipynb").write_text(text, "utf-8")
    out = tmp_path / "out"
    _run(root, "grade", "--lab", LAB, "--submissions", str(submissions), "--out", str(out),
         "--workers", "1")

    with open(out / "grades.csv", newline="", encoding="utf-8") as handle:
        rows = {row["student"]: row for row in csv.DictReader(handle)}
    column = f"{STEM}/double"
    assert float(rows["right"][column]) == 3.0
    assert float(rows["wrong"][column]) < 3.0
    assert _kit_hashes(root) == before, "adding a lab changed a file of the kit"
