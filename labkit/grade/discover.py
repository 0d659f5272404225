"""Find each student's notebooks under SUBMISSIONS and match them to assignments.

Each entry directly under SUBMISSIONS is one student: a folder (of notebooks or otter export
zips), or a single notebook or zip. Nothing under SUBMISSIONS is ever written: notebooks are
copied (zips extracted) into a work folder first. Whatever an entry holds, it yields a
``Submission`` whose ``notes`` say, in words, what could not be used.
"""

from __future__ import annotations

import datetime
import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

#: Larger notebooks are refused unread: the lab's notebooks, with plots, are well under 5 MB.
MAX_NOTEBOOK_BYTES = 50 * 1024 * 1024


@dataclass
class Submission:
    student: str
    entry: Path
    #: assignment stem -> the notebook to grade (a copy inside the work folder)
    notebooks: dict[str, Path] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def student_id(entry: Path) -> str:
    return entry.name if entry.is_dir() else entry.stem


def _assignment_of(data: bytes, filename: str, stems: list[str]) -> tuple[str | None, str]:
    """The assignment a notebook belongs to (otter's metadata first, then the file name), or
    None and why."""
    try:
        nb = json.loads(data.decode("utf-8"))
        if not isinstance(nb, dict) or "cells" not in nb:
            raise ValueError("no cells")
    except (ValueError, UnicodeDecodeError):
        return None, "not a readable notebook (not notebook JSON: empty, truncated or another format)"
    metadata = nb.get("metadata")
    otter = metadata.get("otter") if isinstance(metadata, dict) else None
    name = otter.get("assignment_name") if isinstance(otter, dict) else None
    if name in stems:
        return name, ""
    for stem in stems:
        if stem in filename:
            return stem, ""
    return None, "not a notebook of this lab's assignments" + (f" (it is for {name!r})" if name else "")


def _candidates(entry: Path) -> list[tuple[str, bytes | None, str | None, float]]:
    """(display name, notebook bytes or None, problem, modification time) for every notebook
    the entry offers."""
    found: list[tuple[str, bytes | None, str | None, float]] = []
    files = sorted(p for p in entry.rglob("*") if p.is_file()) if entry.is_dir() else [entry]
    for path in files:
        label = str(path.relative_to(entry.parent))
        suffix = path.suffix.lower()
        mtime = path.stat().st_mtime
        if suffix == ".ipynb":
            if path.stat().st_size > MAX_NOTEBOOK_BYTES:
                found.append((label, None, f"{label}: larger than {MAX_NOTEBOOK_BYTES >> 20} MB, not graded", mtime))
            else:
                found.append((label, path.read_bytes(), None, mtime))
        elif suffix == ".zip":
            found.extend(_zip_candidates(path, label))
    return found


def _zip_candidates(path: Path, label: str) -> list[tuple[str, bytes | None, str | None, float]]:
    try:
        with zipfile.ZipFile(path) as archive:
            members = [
                info for info in archive.infolist()
                if info.filename.lower().endswith(".ipynb") and not info.is_dir()
                and "__MACOSX" not in info.filename and "/." not in f"/{info.filename}"
            ]
            if not members:
                return [(label, None, f"{label}: the zip holds no notebook", 0.0)]
            out: list[tuple[str, bytes | None, str | None, float]] = []
            for info in members:
                inner = f"{label}:{info.filename}"
                mtime = _zip_time(info)
                if info.file_size > MAX_NOTEBOOK_BYTES:
                    out.append((inner, None, f"{inner}: larger than {MAX_NOTEBOOK_BYTES >> 20} MB, not graded", mtime))
                else:
                    out.append((inner, archive.read(info), None, mtime))
            return out
    except (zipfile.BadZipFile, OSError, RuntimeError, ValueError) as error:
        return [(label, None, f"{label}: not a readable zip file ({error})", 0.0)]


def _zip_time(info: zipfile.ZipInfo) -> float:
    try:
        return datetime.datetime(*info.date_time).timestamp()
    except ValueError:
        return 0.0


def _preference(stem: str, label: str, mtime: float) -> tuple[int, float]:
    """Among several notebooks for one assignment: the one named as released, then the newest."""
    return (0 if Path(label.split(":")[-1]).name == f"{stem}.ipynb" else 1, -mtime)


def discover(entry: Path, stems: list[str], workdir: Path) -> Submission:
    """Collect one student's notebooks into ``workdir``, one per assignment."""
    submission = Submission(student=student_id(entry), entry=entry)
    if entry.is_file() and entry.suffix.lower() not in (".ipynb", ".zip"):
        submission.notes.append(f"{entry.name}: not a notebook or zip file")
        return submission
    chosen: dict[str, list[tuple[str, bytes, float]]] = {}
    for label, data, problem, mtime in _candidates(entry):
        if problem:
            submission.notes.append(problem)
            continue
        stem, why = _assignment_of(data, Path(label.split(":")[-1]).name, stems)
        if stem is None:
            submission.notes.append(f"{label}: {why}")
            continue
        chosen.setdefault(stem, []).append((label, data, mtime))
    for stem, options in chosen.items():
        options.sort(key=lambda option: _preference(stem, option[0], option[2]))
        label, data, _ = options[0]
        for other, _, _ in options[1:]:
            submission.notes.append(f"{other}: a second notebook for {stem}, ignored ({label} graded)")
        target = workdir / submission.student / f"{stem}.ipynb"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        submission.notebooks[stem] = target
    if entry.is_dir() and not submission.notebooks and not submission.notes:
        submission.notes.append("no notebook found")
    return submission
