"""``make export`` into the LMS's own file: Canvas's gradebook export or Moodle's grading
worksheet comes in as ROSTER, and the same file comes out with the kit's points in the columns
of the assignments the course already has (``lms_columns``), so that importing it updates them.

Canvas, "How do I import grades in the Gradebook?" (Canvas Instructor Guide,
https://community.canvaslms.com/t5/Instructor-Guide/How-do-I-import-grades-in-the-Gradebook/ta-p/807):
the import reads the layout of *Grades → Export → Export Entire Gradebook*; the identity columns
(``Student``, ``ID``, ``SIS User ID``, ``SIS Login ID``, ``Section``, and ``Integration ID`` where
the export has it) must be kept; an assignment column is ``<name> (<assignment id>)``, and one
whose name names no assignment creates a new one; the ``Points Possible`` line is the export's
and not imported; the total and group columns (``Current Score``, ``Final Grade``, ...) are read
only, their changes ignored; a column left out is left as it is. So the file written keeps the
identity columns and the export's non-student lines, holds only the mapped assignment columns,
and leaves every student the kit did not grade with the value Canvas exported (no change).

Moodle: the grading worksheet (``moodle_worksheet``) comes back whole, in its own layout: the
upload matches each line by ``Identifier`` and reads ``Grade`` and ``Feedback comments``; the
kit fills them for the participants it graded (a line whose ``Grade can be changed`` is "No" is
kept as it is, and said), never above ``Maximum Grade``, and leaves every other line untouched.

Points are scaled to what the LMS says an assignment is worth (Canvas's ``Points Possible``,
Moodle's ``Maximum Grade``) when that differs from the kit's, and the summary says so.
"""

from __future__ import annotations

import csv
import html
import io
import re
from pathlib import Path

from labkit.course.questions import Question

from . import lms_columns, moodle_worksheet
from .gradebook import write_atomically
from .lms_common import (CANVAS_POINTS_ROW, SUBMISSION, Export, ExportError, assignment_points,
                         number)
from .page_files import page_names

#: Canvas's identity columns, as its gradebook export names them (case and spaces aside).
CANVAS_IDENTITY = ["Student", "ID", "SIS User ID", "SIS Login ID", "Integration ID",
                   "Root Account", "Section"]
#: The identity columns Canvas's import needs (its guide: kept as exported).
CANVAS_REQUIRED = ["Student", "ID", "SIS Login ID", "Section"]
#: An assignment's column in Canvas's export: its name and, in parentheses, its id.
_CANVAS_ASSIGNMENT = re.compile(r"^.*\S \(\d+\)$")
#: What Canvas's export puts on its Points Possible line above a column its import ignores.
READ_ONLY = "(read only)"
#: Lines of Canvas's export that are not students.
_CANVAS_NOT_STUDENTS = ("points possible", "manual posting")
#: The kit's student is matched on these Canvas ids, in turn (a download gives the user id).
_CANVAS_KEYS = ["ID", "SIS User ID", "SIS Login ID"]


def _key(name: str) -> str:
    return " ".join(name.strip().lower().split())


def _read_table(path: Path) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """A CSV file's header and its non-empty lines (line number, cells padded to the header)."""
    try:
        text = moodle_worksheet.read_lms_file(path, "the roster")
    except OSError as error:
        raise ExportError(f"cannot read the roster {path}: {error.strerror or error}") from None
    except ValueError as error:
        raise ExportError(str(error)) from None
    first = text.splitlines()[0] if text.strip() else ""
    delimiter = max((",", ";", "\t"), key=first.count)
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    try:
        header = next(reader, [])
        lines = [(reader.line_num, row + [""] * (len(header) - len(row)))
                 for row in reader if any(cell.strip() for cell in row)]
    except csv.Error as error:
        raise ExportError(f"the roster {path} is not a readable CSV file (line {reader.line_num}: "
                          f"{error}); export it from the LMS again") from None
    return header, lines


def write_lms_file(path: Path, header: list[str], rows: list[list[str]]) -> None:
    """The LMS's file written back with its own cells exactly as it wrote them (Moodle's "-" for
    "never", a name as the LMS spells it): unlike the kit's own CSV files, nothing is made
    spreadsheet-safe, since the LMS reads it back and the cells the kit writes are numbers and
    its own text. Quoted as ``gradebook.csv_line`` quotes (a lone carriage return included)."""
    def line(cells: list[str]) -> str:
        quoted = []
        for cell in cells:
            text = str(cell)
            if any(c in text for c in (",", '"', "\r", "\n")):
                text = '"' + text.replace('"', '""') + '"'
            quoted.append(text)
        return ",".join(quoted) + "\n"

    write_atomically(path, line(header) + "".join(line(row) for row in rows))


def is_canvas_gradebook(header: list[str]) -> bool:
    names = {_key(title) for title in header}
    return _key("Student") in names and _key("ID") in names


def _scaled(points: float, kit: float, lms: float | None) -> float:
    return points * lms / kit if lms is not None and kit > 0 and lms > 0 else points


def _text(value: float) -> str:
    return f"{round(value, 2):g}"


def _mapping(stems: list[str], columns: list[str], mapping_file: Path | None) -> dict[str, str]:
    try:
        if mapping_file is not None:
            return lms_columns.read_mapping(mapping_file, stems, columns)
        return lms_columns.match_columns(stems, columns)
    except lms_columns.ColumnError as error:
        raise ExportError(str(error)) from None


def _mapping_lines(mapping: dict[str, str], stems: list[str]) -> list[str]:
    lines = [f"{stem} -> {column!r}" for stem, column in mapping.items()]
    left = [stem for stem in stems if stem not in mapping]
    return ["columns: " + "; ".join(lines)] + (
        [f"not exported (no column mapped): {', '.join(left)}"] if left else [])


def fill_canvas(out: Path, questions: list[Question], grades: dict[str, dict[str, str]],
                roster: Path, mapping_file: Path | None, target: Path) -> Export:
    """Canvas's gradebook export with the kit's points in its existing assignment columns."""
    header, lines = _read_table(roster)
    at = {_key(title): index for index, title in enumerate(header)}
    missing = [name for name in CANVAS_REQUIRED if _key(name) not in at]
    if missing:
        raise ExportError(f"the roster {roster} lacks Canvas's column(s) {', '.join(missing)}, "
                          f"which its import needs kept: use the gradebook's own export (Grades, "
                          f"Export, Export Entire Gradebook) as it comes")
    identity = [index for index, title in enumerate(header)
                if _key(title) in {_key(name) for name in CANVAS_IDENTITY}]
    points_line = next((cells for _, cells in lines
                        if cells[0].strip().lower() == CANVAS_POINTS_ROW.lower()), None)
    read_only = {title for index, title in enumerate(header)
                 if points_line is not None and _key(points_line[index]) == READ_ONLY}
    assignment_columns = [title for title in header if _CANVAS_ASSIGNMENT.match(title.strip())
                          and title not in read_only]
    stems = list(dict.fromkeys(q.assignment for q in questions))
    if mapping_file is not None:
        for stem, column in _mapping(stems, header, mapping_file).items():
            if column not in assignment_columns:
                why = ("Canvas marks it read only, so its import would ignore it"
                       if column in read_only else "it is not an assignment's column")
                raise ExportError(f"the columns file {mapping_file} maps {stem} to {column!r}, "
                                  f"but {why}; its assignment columns are "
                                  f"{lms_columns.listing(assignment_columns)}")
    mapping = _mapping(stems, assignment_columns, mapping_file)
    targets = list(dict.fromkeys(mapping.values()))
    written = [header.index(column) for column in targets]
    kit_possible = {column: sum(q.points for q in questions if mapping.get(q.assignment) == column)
                    for column in targets}
    result = Export(target, 0, 0, into_lms_file=True)
    result.notes.extend(_mapping_lines(mapping, stems))
    possible: dict[str, float | None] = {column: None for column in targets}
    table: list[list[str]] = []
    named: dict[str, int] = {}
    submission = at.get(SUBMISSION)
    for line, cells in lines:
        first = cells[0].strip().lower()
        if first in _CANVAS_NOT_STUDENTS or not any(cells[at[_key(k)]].strip()
                                                     for k in _CANVAS_KEYS if _key(k) in at):
            if first == CANVAS_POINTS_ROW.lower():
                possible = {column: number(cells[header.index(column)]) for column in targets}
            table.append([cells[i] for i in identity] + [cells[i] for i in written])
            continue
        result.rows += 1
        student = _canvas_student(cells, at, submission, grades)
        if student is not None and student in named:
            result.problems.append(f"roster line {line}: student {student!r} is also on line "
                                   f"{named[student]}; this line is left as Canvas exported it")
            student = None
        row = [cells[i] for i in identity] + [cells[i] for i in written]
        if student is None:
            result.without_submission.append(cells[0] or f"line {line}")
        else:
            named[student] = line
            points, pending = assignment_points(questions, grades[student])
            for offset, column in enumerate(targets):
                total = sum(float(points.get(stem, 0)) for stem, mapped in mapping.items()
                            if mapped == column)
                row[len(identity) + offset] = _text(_scaled(total, kit_possible[column],
                                                            possible[column]))
            result.matched += 1
            result.pending += pending
        table.append(row)
    for column in targets:
        if possible[column] is not None and abs(possible[column] - kit_possible[column]) > 1e-9:
            result.notes.append(f"{column!r} is worth {possible[column]:g} points in Canvas and "
                                f"{kit_possible[column]:g} in the kit: points scaled to Canvas's")
    result.unmatched = sorted(s for s in grades if s not in named)
    write_lms_file(target, [header[i] for i in identity] + targets, table)
    return result


def _canvas_student(cells: list[str], at: dict[str, int], submission: int | None,
                    grades: dict[str, dict[str, str]]) -> str | None:
    """The kit's student of a Canvas line: its ``submission`` cell when the roster has that
    column, else the first of its Canvas ids that names a graded student."""
    if submission is not None:
        name = cells[submission].strip()
        return name if name in grades else None
    for key in _CANVAS_KEYS:
        index = at.get(_key(key))
        if index is not None and cells[index].strip() in grades:
            return cells[index].strip()
    return None


def fill_moodle(out: Path, questions: list[Question], grades: dict[str, dict[str, str]],
                roster: Path, mapping_file: Path | None, target: Path) -> Export:
    """Moodle's grading worksheet with each graded participant's grade and feedback."""
    try:
        sheet = moodle_worksheet.read_worksheet(roster)
    except moodle_worksheet.WorksheetError as error:
        raise ExportError(str(error)) from None
    grade_at = sheet.column(moodle_worksheet.GRADE)
    ident_at = sheet.column(moodle_worksheet.IDENTIFIER)
    maximum_at = sheet.column(moodle_worksheet.MAXIMUM)
    change_at = sheet.column(moodle_worksheet.CHANGEABLE)
    feedback_at = sheet.column(moodle_worksheet.FEEDBACK)
    stems = list(dict.fromkeys(q.assignment for q in questions))
    grade_title = sheet.header[grade_at]
    if mapping_file is not None:
        mapping = _mapping(stems, [grade_title], mapping_file)
    else:  # the worksheet has one grade: the whole lab's, as its folders hold every notebook
        mapping = {stem: grade_title for stem in stems}
    worth = {stem: sum(q.points for q in questions if q.assignment == stem) for stem in mapping}
    kit_possible = sum(worth.values())
    result = Export(target, 0, 0, into_lms_file=True)
    result.notes.extend(_mapping_lines(mapping, stems))
    pages = dict(zip(grades, page_names(list(grades))))
    named: dict[str, int] = {}
    table = []
    scaled_to: set[float] = set()
    for line, cells in sheet.lines:
        cells = list(cells)
        result.rows += 1
        participant = moodle_worksheet.participant_id(cells[ident_at])
        student = participant if participant in grades else None
        if student is not None and student in named:
            result.problems.append(f"worksheet line {line}: participant {participant} is also on "
                                   f"line {named[student]}; this line is left as it is")
            student = None
        if student is not None and change_at is not None \
                and cells[change_at].strip().lower() == "no":
            result.problems.append(f"worksheet line {line}: Moodle says the grade of participant "
                                   f"{participant} cannot be changed (locked or overridden in "
                                   f"the gradebook); left as it is")
            named[student] = line
            student = None
        if student is None:
            if participant not in named:
                result.without_submission.append(cells[ident_at] or f"line {line}")
            table.append(cells)
            continue
        named[student] = line
        points, pending = assignment_points(questions, grades[student])
        total = sum(float(points.get(stem, 0)) for stem in mapping)
        maximum = number(cells[maximum_at]) if maximum_at is not None else None
        grade = _scaled(total, kit_possible, maximum)
        if maximum is not None and abs(maximum - kit_possible) > 1e-9:
            scaled_to.add(maximum)
        cells[grade_at] = _text(min(grade, maximum) if maximum is not None else grade)
        if feedback_at is not None:
            cells[feedback_at] = _feedback(total, kit_possible, points, mapping, worth, pending,
                                           pages[student])
        result.matched += 1
        result.pending += pending
        table.append(cells)
    if scaled_to:
        result.notes.append(f"the grade is out of {', '.join(f'{m:g}' for m in sorted(scaled_to))}"
                               f" in Moodle and {kit_possible:g} points in the kit: grades scaled "
                               f"to Moodle's")
    if feedback_at is None:
        result.problems.append(f"no feedback written: the worksheet has no "
                               f"'{moodle_worksheet.FEEDBACK}' column (turn on the assignment's "
                               f"feedback type 'Feedback comments' and download it again)")
    result.unmatched = sorted(s for s in grades if s not in named)
    write_lms_file(target, sheet.header, table)
    return result


def _feedback(total: float, possible: float, points: dict[str, str], mapping: dict[str, str],
              worth: dict[str, float], pending: bool, page: str) -> str:
    """The short text Moodle shows the student beside the grade: the points, per assignment, and
    where the full feedback is (the feedback page the teaching team hands out)."""
    parts = "; ".join(f"{stem} {points.get(stem, '0')} of {worth[stem]:g}" for stem in mapping)
    text = (f"Autograded: {_text(total)} of {possible:g} points ({parts})."
            + (" Written answers not scored yet count nothing so far." if pending else "")
            + f" Every question's result is on your feedback page, {page}.")
    return html.escape(text, quote=False)
