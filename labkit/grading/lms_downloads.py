"""The bulk downloads of Canvas and Moodle read as SUBMISSIONS as they come, unzipped, without
renaming a file: each student's files are grouped under the id the LMS knows them by, so that
``make export`` finds them in the LMS's own gradebook.

- Canvas, *Assignments → (an assignment) → Download Submissions* (Canvas Instructor Guide, "How
  do I download all student submissions for an assignment?", community.canvaslms.com; the file
  names are those of Canvas's submissions zip, as tools that read it take them apart, e.g.
  mikewesthad/canvas-unzipper's README: ``smithbob_340934_208490284_BobsWork.zip``): one flat
  folder, every file named ``<name>_[LATE_]<user id>_<submission id>_<original file name>``,
  where ``<name>`` is the student's sortable name lowercased with everything but letters and
  digits removed (``lovelaceada``), ``LATE`` marks a submission Canvas counts late (the name
  gives no time) and the original file name keeps the ``-1``, ``-2`` Canvas appends to a file
  uploaded again under a name it already had. A student is their Canvas user id, the ``ID``
  column of Canvas's gradebook export.
- Moodle, *View all submissions → Download all submissions*, with "Download submissions in
  folders" on (Moodle's default since 3.9; ``mod/assign/locallib.php``, ``download_submissions``;
  MoodleDocs "Assignment settings",
  https://docs.moodle.org/401/en/Assignment_settings#Download_submissions_in_folders): one folder
  per participant and submission plugin, ``<Full Name>_<participant id>_assignsubmission_file_``
  for the files and ``..._assignsubmission_onlinetext_`` for an online text (no notebook: skipped,
  with a line in the summary); with that setting off (the default before 3.9), one flat folder of
  files ``<Full Name>_<participant id>_assignsubmission_file_<original file name>``, grouped by
  participant. A student is their participant id, ``Participant <id>`` in the grading
  worksheet; the worksheet, when given, also gives each submission's time.

A folder is read in one of these layouts when most of its files (Canvas) or folders (Moodle)
have the layout's names; otherwise it is the kit's own (one entry per student). In an LMS layout
a name that does not parse is not a student: it gets a line in the summary, as a file that is
not a submission does.
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass, field
from pathlib import Path

from labkit.outputs import moodle_worksheet

CANVAS = "canvas"
MOODLE = "moodle"
#: ``<name>_[LATE_]<user id>_<submission id>_<original file name>``; Canvas's name part holds
#: letters and digits only, so the first "_" ends it.
_CANVAS_FILE = re.compile(
    r"^(?P<name>[^\W_]+)_(?:(?P<late>LATE)_)?(?P<user>\d+)_(?P<submission>\d+)_(?P<original>.+)$")
#: ``<Full Name>_<participant id>_assign<submission|feedback>_<plugin>_``
_MOODLE_FOLDER = re.compile(
    r"^(?P<name>.+)_(?P<participant>\d+)_assign(?P<kind>submission|feedback)_(?P<plugin>[a-z0-9]+)_$")
#: Without "Download submissions in folders" (Moodle before 3.9 by default), one flat folder:
#: ``<Full Name>_<participant id>_assignsubmission_<plugin>_<original file name>``.
_MOODLE_FILE = re.compile(
    r"^(?P<name>.+?)_(?P<participant>\d+)_assign(?P<kind>submission|feedback)_"
    r"(?P<plugin>[a-z0-9]+)_(?P<original>.+)$")
#: How each download names a student's part, for the summary's line on the names it does not.
NAMING = {CANVAS: "Canvas names a student's files (<name>_<user id>_<submission id>_<file>)",
          MOODLE: "Moodle names a student's folder or files (<Full Name>_<id>_assignsubmission_file_)"}
#: The Moodle plugin whose folders hold the files a student uploaded.
_MOODLE_FILES = "file"
#: Canvas's suffix on a file uploaded again under a name it already had: ``name-1.ipynb``.
_RESUBMITTED = re.compile(r"^(?P<base>.+)-(?P<number>\d+)(?P<suffix>\.[^.]+)$")


@dataclass
class Grouped:
    """One student's files as an LMS layout names them."""
    #: the name the entry is recorded under: ``<name>_<user id>`` (Canvas), the folder (Moodle)
    name: str
    student: str
    display: str
    paths: list[Path]
    #: per path, the file name the student gave it (Canvas); empty: the names as they are
    originals: list[str] = field(default_factory=list)
    marked_late: bool = False
    handed_in: datetime.datetime | None = None


@dataclass
class Layout:
    """What an LMS layout made of a folder's entries."""
    system: str
    students: list[Grouped]
    #: names that are no student's (a stray file, a name that does not parse, an online text)
    others: list[str]
    #: summary lines: how the folder was read, what was skipped and why
    notes: list[str]


def canvas_parts(name: str) -> re.Match[str] | None:
    return _CANVAS_FILE.match(name)


def resubmission(original: str) -> tuple[str, int]:
    """``x-2.ipynb`` -> (``x.ipynb``, 2): the name the student uploaded and Canvas's count of the
    earlier uploads of that name; (the name, 0) when it has no such suffix."""
    match = _RESUBMITTED.match(original)
    if match is None:
        return original, 0
    return match["base"] + match["suffix"], int(match["number"])


def detect(files: list[Path], folders: list[Path]) -> str | None:
    """The LMS layout of a folder from its (non-hidden, non-system) files and folders; None for
    the kit's own."""
    canvas = sum(1 for path in files if _CANVAS_FILE.match(path.name))
    moodle = sum(1 for path in folders if _MOODLE_FOLDER.match(path.name)) \
        + sum(1 for path in files if _MOODLE_FILE.match(path.name))
    if moodle and moodle * 2 > len(folders) + len(files):
        return MOODLE
    if canvas and canvas * 2 > len(files) + len(folders):
        return CANVAS
    return None


def read_canvas(files: list[Path]) -> Layout:
    """Group a Canvas download's files by user id."""
    by_user: dict[str, Grouped] = {}
    others = []
    for path in files:
        match = _CANVAS_FILE.match(path.name)
        if match is None:
            others.append(path.name)
            continue
        group = by_user.setdefault(match["user"], Grouped(
            f"{match['name']}_{match['user']}", match["user"], match["name"], [], []))
        group.paths.append(path)
        group.originals.append(match["original"])
        group.marked_late = group.marked_late or bool(match["late"])
    late = sum(1 for group in by_user.values() if group.marked_late)
    notes = [f"read as a Canvas download: {len(by_user)} students by Canvas user id"
             + (f", {late} marked LATE by Canvas" if late else "")]
    return Layout(CANVAS, sorted(by_user.values(), key=lambda g: g.name), others, notes)


def read_moodle(folders: list[Path], files: list[Path], worksheet: Path | None) -> Layout:
    """A Moodle download's ``_assignsubmission_file_`` folders, one per participant; the
    worksheet, when given, dates each one."""
    times, notes = _worksheet_times(worksheet)
    students, others, texts = [], [], []
    for path in folders:
        match = _MOODLE_FOLDER.match(path.name)
        if match is None:
            others.append(path.name)
        elif match["kind"] == "submission" and match["plugin"] == _MOODLE_FILES:
            participant = match["participant"]
            students.append(Grouped(path.name, participant, match["name"], [path],
                                    handed_in=times.get(participant)))
        else:
            texts.append(path.name)
    flat: dict[str, Grouped] = {}
    for path in files:
        match = _MOODLE_FILE.match(path.name)
        if match is None:
            others.append(path.name)
        elif match["kind"] == "submission" and match["plugin"] == _MOODLE_FILES:
            participant = match["participant"]
            group = flat.setdefault(participant, Grouped(
                f"{match['name']}_{participant}_{match['kind']}", participant, match["name"], [],
                [], handed_in=times.get(participant)))
            group.paths.append(path)
            group.originals.append(match["original"])
        else:
            texts.append(path.name)
    students.extend(flat.values())
    notes.insert(0, f"read as a Moodle download: {len(students)} students by participant id"
                 + (f", submission times from {worksheet.name}" if worksheet else
                    " (no submission times: pass WORKSHEET=<the grading worksheet> for them)"))
    if texts:
        named = ", ".join(texts[:3]) + (f" and {len(texts) - 3} more" if len(texts) > 3 else "")
        notes.append(f"skipped {len(texts)} Moodle folder(s) or file(s) that are not uploaded "
                     f"files (online text or feedback, no notebook in them): {named}")
    return Layout(MOODLE, sorted(students, key=lambda g: g.name), sorted(others), notes)


def _worksheet_times(worksheet: Path | None) -> tuple[dict[str, datetime.datetime], list[str]]:
    """Participant id -> the time of the submission, from the grading worksheet; a worksheet
    that cannot be read costs the times only (a line in the summary says so)."""
    if worksheet is None:
        return {}, []
    try:
        sheet = moodle_worksheet.read_worksheet(worksheet)
    except moodle_worksheet.WorksheetError as error:
        return {}, [f"no submission times: {error}"]
    at = sheet.column(moodle_worksheet.SUBMITTED)
    if at is None:
        return {}, [f"no submission times: {worksheet.name} has no "
                    f"'{moodle_worksheet.SUBMITTED}' column"]
    times, unread = {}, 0
    for participant, cells in sheet.participants().items():
        when = moodle_worksheet.submission_time(cells[at])
        if when is not None:
            times[participant] = when
        elif cells[at].strip() not in ("", "-"):
            unread += 1
    notes = [f"{unread} submission time(s) of {worksheet.name} are in a form not known (Moodle's "
             f"English date format is); those submissions have no time"] if unread else []
    return times, notes
