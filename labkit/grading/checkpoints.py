"""Where each question is judged: on the notebook as it stands right after its check cell, as
otter's autograder judges it.

otter's autograder runs a submission with its client in grading mode: each ``grader.check("q")``
runs question q's hidden tests there and then, on the notebook's names as they are at that
point, and a question checked twice keeps the last check's result; the questions no check ran
are tested after the last cell. So a later cell that reuses a graded name (a helper of another
exercise also called ``mse``) leaves the question's grade alone, and a function defined only
below its check cell was not there when it was checked.

The grader follows the same rule (``judge``): it runs the notebook up to a question's last check
cell, judges the question there, and goes on. A check cell that did not run to its end (it
raised, it was interrupted or dropped) counts as no check, as in otter, where the check inside it
did not run or was not recorded; such a question, and one that no cell checks (a student moved
or deleted the check cell), is judged at the end of the notebook, as otter's last cell judges it.
"""

from __future__ import annotations

from dataclasses import dataclass

from labkit import notebooks
from labkit.checks import core


@dataclass(frozen=True)
class Stop:
    """A point of the run where questions are judged: after code cell ``cell`` (index from 0),
    or at the end of the notebook (None)."""

    cell: int | None
    questions: tuple[str, ...]


def last_checks(sources: list[str], questions: list[str]) -> dict[str, int]:
    """For each question that a code cell checks (``notebooks.checked_questions``), the last
    such cell."""
    last: dict[str, int] = {}
    for index, source in enumerate(sources):
        named, every = notebooks.checked_questions(source)
        for question in questions:
            if every or question in named:
                last[question] = index
    return last


def stops(sources: list[str], questions: list[str]) -> list[Stop]:
    """Where the questions are judged, in the order the run reaches them: one stop per check
    cell, then the end of the notebook for the questions no cell checks (always there, so that
    the whole notebook runs). Within a stop, the questions keep their order."""
    last = last_checks(sources, questions)
    cells = sorted(set(last.values()))
    return [*(Stop(cell, tuple(q for q in questions if last.get(q) == cell)) for cell in cells),
            Stop(None, tuple(q for q in questions if q not in last))]


def at_end_note(questions: list[str], unchecked: list[str]) -> str:
    """The note for questions judged at the end of the notebook although its check cell was
    there to judge them: ``unchecked`` had none, the rest a check cell that did not run to its
    end."""
    parts = []
    if unchecked:
        parts.append(f"no cell runs grader.check for {', '.join(unchecked)}")
    failed = [q for q in questions if q not in unchecked]
    if failed:
        parts.append(f"the check cell of {', '.join(failed)} did not run to its end")
    return (f"{', '.join(questions)} judged on the notebook as it stands at its end "
            f"({' and '.join(parts)}), as otter does")


class DefinedAfterCheck(core.MissingName):
    """A name the notebook defines only below the check cell of the question being judged: at
    the check it did not exist, and the test says so and where the definition is."""

    def __init__(self, name: str, defining_cell: str, check_cell: str):
        super().__init__(name, f"{defining_cell} defines it only after {check_cell}")
        self.defining_cell, self.check_cell = defining_cell, check_cell

    def absent(self, what: str, advice: str) -> str:
        return (f"There was no {what} in your notebook yet when this question's check ran "
                f"({self.check_cell}): {self.defining_cell} defines `{self.name}` only further "
                f"down. Each question is graded where its check runs, so move that definition "
                f"above the check cell.")
