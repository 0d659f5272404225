"""Grade a whole class: every entry under SUBMISSIONS gets exactly one row, whatever it holds."""

from __future__ import annotations

import json
import os
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from . import autograders, discover, gradebook, run
from .engine import ForkServer
from .sandbox import Limits


def _grade_student(
    entry: Path, assignments: list[autograders.Assignment], workdir: Path, out: Path,
    server: ForkServer, limits: Limits, hidden: list[Path],
) -> gradebook.StudentRow:
    by_stem = {a.stem: a for a in assignments}
    submission = discover.discover(entry, list(by_stem), workdir)
    row = gradebook.StudentRow(student=submission.student, notes=list(submission.notes))
    for stem in by_stem:
        notebook = submission.notebooks.get(stem)
        if notebook is None:
            row.notes.append(f"{stem}: no notebook submitted")
            continue
        result = run.grade_notebook(notebook, by_stem[stem], server=server, limits=limits,
                                    hidden=hidden)
        if result.problem:
            row.notes.append(f"{stem}: {result.problem}")
        row.notes.extend(f"{stem}: {note}" for note in result.notes)
        for question, points in result.scores.items():
            row.points[f"{stem}/{question}"] = points
        record = out / "results" / submission.student / f"{stem}.json"
        gradebook.write_atomically(record, json.dumps(
            {"scores": result.scores, "problem": result.problem, "notes": result.notes,
             "cases": [case.__dict__ for case in result.cases]},
            indent=1, sort_keys=True))
    return row


def grade_class(
    submissions: Path, out: Path, *, workers: int | None = None, limits: Limits | None = None
) -> str:
    """Grade every entry of ``submissions`` into ``out``; returns a one-line summary."""
    started = time.monotonic()
    if not submissions.is_dir():
        raise SystemExit(f"SUBMISSIONS is not a folder: {submissions}")
    assignments = autograders.load_all()
    if not assignments:
        raise SystemExit("no released autograders found: run `make release` first")
    entries = sorted(p for p in submissions.iterdir() if not p.name.startswith("."))
    workers = workers or os.cpu_count() or 1
    limits = limits or Limits()
    out.mkdir(parents=True, exist_ok=True)
    # Student code must not see the class's submissions or results.
    hidden = [submissions.resolve(), out.resolve()]
    server = ForkServer()
    try:
        with tempfile.TemporaryDirectory(prefix="labkit-submissions-") as tmp, \
                ThreadPoolExecutor(max_workers=workers) as pool:
            # Each entry extracts into its own folder: two entries may share a student id.
            rows = list(pool.map(
                lambda item: _grade_student(item[1], assignments, Path(tmp) / str(item[0]), out,
                                            server, limits, hidden),
                enumerate(entries)))
    finally:
        server.close()
    gradebook.write_grades(out / "grades.csv", assignments, rows)
    gradebook.write_questions(out / "questions.csv", assignments)
    with_problems = sum(1 for row in rows if row.notes)
    elapsed = time.monotonic() - started
    return (
        f"graded {len(rows)} submissions ({with_problems} with problems) in {elapsed:.0f} s; "
        f"results in {out}/grades.csv"
    )
