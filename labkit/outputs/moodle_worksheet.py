"""Moodle's grading worksheet, the one CSV file both ends of a Moodle round trip read: grading
takes each participant's submission time from it, ``make export LMS=moodle`` writes grades and
feedback back into it.

Moodle's assignment offers it under *View all submissions → Grading action → Download grading
worksheet* when the assignment's feedback types include "Offline grading worksheet"; *Upload
grading worksheet* reads it back (MoodleDocs, "Assignment settings", section Feedback types,
https://docs.moodle.org/401/en/Assignment_settings#Feedback_types, and "Using Assignment",
https://docs.moodle.org/401/en/Using_Assignment#Offline_grading_worksheet). Its columns, as
Moodle's ``mod/assign/gradingtable.php`` and ``feedback/offline`` write them: ``Identifier``
(``Participant <id>``, the participant id that also names each student's folder in "Download all
submissions"), ``Full name``, ``Email address`` (and other identity fields the site shows),
``Status``, ``Grade``, ``Maximum Grade``, ``Grade can be changed``, ``Last modified
(submission)``, ``Online text`` when that plugin is on, ``Last modified (grade)`` and ``Feedback
comments`` when that feedback type is on. The upload matches lines by ``Identifier`` and reads
``Grade`` and the feedback columns; it keeps the grade of a line whose ``Grade can be changed``
is "No", and skips one graded in Moodle after the worksheet was downloaded (its ``Last modified
(grade)``) unless the teacher ticks "Allow updating records that have been modified more recently
in Moodle than in the spreadsheet".
"""

from __future__ import annotations

import csv
import datetime
import io
import re
from dataclasses import dataclass
from pathlib import Path

IDENTIFIER = "Identifier"
GRADE = "Grade"
MAXIMUM = "Maximum Grade"
CHANGEABLE = "Grade can be changed"
SUBMITTED = "Last modified (submission)"
FEEDBACK = "Feedback comments"
#: ``Participant 123456`` (Moodle's "participant" string, English; other languages translate the
#: word, the number stays last).
_PARTICIPANT = re.compile(r"^\D*?(\d+)\s*$")
#: Moodle prints times with the user's ``strftimedatetime`` ("Tuesday, 14 November 2023, 3:04
#: PM" in English); a spreadsheet may have rewritten them. Tried in turn; none fitting: no time.
_TIME_FORMATS = ("%A, %d %B %Y, %I:%M %p", "%A, %d %B %Y, %H:%M", "%d %B %Y, %I:%M %p",
                 "%d %B %Y, %H:%M", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%d/%m/%Y %H:%M")


#: Larger files are refused unread: a worksheet of a few thousand participants is well under 1 MB.
MAX_LMS_FILE_BYTES = 32 * 1024 * 1024


def read_lms_file(path: Path, what: str) -> str:
    """The text of a file the LMS wrote (within ``MAX_LMS_FILE_BYTES``); OSError or ValueError
    with one sentence when it cannot be read."""
    with open(path, "rb") as handle:
        data = handle.read(MAX_LMS_FILE_BYTES + 1)
    if len(data) > MAX_LMS_FILE_BYTES:
        raise ValueError(f"{what} {path} is larger than {MAX_LMS_FILE_BYTES >> 20} MB, more than "
                         f"an LMS writes for a class; check that it is the right file")
    return decode(data)


class WorksheetError(Exception):
    """The file is not a grading worksheet Moodle wrote: said in one sentence."""


@dataclass
class Worksheet:
    path: Path
    header: list[str]
    #: (line number, cells) per participant line, cells as written (padded to the header)
    lines: list[tuple[int, list[str]]]

    def column(self, name: str) -> int | None:
        """The index of a column, its name compared without case and surrounding spaces."""
        wanted = name.strip().lower()
        for index, title in enumerate(self.header):
            if title.strip().lower() == wanted:
                return index
        return None

    def participants(self) -> dict[str, list[str]]:
        """Participant id -> its line's cells (the first line of an id that appears twice)."""
        at = self.column(IDENTIFIER)
        found: dict[str, list[str]] = {}
        for _, cells in self.lines:
            key = participant_id(cells[at]) if at is not None else None
            if key is not None:
                found.setdefault(key, cells)
        return found


def participant_id(identifier: str) -> str | None:
    """``Participant 123`` -> ``123``; None for anything else."""
    match = _PARTICIPANT.match(identifier.strip())
    return match.group(1) if match else None


def submission_time(text: str) -> datetime.datetime | None:
    """A ``Last modified (submission)`` cell as a time with its zone; None for "-" (no
    submission) or a form not known.

    Moodle prints the time in the downloading user's zone and does not say which: it is read in
    this machine's zone (``TZ=Europe/Paris make grade ...`` for another), which is the TA's when
    the TA downloads and grades."""
    text = " ".join(text.split())
    for layout in _TIME_FORMATS:
        try:
            return datetime.datetime.strptime(text, layout).astimezone()
        except ValueError:
            continue
    return None


def decode(data: bytes) -> str:
    """Moodle writes UTF-8 (with a BOM from some versions); a spreadsheet may save cp1252."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")


def is_worksheet(header: list[str]) -> bool:
    names = {title.strip().lower() for title in header}
    return IDENTIFIER.lower() in names and GRADE.lower() in names


def read_worksheet(path: Path) -> Worksheet:
    """The worksheet at ``path``; WorksheetError (one sentence) when it cannot be read or is not
    one."""
    try:
        text = read_lms_file(path, "the grading worksheet")
    except OSError as error:
        raise WorksheetError(f"cannot read the grading worksheet {path}: "
                             f"{error.strerror or error}") from None
    except ValueError as error:
        raise WorksheetError(str(error)) from None
    first = text.splitlines()[0] if text.strip() else ""
    for delimiter in (",", ";", "\t"):
        header = next(csv.reader([first], delimiter=delimiter), [])
        if is_worksheet(header):
            reader = csv.reader(io.StringIO(text), delimiter=delimiter)
            next(reader)
            lines = []
            try:
                for row in reader:
                    if any(cell.strip() for cell in row):
                        lines.append((reader.line_num, row + [""] * (len(header) - len(row))))
            except csv.Error as error:
                raise WorksheetError(f"the grading worksheet {path} is not a readable CSV file "
                                     f"(line {reader.line_num}: {error}); download it again") from None
            return Worksheet(path, header, lines)
    raise WorksheetError(f"{path} is not a Moodle grading worksheet (its first line must name the "
                         f"columns '{IDENTIFIER}' and '{GRADE}'; download it from the assignment: "
                         f"View all submissions, Grading action, Download grading worksheet); it "
                         f"reads {first[:200]!r}")
