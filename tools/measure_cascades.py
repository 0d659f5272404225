"""How many points does one mistake cost outside its own question?

Every wrong answer variant of ``the answer banks/`` is put into the reference solution notebook of its
assignment (a code cell redefining the function, right after the cell that defines it), and the
whole class of such notebooks is graded through the real path (``labkit.grading.classrun``). For each
variant the points lost in its own question and in every other question are counted.

    .venv/bin/python tools/measure_cascades.py OUT_FOLDER

prints one line per variant that loses points elsewhere, then the totals, and writes
``OUT_FOLDER/cascades.csv``. Run with ``PYTHONPATH=<another checkout>`` to measure that
checkout's checks against the same variants.
"""

from __future__ import annotations

import csv
import importlib.util
import re
import sys
from pathlib import Path

import nbformat

from labkit import paths
from labkit.grading import classrun

ROOT = Path(__file__).resolve().parent.parent


def _answers(stem: str):
    """This checkout's answer variants, loaded by path: ``sys.path`` (which worker processes
    inherit) is left alone, so PYTHONPATH decides whose checks grade them."""
    path = ROOT / "tests" / "answers" / f"a{stem[:3]}.py"
    spec = importlib.util.spec_from_file_location(f"answers_{stem[:3]}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _variants() -> list[tuple[str, str, str, str]]:
    """(assignment stem, question, variant, source) for every wrong variant."""
    found = []
    for stem in paths.assignment_stems():
        module = _answers(stem)
        for question, variants in module.WRONG.items():
            for variant, source in variants.items():
                found.append((stem, question, variant, source))
    return found


def _notebook(stem: str, question: str, source: str) -> nbformat.NotebookNode:
    nb = nbformat.read(paths.solution_notebook(stem), 4)
    pattern = re.compile(rf"^def {re.escape(question)}\(", re.MULTILINE)
    index = next(i for i, c in enumerate(nb.cells) if c.cell_type == "code" and pattern.search(c.source))
    nb.cells.insert(index + 1, nbformat.v4.new_code_cell(source))
    return nb


def main(out: Path) -> None:
    submissions = out / "submissions"
    submissions.mkdir(parents=True, exist_ok=True)
    variants = _variants()
    for stem, question, variant, source in variants:
        folder = submissions / f"{stem[:3]}-{question}-{variant}"
        folder.mkdir(exist_ok=True)
        nbformat.write(_notebook(stem, question, source), folder / f"{stem}.ipynb")
    classrun.grade_class(submissions, out / "grades", workers=2)
    with open(out / "grades" / "questions.csv", newline="") as handle:
        possible = {f"{r['assignment']}/{r['question']}": float(r["points"]) for r in csv.DictReader(handle)}
    with open(out / "grades" / "grades.csv", newline="") as handle:
        rows = {r["student"]: r for r in csv.DictReader(handle)}
    table, own_total, other_total = [], 0.0, 0.0
    for stem, question, variant, _ in variants:
        row = rows[f"{stem[:3]}-{question}-{variant}"]
        own = possible[f"{stem}/{question}"] - float(row[f"{stem}/{question}"] or 0)
        elsewhere = {column.split("/", 1)[1]: possible[column] - float(row[column] or 0)
                     for column in possible if column.startswith(stem) and column != f"{stem}/{question}"
                     and row.get(column) not in ("", None)}
        lost = {q: v for q, v in elsewhere.items() if v > 1e-9}
        own_total += own
        other_total += sum(lost.values())
        table.append((stem, question, variant, own, sum(lost.values()),
                      " ".join(f"{q}:{v:g}" for q, v in lost.items())))
        if lost:
            print(f"{stem[:3]} {question}/{variant}: own {own:g}, elsewhere {sum(lost.values()):g} ({table[-1][-1]})")
    with open(out / "cascades.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["assignment", "question", "variant", "lost_own", "lost_elsewhere", "where"])
        writer.writerows(table)
    print(f"{len(variants)} wrong variants: {own_total:g} points lost in their own questions, "
          f"{other_total:g} outside them, in {sum(1 for t in table if t[4] > 1e-9)} variants")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
