"""Grade a whole class: every entry under SUBMISSIONS gets exactly one row, whatever it holds.

Grading is resumable: each student's row is recorded in OUT as soon as it is graded, keyed by a
fingerprint of the student's files, the released autograders and the limits; a later run on the
same OUT reuses every record whose fingerprint still matches, so an interrupted run loses nothing
already graded and a re-run grades only new or changed submissions. ``grades.csv`` is rewritten
(atomically) after every student.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

from tqdm import tqdm

from . import autograders, discover, gradebook, run
from .pages import write_pages
from .engine import ForkServer
from .sandbox import Limits

#: Bump when the meaning of a recorded row changes, so that old records are not reused.
RECORD_VERSION = 1


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
             "cases": [dataclasses.asdict(case) for case in result.cases]},
            indent=1, sort_keys=True))
    return row


def _grade_student_safely(entry: Path, *args) -> gradebook.StudentRow:
    """A failure of the kit on one submission becomes a note on that row, not a stopped batch."""
    try:
        return _grade_student(entry, *args)
    except Exception as error:
        return gradebook.StudentRow(
            student=discover.student_id(entry),
            notes=[f"the grader failed on this submission ({type(error).__name__}: {error}); "
                   "please report it"])


def _digest_file(digest: "hashlib._Hash", path: Path) -> None:
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)


def grading_fingerprint(assignments: list[autograders.Assignment], limits: Limits) -> str:
    """What every row depends on besides the student's own files."""
    digest = hashlib.sha256(f"v{RECORD_VERSION} {sorted(vars(limits).items())}".encode())
    for assignment in assignments:
        digest.update(assignment.stem.encode())
        _digest_file(digest, assignment.zip_path)
    return digest.hexdigest()


def entry_fingerprint(entry: Path, grading: str) -> str:
    digest = hashlib.sha256(grading.encode())
    files = sorted(p for p in entry.rglob("*") if p.is_file()) if entry.is_dir() else [entry]
    for path in files:
        digest.update(str(path.relative_to(entry.parent)).encode() + b"\0")
        try:
            _digest_file(digest, path)
        except OSError as error:
            digest.update(str(error).encode())
    return digest.hexdigest()


def _record_path(out: Path, entry: Path) -> Path:
    name = hashlib.sha256(entry.name.encode()).hexdigest()[:24]
    return out / "records" / f"{name}.json"


def _load_record(out: Path, entry: Path, fingerprint: str) -> gradebook.StudentRow | None:
    try:
        record = json.loads(_record_path(out, entry).read_text("utf-8"))
    except (OSError, ValueError):
        return None
    if record.get("fingerprint") != fingerprint or record.get("entry") != entry.name:
        return None
    row = record["row"]
    return gradebook.StudentRow(student=row["student"], points=dict(row["points"]),
                                notes=list(row["notes"]))


def _save_record(out: Path, entry: Path, fingerprint: str, row: gradebook.StudentRow) -> None:
    gradebook.write_atomically(_record_path(out, entry), json.dumps(
        {"entry": entry.name, "fingerprint": fingerprint, "row": dataclasses.asdict(row)}))


def grade_class(
    submissions: Path, out: Path, *, workers: int | None = None, limits: Limits | None = None,
    progress: bool = False,
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
    grading = grading_fingerprint(assignments, limits)
    fingerprints = {entry: entry_fingerprint(entry, grading) for entry in entries}
    rows: dict[Path, gradebook.StudentRow] = {}
    for entry in entries:
        if (row := _load_record(out, entry, fingerprints[entry])) is not None:
            rows[entry] = row
    reused = len(rows)
    todo = [entry for entry in entries if entry not in rows]
    lock = threading.Lock()
    # Student code must not see the class's submissions or results.
    hidden = [submissions.resolve(), out.resolve()]
    server = ForkServer()
    # On a terminal only (disable=None): a log file gets the summary line, not a bar.
    bar = tqdm(total=len(entries), initial=reused, unit="student", file=sys.stderr,
               disable=None if progress else True, dynamic_ncols=True)
    try:
        with tempfile.TemporaryDirectory(prefix="labkit-submissions-") as tmp, \
                ThreadPoolExecutor(max_workers=workers) as pool:
            # Each entry extracts into its own folder: two entries may share a student id.
            futures = {
                pool.submit(_grade_student_safely, entry, assignments, Path(tmp) / str(index), out,
                            server, limits, hidden): entry
                for index, entry in enumerate(todo)
            }
            for future in as_completed(futures):
                entry = futures[future]
                row = future.result()
                with lock:
                    rows[entry] = row
                    _save_record(out, entry, fingerprints[entry], row)
                    gradebook.write_grades(out / "grades.csv", assignments, list(rows.values()))
                bar.update(1)
    finally:
        bar.close()
        server.close()
    gradebook.write_grades(out / "grades.csv", assignments, list(rows.values()))
    gradebook.write_questions(out / "questions.csv", assignments)
    # Pages are remade whole, so a student no longer in SUBMISSIONS keeps no page.
    shutil.rmtree(out / "feedback", ignore_errors=True)
    write_pages(out)
    with_problems = sum(1 for row in rows.values() if any(
        not note.endswith(": no notebook submitted") for note in row.notes))
    elapsed = time.monotonic() - started
    return (
        f"graded {len(rows)} submissions ({len(todo)} new or changed, {reused} unchanged; "
        f"{with_problems} with problems) in {elapsed:.0f} s; results in {out}/grades.csv, "
        f"report in {out}/report.html, feedback in {out}/feedback/"
    )
