"""The per-student results files in OUT, ``results/<student>/``: what grading keeps of each
notebook and of each student's row, as data, for the pages to read back.

``<assignment>.json`` holds one notebook's scores, its problem, its notes and one outcome per test
case (``CaseOutcome``): whether the case passed, failed a check or raised, and the text a student
may see, kept as the grader wrote it, so no reader ever parses a message out of another tool's
text. ``notes.json`` holds the student's row notes as a list: ``grades.csv`` joins them with "; "
for display, and a note may itself hold "; ", so that column is never read back as notes.

Grading (``labkit.grading``) writes these files and the pages (``feedback``, ``report``) read
them; both sides meet here, the lower layer.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from .gradebook import write_atomically

#: Bump when the meaning of a results file changes. Format 1 (no ``format`` field) kept otter's
#: own failure text in each case's message, test code included.
FORMAT = 2
#: A student's row notes, beside the assignments' files in ``results/<student>/``.
NOTES_FILE = "notes.json"
#: The student's name as an LMS download gives it (the id being the LMS's number), for pages.
NAME_FILE = "name.json"

#: The kinds of outcome of one test case.
PASSED = "passed"
#: A check's own failure, written for the student: shown whole.
CHECK = "check"
#: Any other exception, from student code or from the test: shown as its type and first line.
ERROR = "error"
#: The notebook's process was stopped (it ended, hung or broke the protocol) during a call.
STOPPED = "stopped"
KINDS = (PASSED, CHECK, ERROR, STOPPED)

#: What a student sees for a failed case whose text cannot be shown safely: one recorded in
#: format 1, where the message is otter's text and quotes a line of the hidden test.
UNREADABLE = "This check failed (no further detail is available)."


@dataclass(frozen=True)
class CaseOutcome:
    """One test case of a question, as graded."""
    question: str
    #: the test case's name in its test file (otter's "<question> - <n>" unless named)
    name: str
    hidden: bool
    #: one of ``KINDS``
    kind: str
    #: what the student is shown for it ("" when it passed)
    message: str
    earned: float
    possible: float

    @property
    def passed(self) -> bool:
        return self.kind == PASSED


def write_assignment(out: Path, student: str, stem: str, scores: dict[str, float],
                     problem: str | None, notes: list[str], cases: list[CaseOutcome]) -> None:
    """``results/<student>/<stem>.json`` for one graded notebook."""
    write_atomically(out / "results" / student / f"{stem}.json", json.dumps(
        {"format": FORMAT, "scores": scores, "problem": problem, "notes": notes,
         "cases": [asdict(case) for case in cases]},
        indent=1, sort_keys=True))


def write_notes(out: Path, student: str, notes: list[str]) -> None:
    """``results/<student>/notes.json``: the student's row notes, every one whole."""
    write_atomically(out / "results" / student / NOTES_FILE,
                     json.dumps({"format": FORMAT, "notes": notes}, indent=1, sort_keys=True))


def write_name(out: Path, student: str, name: str) -> None:
    """``results/<student>/name.json``: the name an LMS download gives the student, so that the
    pages of a student known by a number say who it is."""
    write_atomically(out / "results" / student / NAME_FILE,
                     json.dumps({"format": FORMAT, "name": name}, sort_keys=True))


def read_name(folder: Path | None) -> str:
    """The name kept for a student; "" when none is (the kit's own layout names by folder)."""
    if folder is None:
        return ""
    try:
        data = json.loads((folder / NAME_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return ""
    name = data.get("name") if isinstance(data, dict) else None
    return name[:200] if isinstance(name, str) else ""


def _number(value: object) -> float:
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return 0.0


def _case(case: dict, current: bool) -> CaseOutcome:
    """A recorded case as an outcome. A case of format 1 keeps its points and whether it passed,
    but never its message (otter's text, which quotes the hidden test's code)."""
    if current:
        kind = case.get("kind") if case.get("kind") in KINDS else ERROR
        message = str(case.get("message") or "")
        possible = _number(case.get("possible"))
        earned = _number(case.get("earned"))
    else:
        kind = PASSED if case.get("passed") else ERROR
        message = "" if kind == PASSED else UNREADABLE
        possible = _number(case.get("points"))
        earned = possible if kind == PASSED else 0.0
    return CaseOutcome(question=str(case.get("question")), name=str(case.get("name") or ""),
                       hidden=bool(case.get("hidden")), kind=kind, message=message,
                       earned=earned, possible=possible)


def read_assignment(folder: Path, stem: str) -> dict | None:
    """One notebook's record from a student's results folder, its cases as ``CaseOutcome``;
    None when it is absent or unreadable."""
    try:
        record = json.loads((folder / f"{stem}.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict):
        return None
    current = record.get("format") == FORMAT
    cases = record.get("cases")
    record["cases"] = [_case(case, current) for case in cases if isinstance(case, dict)] \
        if isinstance(cases, list) else []
    return record


def read_notes(folder: Path) -> list[str] | None:
    """The row notes kept in a student's results folder; None when there are none kept (an OUT
    graded before they were, or a student with no folder)."""
    try:
        data = json.loads((folder / NOTES_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    notes = data.get("notes") if isinstance(data, dict) else None
    if not isinstance(notes, list):
        return None
    return [str(note) for note in notes]
