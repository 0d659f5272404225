"""An assignment's data files: the CSVs, small images and weights a notebook reads beside itself.

One list of names (``data = [...]`` in an assignment's spec, paths relative to the assignment's
folder) travels the whole way: the release copies each file into the student folder, the
autograder zip (otter's ``files/``) and beside the solution it executes, and writes the names into
the autograder's manifest; grading takes the files back out of the zip and lays them, read-only,
in the working folder of every notebook it runs (``labkit.sandbox``). Both ends check the names
here, so that what one end accepts the other does too.

A name is a relative path of plain parts: no ``..``, no absolute path, nothing hidden (a leading
dot), and no part that is a symbolic link on disk, so that a spec can never make the release copy,
or the grader expose, a file from outside the assignment's folder.
"""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath

#: Names the notebook's working folder already uses (the notebook itself is refused separately).
RESERVED = frozenset({".matplotlib"})
#: At most this many data files per assignment: each is one descriptor handed to the sandbox.
MAX_DATA_FILES = 32
#: A part of a name: letters, digits, and ``._-+`` inside (what a course names a file; nothing a
#: shell, a zip or another operating system reads differently).
_PART = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")


class DataFileError(ValueError):
    """A data file that cannot be shipped; the message names it and says what to do."""


def check_name(name: str) -> str:
    """``name`` as the working folder holds it (a relative POSIX path), or ``DataFileError``."""
    if not isinstance(name, str) or not name:
        raise DataFileError(f"data file {name!r}: give a path relative to the assignment's folder")
    path = PurePosixPath(name)
    if path.is_absolute() or "\\" in name:
        raise DataFileError(f"data file {name!r}: give a path relative to the assignment's "
                            f"folder, with forward slashes")
    if any(part == ".." for part in path.parts):
        raise DataFileError(f"data file {name!r} leaves the assignment's folder (`..`): keep "
                            f"data files inside it")
    if any(not _PART.match(part) for part in path.parts):
        raise DataFileError(f"data file {name!r}: each part of its path must start with a letter "
                            f"or digit and hold only letters, digits and . _ - +")
    if path.parts[0] in RESERVED or path.suffix == ".ipynb":
        raise DataFileError(f"data file {name!r} would replace what the notebook's working "
                            f"folder already holds: rename it")
    return str(path)


def check_names(names: list[str]) -> list[str]:
    """Every name checked, none twice, none inside another (``a`` and ``a/b``), at most
    ``MAX_DATA_FILES``."""
    checked = [check_name(name) for name in names]
    if len(checked) > MAX_DATA_FILES:
        raise DataFileError(f"{len(checked)} data files: at most {MAX_DATA_FILES}; put them in "
                            f"fewer, larger files (a zip or a .pt of several tensors)")
    seen: set[str] = set()
    for name in checked:
        if name in seen:
            raise DataFileError(f"data file {name!r} is named twice: name it once")
        seen.add(name)
    for name in checked:
        for other in checked:
            if other != name and PurePosixPath(other).is_relative_to(name):
                raise DataFileError(f"data file {other!r} lies inside data file {name!r}: "
                                    f"name files, not folders")
    return checked


def data_files(assignment_folder: Path, names: list[str]) -> list[Path]:
    """The files ``names`` inside ``assignment_folder``, in order; ``DataFileError`` when one is
    missing, not a regular file, or reached through a symbolic link (which could point anywhere)."""
    folder = Path(assignment_folder)
    found = []
    for name in check_names(list(names)):
        path = folder
        for part in PurePosixPath(name).parts:
            path = path / part
            if path.is_symlink():
                raise DataFileError(f"data file {name!r}: {path} is a symbolic link; put the "
                                    f"file itself in {folder}")
        if not path.is_file():
            raise DataFileError(f"data file {name!r} is not a file in {folder}: add it there, or "
                                f"take it out of the assignment's `data` list")
        found.append(path)
    return found


def name_of(path: Path, assignment_folder: Path) -> str:
    """The name a data file of ``assignment_folder`` is shipped under (its relative path)."""
    try:
        relative = Path(path).relative_to(assignment_folder)
    except ValueError:
        raise DataFileError(f"data file {path} is not inside {assignment_folder}: keep data "
                            f"files in the assignment's folder") from None
    return check_name(relative.as_posix())
