"""Find each student's notebooks under SUBMISSIONS and match them to assignments.

Each entry directly under SUBMISSIONS is one student: a folder (of notebooks or otter export
zips), or a single notebook or zip. Nothing under SUBMISSIONS is ever written: notebooks are
copied (zips extracted) into a work folder first. Whatever an entry holds, it yields a
``Submission`` whose ``notes`` say, in words, what could not be used.
"""

from __future__ import annotations

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


def _assignment_of(notebook_text: str, filename: str, stems: list[str]) -> str | None:
    """otter's assignment metadata first, then the file name."""
    try:
        nb = json.loads(notebook_text)
        name = nb.get("metadata", {}).get("otter", {}).get("assignment_name")
    except (ValueError, AttributeError):
        name = None
    if name in stems:
        return name
    for stem in stems:
        if stem in filename:
            return stem
    return None


def _candidates(entry: Path) -> list[tuple[str, bytes | None, str | None]]:
    """(display name, notebook bytes or None, problem) for every notebook the entry offers."""
    found: list[tuple[str, bytes | None, str | None]] = []
    files = sorted(p for p in entry.rglob("*") if p.is_file()) if entry.is_dir() else [entry]
    for path in files:
        label = str(path.relative_to(entry.parent))
        suffix = path.suffix.lower()
        if suffix == ".ipynb":
            if path.stat().st_size > MAX_NOTEBOOK_BYTES:
                found.append((label, None, f"{label}: larger than {MAX_NOTEBOOK_BYTES >> 20} MB, not graded"))
            else:
                found.append((label, path.read_bytes(), None))
        elif suffix == ".zip":
            found.extend(_zip_candidates(path, label))
    return found


def _zip_candidates(path: Path, label: str) -> list[tuple[str, bytes | None, str | None]]:
    try:
        with zipfile.ZipFile(path) as archive:
            members = [
                info for info in archive.infolist()
                if info.filename.lower().endswith(".ipynb") and not info.is_dir()
                and "__MACOSX" not in info.filename and "/." not in f"/{info.filename}"
            ]
            if not members:
                return [(label, None, f"{label}: the zip holds no notebook")]
            out: list[tuple[str, bytes | None, str | None]] = []
            for info in members:
                inner = f"{label}:{info.filename}"
                if info.file_size > MAX_NOTEBOOK_BYTES:
                    out.append((inner, None, f"{inner}: larger than {MAX_NOTEBOOK_BYTES >> 20} MB, not graded"))
                else:
                    out.append((inner, archive.read(info), None))
            return out
    except (zipfile.BadZipFile, OSError, RuntimeError, ValueError) as error:
        return [(label, None, f"{label}: not a readable zip file ({error})")]


def discover(entry: Path, stems: list[str], workdir: Path) -> Submission:
    """Collect one student's notebooks into ``workdir``, one per assignment."""
    submission = Submission(student=student_id(entry), entry=entry)
    if entry.is_file() and entry.suffix.lower() not in (".ipynb", ".zip"):
        submission.notes.append(f"{entry.name}: not a notebook or zip file")
        return submission
    for label, data, problem in _candidates(entry):
        if problem:
            submission.notes.append(problem)
            continue
        text = data.decode("utf-8", errors="replace")
        stem = _assignment_of(text, Path(label.split(":")[-1]).name, stems)
        if stem is None:
            submission.notes.append(f"{label}: not a notebook of this lab's assignments")
            continue
        if stem in submission.notebooks:
            submission.notes.append(f"{label}: a second notebook for {stem}, ignored")
            continue
        target = workdir / submission.student / f"{stem}.ipynb"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        submission.notebooks[stem] = target
    if entry.is_dir() and not submission.notebooks and not submission.notes:
        submission.notes.append("no notebook found")
    return submission
