"""The scores the teaching team records by hand for the written questions.

Scores are recorded in a CSV file (``student,assignment,question,points``; by default
``OUT/manual_scores.csv``, written as a template with empty points when absent). Each run merges
it into ``grades.csv`` and the feedback pages; empty points mean "not graded yet". Rows naming an
unknown student or question, or with points that are not a number, negative or above the
question's points, are skipped and listed in ``OUT/manual_problems.txt``; the others are merged.
Merging needs no regrading: the recorded (autograded) rows are reused and the scores applied on top.

A row may also name an autograded question: it overrides the autograded score (a regrade,
``overrides``) and must say why in the optional ``reason`` column, which the student reads on the
feedback page; a row without a reason is skipped and listed, saying to add one. On a written
question a reason is optional and is shown with the comment. The template lists the written
questions only: override rows are added by hand.
"""

from __future__ import annotations

import csv
import io
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

from labkit.course.questions import Question, column_key

from .feedback import TOLERANCE
from .gradebook import csv_line, from_spreadsheet, write_atomically, write_csv
from .overrides import Override

SCORE_FIELDS = ["student", "assignment", "question", "points"]
#: An optional column: the TA's words to the student, shown on the feedback page.
COMMENT_FIELD = "comment"
#: Longer comments are cut: a comment is a few sentences to a student, not a document.
MAX_COMMENT_CHARS = 4000
#: An optional column: why a TA changed a score; required on a row that overrides an autograded
#: question's score (``overrides``), shown to the student like a comment.
REASON_FIELD = "reason"
PROBLEMS_FILE = "manual_problems.txt"
DEFAULT_SCORES_FILE = "manual_scores.csv"

# --- scores ----------------------------------------------------------------------------------

@dataclass
class ScoreSheet:
    path: Path
    exists: bool = False
    #: student -> question column -> points
    points: dict[str, dict[str, float]] = field(default_factory=dict)
    #: student -> question column -> the TA's comment (from the optional ``comment`` column)
    comments: dict[str, dict[str, str]] = field(default_factory=dict)
    #: student -> autograded question's column -> the TA's override of its score
    overrides: dict[str, dict[str, Override]] = field(default_factory=dict)
    #: the file's rows about anything but a written question (overrides, whether applied or
    #: skipped), as ``[student, assignment, question, points, comment, reason]``: the written
    #: questions' pages carry them into the scores file they download, so none is lost
    other_rows: list[list[str]] = field(default_factory=list)
    #: one line each, naming the row
    problems: list[str] = field(default_factory=list)
    #: empty rows ``prepare_scores_file`` appended for students the file lacked
    added: int = 0

    @property
    def recorded(self) -> int:
        return sum(len(columns) for columns in self.points.values())


def _open_rows(text: str) -> tuple[list[tuple[int, dict[str, str]]] | None, str]:
    """(line number, row) for each row of a scores file, trying "," then ";" and tabs
    (spreadsheets in some locales save with them), or None and why."""
    first = text.splitlines()[0] if text.strip() else ""
    for delimiter in (",", ";", "\t"):
        header = [name.strip().lower() for name in next(csv.reader([first], delimiter=delimiter), [])]
        if all(name in header for name in SCORE_FIELDS):
            reader = csv.reader(io.StringIO(text), delimiter=delimiter)
            next(reader)
            # Cells as the kit wrote them (``write_csv`` escapes what a spreadsheet would run).
            return [(reader.line_num, dict(zip(header, map(from_spreadsheet, row))))
                    for row in reader], ""
    return None, (f"its first line must name the columns {','.join(SCORE_FIELDS)} "
                  f"(it reads {first[:200]!r}); nothing merged")


def _student(name: str, known: set[str], stripped: dict[str, list[str]]) -> str | None:
    """The student a row names: exactly, else ignoring spaces around the id when that is unique."""
    if name in known:
        return name
    matches = stripped.get(name.strip(), [])
    return matches[0] if len(matches) == 1 else None


def _points(text: str) -> float:
    """A points cell as a number (NaN when it is none); "1,5" is a decimal comma, as
    spreadsheets write it in many locales."""
    try:
        return float(text.replace(",", ".") if re.fullmatch(r"\d*,\d+", text) else text)
    except ValueError:
        return math.nan


def _words(row: dict[str, str], name: str) -> str:
    return (row.get(name) or "").strip()[:MAX_COMMENT_CHARS]


def read_scores(path: Path, students: list[str], questions: list[Question],
                autograded: list[Question] | tuple[Question, ...] = ()) -> ScoreSheet:
    """Read the TAs' scores, keeping every good row and saying why each bad one is skipped.

    ``questions`` are the written questions; ``autograded`` the questions whose score a row may
    override (none given: a row naming one is an unknown question, as before overrides)."""
    sheet = ScoreSheet(path)
    if not path.exists():
        return sheet
    sheet.exists = True
    if not path.is_file():
        sheet.problems.append(f"{path}: not a file; nothing merged")
        return sheet
    try:
        data = path.read_bytes()
    except OSError as error:
        sheet.problems.append(f"{path}: cannot be read ({error}); nothing merged")
        return sheet
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:  # a spreadsheet's "CSV" in a Windows code page
        text = data.decode("cp1252", errors="replace")
    rows, why = _open_rows(text)
    if rows is None:
        sheet.problems.append(f"{path}: {why}")
        return sheet
    known = set(students)
    stripped: dict[str, list[str]] = {}
    for student in students:
        stripped.setdefault(student.strip(), []).append(student)
    by_column = {q.column: q for q in questions}
    graded = {q.column: q for q in autograded if q.column not in by_column}
    seen: dict[tuple[str, str], tuple[int, float]] = {}
    for line, row in rows:
        values = {k: (row.get(k) or "") for k in SCORE_FIELDS}
        if not any(v.strip() for v in row.values()):
            continue
        student = _student(values["student"], known, stripped)
        assignment, name = values["assignment"].strip(), values["question"].strip()
        if not assignment and "/" in name:
            assignment, name = name.split("/", 1)
        column = column_key(assignment, name)
        text_points = values["points"].strip()
        comment, reason = _words(row, COMMENT_FIELD), _words(row, REASON_FIELD)
        if column not in by_column:  # kept as it is, for the pages' download
            sheet.other_rows.append([values["student"], values["assignment"], values["question"],
                                     values["points"], row.get(COMMENT_FIELD) or "",
                                     row.get(REASON_FIELD) or ""])
        where = f"line {line}"
        if student is None:
            sheet.problems.append(f"{where}: unknown student {values['student']!r}; skipped")
            continue
        question = by_column.get(column) or graded.get(column)
        if question is None:
            kind = "question" if graded else "written question"
            sheet.problems.append(
                f"{where}: unknown {kind} {column!r} (for {student!r}); skipped")
            continue
        label = f"{student!r}, {column}"
        if question.written and reason:  # the TA's words to the student, either way
            comment = f"{comment}\n\n{reason}" if comment else reason
        if not text_points:
            if not question.written and reason:
                sheet.problems.append(
                    f"{where}: a reason but no points for {label}; fill in the points that "
                    f"should count instead of the autograded score (or empty the reason); skipped")
            elif comment:  # a comment may come before the points
                sheet.comments.setdefault(student, {}).setdefault(column, comment)
            continue  # not graded yet, or no override
        points = _points(text_points)
        if not math.isfinite(points):
            sheet.problems.append(f"{where}: points {text_points!r} for {label} are not a number; skipped")
            continue
        if points < 0:
            sheet.problems.append(f"{where}: points {text_points} for {label} are negative; skipped")
            continue
        if points > question.points + TOLERANCE:
            sheet.problems.append(f"{where}: points {text_points} for {label} exceed the question's "
                                  f"{question.points:g}; skipped")
            continue
        if not question.written and not reason:
            sheet.problems.append(
                f"{where}: points {text_points} for {label} would override an autograded score "
                f"but give no reason; add the reason in a '{REASON_FIELD}' column (the student "
                f"reads it on the feedback page); skipped")
            continue
        earlier = seen.get((student, column))
        if earlier is not None:
            if abs(earlier[1] - points) > TOLERANCE:
                sheet.problems.append(f"{where}: a second score for {label} ({text_points}; line "
                                      f"{earlier[0]} gives {earlier[1]:g}, which is kept); skipped")
            continue
        seen[(student, column)] = (line, points)
        if question.written:
            sheet.points.setdefault(student, {})[column] = points
        else:
            sheet.overrides.setdefault(student, {})[column] = Override(points, reason)
        if comment:
            sheet.comments.setdefault(student, {})[column] = comment
    return sheet


def write_template(path: Path, students: list[str], questions: list[Question]) -> None:
    """One row per student per written question, points and comment empty; by question, then
    student. The comment column is there so that a TA editing the file by hand finds it."""
    write_csv(path, SCORE_FIELDS + [COMMENT_FIELD], (
        [student, question.assignment, question.name, "", ""]
        for question in questions for student in sorted(set(students))))


def add_missing_rows(path: Path, students: list[str], questions: list[Question]) -> int:
    """Append an empty row for each student and written question the scores file lacks (students
    added to SUBMISSIONS after the template was written); returns how many were added.

    The file is only appended to, in its own delimiter and columns, so every score and comment
    already entered stays byte for byte. A file whose header cannot be read is left alone (the
    problem is reported by ``read_scores``)."""
    try:
        data = path.read_bytes()
    except OSError:
        return 0
    encoding = "utf-8-sig" if data.startswith(b"\xef\xbb\xbf") else "utf-8"
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError:
        encoding, text = "cp1252", data.decode("cp1252", errors="replace")
    rows, _ = _open_rows(text)
    if rows is None:
        return 0
    present = set()
    for _, row in rows:
        values = {k: (row.get(k) or "").strip() for k in SCORE_FIELDS}
        assignment, name = values["assignment"], values["question"]
        if not assignment and "/" in name:
            assignment, name = name.split("/", 1)
        present.add((values["student"], column_key(assignment, name)))
    missing = [(student, question) for question in questions for student in sorted(set(students))
               if (student.strip(), question.column) not in present]
    if not missing:
        return 0
    first = text.splitlines()[0]
    delimiter = next(d for d in (",", ";", "\t") if all(
        n in [h.strip().lower() for h in next(csv.reader([first], delimiter=d), [])]
        for n in SCORE_FIELDS))
    header = [h.strip().lower() for h in next(csv.reader([first], delimiter=delimiter))]
    newline = "\r\n" if "\r\n" in text else "\n"
    lines = []
    for student, question in missing:
        values = {"student": student, "assignment": question.assignment,
                  "question": question.name}
        lines.append(csv_line([values.get(name, "") for name in header], delimiter, newline))
    addition = ("" if not text or text.endswith(("\n", "\r")) else newline) + "".join(lines)
    with open(path, "ab") as handle:
        handle.write(addition.encode("cp1252" if encoding == "cp1252" else "utf-8", "replace"))
    return len(missing)


def prepare_scores_file(path: Path, students: list[str], questions: list[Question],
                        sheet: ScoreSheet) -> int:
    """The scores file the TAs fill in: written as a template when absent, else given rows for
    students it lacks. Returns the rows added to an existing file, also kept in ``sheet.added``
    for the command's summary."""
    if not questions:
        return 0
    if not sheet.exists:
        write_template(path, students, questions)
        return 0
    added = add_missing_rows(path, students, questions) if path.is_file() else 0
    sheet.added += added
    return added


def write_problems(out: Path, sheet: ScoreSheet) -> Path | None:
    """``OUT/manual_problems.txt`` listing the skipped rows, or no file when there are none."""
    path = out / PROBLEMS_FILE
    if not sheet.problems:
        path.unlink(missing_ok=True)
        return None
    write_atomically(path, f"Problems in {sheet.path} (these rows were skipped; the others were "
                           f"merged into grades.csv):\n" + "".join(f"{p}\n" for p in sheet.problems))
    return path


