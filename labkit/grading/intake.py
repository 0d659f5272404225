"""Find each student's notebooks under SUBMISSIONS and match them to assignments.

Each entry directly under SUBMISSIONS is one student: a folder (of notebooks or otter export
zips), or a single notebook or zip. A bulk download of Canvas or Moodle is read as it comes
(``lms_downloads``): a student is then the files or folder the LMS names by its own id. Nothing under SUBMISSIONS is ever written: notebooks are
copied (zips extracted) into a work folder first. Whatever an entry holds, it yields a
``Submission`` whose ``notes`` say, in words, what could not be used.

An entry is untrusted input, read within budgets fixed before anything is read: the size of
one notebook, of all the notebooks of one entry, of a zip's member list and of the number of
files looked at. Notebooks are streamed to the work folder one at a time (never held in memory
while copied, and only the one being matched is parsed). Symbolic links and special files
(fifos, sockets, devices) are never followed or opened, and two entries that would be graded
under one student id are both refused. Each refusal is a note on the student's row.
"""

from __future__ import annotations

import dataclasses
import datetime
import itertools
import json
import lzma
import os
import shutil
import stat
import tempfile
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from labkit import paths

from . import lms_downloads

#: Larger notebooks are refused unread: the lab's notebooks, with plots, are well under 5 MB.
MAX_NOTEBOOK_BYTES = 50 * 1024 * 1024
#: All the notebooks discovery copies out of one entry (its files and what its zips unpack to):
#: four notebooks at the cap, where a real submission holds one to three of a few MB. It bounds
#: the work folder's disk and what a zip bomb can make discovery write.
MAX_SUBMISSION_BYTES = 4 * MAX_NOTEBOOK_BYTES
#: Members of one zip (all of them, notebooks or not): otter's export zip holds the notebook and
#: a few small files; a student's own zip of a lab folder, a few dozen.
MAX_ZIP_MEMBERS = 1000
#: A zip's member list (its central directory), checked before it is parsed: parsing holds about
#: ten times its size in memory. A thousand members with names of 1 KB fit with room to spare.
MAX_ZIP_DIRECTORY_BYTES = 1 << 20
#: Files and folders looked at inside one entry folder (a lab folder with a data set of images
#: is the largest honest case, a few thousand).
MAX_ENTRY_FILES = 10_000
#: How many links or special files a note names (the rest are counted).
_NAMED = 5
_CHUNK = 1 << 20
#: What reading a damaged or hostile zip member can raise, besides the BadZipFile of its index.
_ZIP_ERRORS = (zipfile.BadZipFile, OSError, RuntimeError, ValueError, NotImplementedError,
               EOFError, zlib.error, lzma.LZMAError)


@dataclass
class Submission:
    student: str
    #: the entry's folder or file (of an LMS download grouping several files: its first file)
    entry: Path
    #: assignment stem -> the notebook to grade (a copy inside the work folder)
    notebooks: dict[str, Path] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    #: when the LMS download says the work was handed in (with its time zone: Moodle's grading
    #: worksheet), if it says; never a file's modification time, which the student controls
    handed_in: datetime.datetime | None = None
    #: the LMS download marks the work late (Canvas's ``LATE`` in a file name)
    marked_late: bool = False
    #: the student's name as the LMS download gives it ("" in the kit's own layout)
    display_name: str = ""


@dataclass(frozen=True)
class Entry:
    """One student's part of SUBMISSIONS: a folder, notebook or zip directly under it, or the
    files (Canvas) or folder (Moodle) an LMS download names by the student's LMS id."""

    #: what the entry is recorded under (records, shards, pages): the folder's or file's name, or
    #: for a Canvas download ``<name>_<user id>``
    name: str
    #: the id the entry is graded under
    student: str
    #: what discovery reads: one folder or file, or a Canvas student's files
    paths: tuple[Path, ...]
    #: the SUBMISSIONS folder
    parent: Path
    #: per path, the file name the student uploaded (Canvas); empty: the names as they are
    originals: tuple[str, ...] = ()
    display_name: str = ""
    marked_late: bool = False
    handed_in: datetime.datetime | None = None
    #: "canvas" or "moodle" for an entry of an LMS download, else ""
    layout: str = ""
    #: the names of the other entries graded under the same student id (``class_entries``)
    same_id: tuple[str, ...] = ()

    @classmethod
    def of_path(cls, path: Path) -> "Entry":
        """An entry of the kit's own layout (a folder's name or a file's stem is the id)."""
        return cls(path.name, student_id(path), (path,), path.parent)


@dataclass
class _Candidate:
    """A notebook an entry offers: its staged copy, or why there is none."""
    label: str
    copy: Path | None
    problem: str | None
    mtime: float
    #: the name the student gave the notebook, when its file is named otherwise (a Canvas
    #: download's prefix and resubmission count taken off); "": the label's last name
    filename: str = ""
    #: how many times Canvas says a file of this name was uploaded before this one
    again: int = 0

    def name(self) -> str:
        return self.filename or Path(self.label.split(":")[-1]).name


#: What operating systems and archivers leave in a folder, never a student's: skipped unlisted,
#: as hidden entries (``.DS_Store``, ``.ipynb_checkpoints``) are. A zip made on a Mac holds a
#: ``__MACOSX`` folder beside its files; Windows leaves ``Thumbs.db`` and ``desktop.ini``.
SYSTEM_ENTRIES = frozenset({"__MACOSX", "Thumbs.db", "desktop.ini"})
#: The files that are a student's submission on their own; a folder always is one.
SUBMISSION_SUFFIXES = (".ipynb", ".zip")


@dataclass
class ClassEntries:
    """What a SUBMISSIONS folder holds: one student per entry graded, and the other files."""

    #: folders, notebooks and zips (and links or special files, which get a row saying why
    #: they were not read), or the students of an LMS download, sorted by name
    students: list[Entry]
    #: the names of other files (a README, a spreadsheet, a name an LMS layout does not
    #: parse): not a submission, so no row; the summary lists them
    others: list[str]
    #: "canvas" or "moodle" when the folder is that LMS's download, else ""
    layout: str = ""
    #: summary lines of an LMS layout: how it was read, what it skipped
    notes: list[str] = field(default_factory=list)


def class_entries(submissions: Path, worksheet: Path | None = None) -> ClassEntries:
    """Sort a SUBMISSIONS folder's entries into students and other files, hidden and system
    entries aside; a Canvas or Moodle download is grouped by the LMS's ids (``worksheet``:
    Moodle's grading worksheet, for the submission times)."""
    files, folders, kept = [], [], []
    for path in sorted(submissions.iterdir()):
        if path.name.startswith(".") or path.name in SYSTEM_ENTRIES:
            continue
        kept.append(path)
        if path.is_dir() and not path.is_symlink():
            folders.append(path)
        else:
            files.append(path)
    system = lms_downloads.detect(files, folders)
    ignored = ([f"the worksheet {worksheet.name} was not read: {submissions.name} is not a "
                f"Moodle download (its folders are not named <Full Name>_<id>_assignsubmission_"
                f"file_)"] if worksheet is not None and system != lms_downloads.MOODLE else [])
    if system is None:
        students, others = [], []
        for path in kept:
            regular_file = path.is_file() and not path.is_symlink()
            if regular_file and path.suffix.lower() not in SUBMISSION_SUFFIXES:
                others.append(path.name)
            else:
                students.append(Entry.of_path(path))
        return ClassEntries(_with_same_ids(students), others, notes=ignored)
    layout = (lms_downloads.read_canvas(files) if system == lms_downloads.CANVAS
              else lms_downloads.read_moodle(folders, files, worksheet))
    students = [Entry(group.name, group.student, tuple(group.paths), submissions,
                      tuple(group.originals), group.display, group.marked_late, group.handed_in,
                      system) for group in layout.students]
    # A folder beside a Canvas download's files is a student of the kit's own layout.
    if system == lms_downloads.CANVAS:
        students.extend(Entry.of_path(folder) for folder in folders)
    others = list(layout.others)
    students.sort(key=lambda entry: entry.name)
    return ClassEntries(_with_same_ids(students), others, system, layout.notes + ignored)


def _with_same_ids(entries: list[Entry]) -> list[Entry]:
    """Each entry with the names of the others graded under its student id."""
    names: dict[str, list[str]] = {}
    for entry in entries:
        names.setdefault(entry.student, []).append(entry.name)
    return [dataclasses.replace(entry, same_id=tuple(sorted(
        name for name in names[entry.student] if name != entry.name))) for entry in entries]


def others_summary(others: list[str], layout: str = "") -> str:
    """The summary's line for the files that are not submissions ("" when there are none)."""
    if not others:
        return ""
    named = ", ".join(others[:_NAMED]) + (f" and {len(others) - _NAMED} more"
                                          if len(others) > _NAMED else "")
    if layout:
        return (f"; not graded, as not named as {lms_downloads.NAMING[layout]}: {named} (grade "
                f"such a file apart, in a folder of its own)")
    return (f"; not graded, as not a notebook, zip or folder: {named} (put a student's file in "
            f"a folder of their own to grade it)")


def student_id(entry: Path | Entry) -> str:
    """The id an entry of SUBMISSIONS is graded under: a folder's name, a file's stem (a link
    counts as a file: it is never followed), or the LMS's id of an LMS download's student."""
    if isinstance(entry, Entry):
        return entry.student
    return entry.name if entry.is_dir() and not entry.is_symlink() else entry.stem


def as_entry(entry: Path | Entry) -> Entry:
    """The entry a path directly under SUBMISSIONS is, as ``class_entries`` reads its folder;
    a path it does not list (hidden, or not a student) is an entry of its own."""
    if isinstance(entry, Entry):
        return entry
    try:
        for found in class_entries(entry.parent).students:
            if found.name == entry.name or entry in found.paths:
                return found
    except OSError:
        pass
    return Entry.of_path(entry)


def same_id(entry: Path | Entry) -> list[str]:
    """The names of the other students' entries beside ``entry`` (``class_entries``) that have
    its student id, sorted; empty when its id is its own."""
    return list(as_entry(entry).same_id)


def entry_files(entry: Entry) -> tuple[list[Path], list[str]]:
    """The regular files discovery reads of an entry, and notes on what it left out
    (``regular_files`` of each of its paths)."""
    files: list[Path] = []
    notes: list[str] = []
    for path in entry.paths:
        found, skipped = regular_files(path)
        files.extend(found)
        notes.extend(skipped)
    return files, notes


def _mb(size: int) -> str:
    return f"{size / (1 << 20):.0f} MB"


class _Budget:
    """The bytes of notebooks one entry may still have copied out of it."""

    def __init__(self) -> None:
        self.left = MAX_SUBMISSION_BYTES

    def over(self, size: int) -> bool:
        return size > self.left

    def spend(self, size: int) -> None:
        self.left -= size

    #: Said of a notebook or zip refused for this budget.
    OVER = f"over the budget of {_mb(MAX_SUBMISSION_BYTES)} of notebooks for one submission"


def _open_regular(path: Path) -> BinaryIO:
    """Open a regular file for reading without following a link at its name and without
    blocking on a fifo; OSError when it is anything else."""
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    descriptor = os.open(path, flags)
    try:
        if not stat.S_ISREG(os.fstat(descriptor).st_mode):
            raise OSError(f"{path.name} is not a regular file")
        os.set_blocking(descriptor, True)
        return os.fdopen(descriptor, "rb")
    except BaseException:
        os.close(descriptor)
        raise


def regular_files(entry: Path) -> tuple[list[Path], list[str]]:
    """The regular files of an entry (the entry itself when it is one), sorted, and a note for
    each kind of thing left out: links and special files (never followed or opened), folders
    that cannot be listed, files beyond ``MAX_ENTRY_FILES``."""
    def label(path: Path) -> str:
        return str(path.relative_to(entry.parent))

    try:
        mode = entry.lstat().st_mode
    except OSError as error:
        return [], [f"{entry.name}: cannot be read ({error.strerror or error})"]
    if stat.S_ISREG(mode):
        return [entry], []
    if not stat.S_ISDIR(mode):
        return [], [_skipped_note([entry.name])]
    files: list[Path] = []
    skipped: list[str] = []
    notes: list[str] = []
    folders, looked = [entry], 0
    while folders:
        folder = folders.pop()
        try:  # never more of a listing than the budget has left (a folder may hold millions)
            with os.scandir(folder) as listing:
                children = list(itertools.islice(listing, MAX_ENTRY_FILES - looked + 1))
            children.sort(key=lambda child: child.name)
        except OSError as error:
            notes.append(f"{label(folder)}: cannot be listed ({error.strerror or error})")
            continue
        for child in children:
            looked += 1
            if looked > MAX_ENTRY_FILES:
                notes.append(f"{entry.name}: more than {MAX_ENTRY_FILES} files and folders, "
                             f"over the budget for one submission; only {MAX_ENTRY_FILES} were "
                             f"looked at")
                folders = []
                break
            path = Path(child.path)
            if child.is_dir(follow_symlinks=False):
                folders.append(path)
            elif child.is_file(follow_symlinks=False):
                files.append(path)
            else:
                skipped.append(label(path))
    if skipped:
        notes.insert(0, _skipped_note(sorted(skipped)))
    return sorted(files), notes


def _skipped_note(labels: list[str]) -> str:
    named = ", ".join(labels[:_NAMED]) + (f" and {len(labels) - _NAMED} more"
                                          if len(labels) > _NAMED else "")
    return (f"{named}: a symbolic link or special file (fifo, socket, device); never followed "
            f"or opened, not graded")


def _stage(source: BinaryIO, staging: Path, limit: int) -> Path | None:
    """Stream ``source`` into a new file in ``staging``, a chunk at a time; None (and no file)
    when it holds more than ``limit`` bytes."""
    handle, name = tempfile.mkstemp(dir=staging, suffix=".ipynb")
    copied = 0
    with os.fdopen(handle, "wb") as target:
        while chunk := source.read(_CHUNK):
            copied += len(chunk)
            if copied > limit:
                break
            target.write(chunk)
    if copied > limit:
        os.unlink(name)
        return None
    return Path(name)


#: Why a notebook is not graded when it belongs to another lab of the course: a student's folder may
#: hold the whole course's work, and grading one lab says nothing about the others (no note).
ANOTHER_LAB = "another lab's notebook"


def _course_stems() -> set[str]:
    """Every assignment of the course, of every lab (masters, or releases where no master is)."""
    return {p.stem for p in paths.master_notebooks()} | set(paths.assignment_stems())


def _assignment_of(copy: Path, filename: str, stems: list[str]) -> tuple[str | None, str]:
    """The assignment a notebook belongs to (otter's metadata first, then the file name), or
    None and why. Read from its staged copy, its bytes dropped once decoded: at most two copies
    of one notebook in memory (its text and its parse)."""
    try:
        nb = json.loads(copy.read_bytes().decode("utf-8"))
        if not isinstance(nb, dict) or "cells" not in nb:
            raise ValueError("no cells")
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None, "not a readable notebook (not notebook JSON: empty, truncated or another format)"
    metadata = nb.get("metadata")
    otter = metadata.get("otter") if isinstance(metadata, dict) else None
    name = otter.get("assignment_name") if isinstance(otter, dict) else None
    if name in stems:
        return name, ""
    for stem in stems:
        if stem in filename:
            return stem, ""
    if name in _course_stems() or Path(filename).stem in _course_stems():
        return None, ANOTHER_LAB
    return None, "not a notebook of this lab's assignments" + (f" (it is for {name!r})" if name else "")


def _candidates(entry: Entry, staging: Path, notes: list[str]) -> Iterator[_Candidate]:
    """Every notebook the entry offers, copied into ``staging`` one at a time (within the
    entry's budget); what cannot be used is a candidate with a problem, or a note."""
    files, skipped = entry_files(entry)
    notes.extend(skipped)
    originals = dict(zip(entry.paths, entry.originals))
    budget = _Budget()
    for path in files:
        label = str(path.relative_to(entry.parent))
        suffix = path.suffix.lower()
        if suffix == ".ipynb":
            candidate = _file_candidate(path, label, staging, budget)
            if path in originals and entry.layout == lms_downloads.CANVAS:
                candidate.filename, candidate.again = lms_downloads.resubmission(originals[path])
            elif path in originals:
                candidate.filename = originals[path]
            yield candidate
        elif suffix == ".zip":
            yield from _zip_candidates(path, label, staging, budget)


def _file_candidate(path: Path, label: str, staging: Path, budget: _Budget) -> _Candidate:
    try:
        with _open_regular(path) as source:
            info = os.fstat(source.fileno())
            if info.st_size > MAX_NOTEBOOK_BYTES:
                return _Candidate(label, None, f"{label}: larger than "
                                  f"{MAX_NOTEBOOK_BYTES >> 20} MB, not graded", info.st_mtime)
            if budget.over(info.st_size):
                return _Candidate(label, None, f"{label}: {budget.OVER}; not read", info.st_mtime)
            copy = _stage(source, staging, min(MAX_NOTEBOOK_BYTES, budget.left))
    except OSError as error:
        return _Candidate(label, None, f"{label}: cannot be read ({error.strerror or error})", 0.0)
    if copy is None:  # it grew while being read
        return _Candidate(label, None, f"{label}: changed while being read, not graded", info.st_mtime)
    budget.spend(copy.stat().st_size)
    return _Candidate(label, copy, None, info.st_mtime)


def _directory_problem(source: BinaryIO) -> str | None:
    """Why a zip's member list is not to be parsed (too many members, or too large), read from
    its end record before ``zipfile`` parses it; None when it may be (or when there is no end
    record: ``zipfile`` then says it is not a zip).

    The end record is found as ``zipfile`` finds it (its ``_EndRecData``, ZIP64 included), so
    that the sizes checked are the ones it will use."""
    record = zipfile._EndRecData(source)  # noqa: SLF001 (the record zipfile itself goes by)
    if not record:
        return None
    members, size = record[zipfile._ECD_ENTRIES_TOTAL], record[zipfile._ECD_SIZE]  # noqa: SLF001
    if members > MAX_ZIP_MEMBERS:
        return f"holds {members} files, over the budget of {MAX_ZIP_MEMBERS} files in a zip"
    if size > MAX_ZIP_DIRECTORY_BYTES:
        return (f"its list of files takes {_mb(size)}, over the budget of "
                f"{MAX_ZIP_DIRECTORY_BYTES >> 10} KB")
    return None


def _zip_candidates(path: Path, label: str, staging: Path, budget: _Budget) -> list[_Candidate]:
    """The notebooks of a zip, each streamed out in turn, once the whole zip is known to fit
    the budgets (a zip over one is refused whole, with a note naming it)."""
    def refuse(why: str) -> list[_Candidate]:
        return [_Candidate(label, None, f"{label}: {why}", 0.0)]

    try:
        with _open_regular(path) as source, _OpenZip(source) as archive:
            if isinstance(archive, str):
                return refuse(f"{archive}; not read")
            infos = archive.infolist()
            if len(infos) > MAX_ZIP_MEMBERS:
                return refuse(f"holds {len(infos)} files, over the budget of {MAX_ZIP_MEMBERS} "
                              f"files in a zip; not read")
            members = [info for info in infos
                       if info.filename.lower().endswith(".ipynb") and not info.is_dir()
                       and "__MACOSX" not in info.filename and "/." not in f"/{info.filename}"]
            if not members:
                return refuse("the zip holds no notebook")
            out: list[_Candidate] = []
            readable = []
            for info in members:
                inner = f"{label}:{info.filename}"
                if info.file_size > MAX_NOTEBOOK_BYTES:
                    out.append(_Candidate(inner, None, f"{inner}: larger than "
                                          f"{MAX_NOTEBOOK_BYTES >> 20} MB, not graded", _zip_time(info)))
                else:
                    readable.append(info)
            unpacked = sum(info.file_size for info in readable)
            if budget.over(unpacked):
                return refuse(f"its notebooks would unpack to {_mb(unpacked)}, {budget.OVER}; "
                              f"not unpacked")
            for info in readable:
                out.append(_member_candidate(archive, info, f"{label}:{info.filename}", staging,
                                             budget))
            return out
    except _ZIP_ERRORS as error:
        return refuse(f"not a readable zip file ({error})")


class _OpenZip:
    """``zipfile.ZipFile`` over an open file once its member list passed the budgets; the reason
    (a string) when it did not."""

    def __init__(self, source: BinaryIO):
        self.source = source
        self.archive: zipfile.ZipFile | None = None

    def __enter__(self) -> zipfile.ZipFile | str:
        problem = _directory_problem(self.source)
        if problem is not None:
            return problem
        self.source.seek(0)
        self.archive = zipfile.ZipFile(self.source)
        return self.archive

    def __exit__(self, *exc: object) -> None:
        if self.archive is not None:
            self.archive.close()


def _member_candidate(archive: zipfile.ZipFile, info: zipfile.ZipInfo, inner: str,
                      staging: Path, budget: _Budget) -> _Candidate:
    """One member streamed out (never more than its declared size, which zipfile enforces and
    this checks again, so a member that lies about its size costs nothing beyond it)."""
    mtime = _zip_time(info)
    try:
        with archive.open(info) as source:
            copy = _stage(source, staging, min(info.file_size, MAX_NOTEBOOK_BYTES, budget.left))
    except _ZIP_ERRORS as error:
        return _Candidate(inner, None, f"{inner}: cannot be unpacked ({error})", mtime)
    if copy is None:
        return _Candidate(inner, None, f"{inner}: unpacks to more than it declares, not graded", mtime)
    budget.spend(copy.stat().st_size)
    return _Candidate(inner, copy, None, mtime)


def _zip_time(info: zipfile.ZipInfo) -> float:
    try:
        return datetime.datetime(*info.date_time).timestamp()
    except ValueError:
        return 0.0


def _preference(stem: str, candidate: _Candidate) -> tuple[float, int, int]:
    """Among several notebooks for one assignment: the later work (the newest file, or the
    newest member of an export zip, whose time is the export's), then the later upload of one
    name (Canvas's ``-1`` suffix; files unzipped from its download share one time), then the
    one named as released. A blank download beside a renamed copy that holds the work is older
    than it."""
    return (-candidate.mtime, -candidate.again,
            0 if candidate.name() == f"{stem}.ipynb" else 1)


def _saved(mtime: float) -> str:
    if mtime <= 0:
        return "time unknown"
    return "saved " + datetime.datetime.fromtimestamp(mtime).strftime("%Y-%m-%d %H:%M")


def discover(entry: Path | Entry, stems: list[str], workdir: Path) -> Submission:
    """Collect one student's notebooks into ``workdir``, one per assignment."""
    entry = as_entry(entry)
    first = entry.paths[0]
    submission = Submission(student=entry.student, entry=first, handed_in=entry.handed_in,
                            marked_late=entry.marked_late, display_name=entry.display_name)
    if entry.same_id:
        names = sorted([entry.name, *entry.same_id])
        listed = ", ".join(names[:-1]) + " and " + names[-1]
        submission.notes.append(
            f"{listed}: {len(names)} submissions for the one student id "
            f"{submission.student!r}; none of them was graded (rename all but one, so that each "
            f"student has one entry)")
        return submission
    if (not entry.layout and first.is_file() and not first.is_symlink()
            and first.suffix.lower() not in (".ipynb", ".zip")):
        submission.notes.append(f"{first.name}: not a notebook or zip file")
        return submission
    workdir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".discover-", dir=workdir))
    try:
        _choose(submission, entry, stems, staging, workdir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    if not submission.notebooks and not submission.notes and (
            entry.layout or first.is_dir()):
        submission.notes.append("no notebook found")
    return submission


def _choose(submission: Submission, entry: Entry, stems: list[str], staging: Path,
            workdir: Path) -> None:
    """Match each staged notebook to its assignment (one parsed at a time) and move the one
    preferred for each assignment into ``workdir``."""
    chosen: dict[str, list[_Candidate]] = {}
    for candidate in _candidates(entry, staging, submission.notes):
        if candidate.problem or candidate.copy is None:
            submission.notes.append(candidate.problem or f"{candidate.label}: not read")
            continue
        stem, why = _assignment_of(candidate.copy, candidate.name(), stems)
        if stem is None:
            if why != ANOTHER_LAB:
                submission.notes.append(f"{candidate.label}: {why}")
            candidate.copy.unlink()
            continue
        chosen.setdefault(stem, []).append(candidate)
    for stem, options in chosen.items():
        options.sort(key=lambda option: _preference(stem, option))
        best = options[0]
        for other in options[1:]:
            submission.notes.append(
                f"{other.label}: a second notebook for {stem}, ignored ({other.label}, "
                f"{_saved(other.mtime)}; {best.label} graded, the later work, "
                f"{_saved(best.mtime)})")
        target = workdir / submission.student / f"{stem}.ipynb"
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(best.copy, target)
        submission.notebooks[stem] = target
