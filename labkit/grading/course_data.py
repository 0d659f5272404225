"""The course's data files of a released assignment, on the grader's side, for its sandboxes.

The autograder zip is what grading reads (``course.autograders``), and it holds each data file
its manifest names as ``files/<name>``, as otter ships it to Gradescope. Each grading process
takes them out once per zip (keyed by its size and time, so that a zip released again is read
again) into a folder of its own under the system's temporary folder, which no sandbox sees, and
removes that folder when it ends. Every notebook's sandbox then gets a read-only copy of them
(``labkit.sandbox.confine``); nothing a submission brings besides its notebook reaches it.
"""

from __future__ import annotations

import atexit
import multiprocessing.util
import shutil
import tempfile
import threading
import zipfile
from pathlib import Path

from labkit import datafiles
from labkit.course.autograders import Assignment

#: The members of an autograder zip that hold its data files (otter's ``files:``).
ZIP_FOLDER = "files"

_LOCK = threading.Lock()
_FOLDERS: dict[tuple[str, int, int], Path] = {}


class MissingData(RuntimeError):
    """A released autograder whose zip lacks a data file its manifest names."""


def _remove_later(folder: Path) -> None:
    atexit.register(shutil.rmtree, folder, True)
    # A pool's worker ends through multiprocessing, which runs these rather than atexit's.
    multiprocessing.util.Finalize(None, shutil.rmtree, args=(folder, True), exitpriority=1)


def _extract(zip_path: Path, names: tuple[str, ...]) -> Path:
    folder = Path(tempfile.mkdtemp(prefix="labkit-data-"))
    _remove_later(folder)
    with zipfile.ZipFile(zip_path) as archive:
        for name in names:
            try:
                info = archive.getinfo(ZIP_FOLDER + "/" + name)
            except KeyError:
                raise MissingData(f"{zip_path.name} lacks the data file {name} its manifest "
                                  f"names: run `make release`") from None
            target = folder / name
            target.parent.mkdir(parents=True, exist_ok=True)
            with archive.open(info) as source, open(target, "xb") as copy:
                shutil.copyfileobj(source, copy, 1 << 20)
    return folder


def sources(assignment: Assignment) -> dict[str, Path]:
    """Each data file of ``assignment``: its name in the notebook's working folder -> the file
    on the grader's side (empty when it has none)."""
    if not assignment.data:
        return {}
    stat = assignment.zip_path.stat()
    key = (str(assignment.zip_path.resolve()), stat.st_size, stat.st_mtime_ns)
    with _LOCK:
        if key not in _FOLDERS:
            _FOLDERS[key] = _extract(assignment.zip_path, assignment.data)
        folder = _FOLDERS[key]
    return dict(zip(assignment.data, datafiles.data_files(folder, list(assignment.data))))
