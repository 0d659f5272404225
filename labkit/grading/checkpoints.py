"""Where each question is judged: on the notebook as it stands right after its check cell, as
otter's autograder judges it.

otter's autograder runs a submission with its client in grading mode: each ``grader.check("q")``
runs question q's hidden tests there and then, on the notebook's names as they are at that
point, and a question checked twice keeps the last check's result; the questions no check ran
are tested after the last cell. So a later cell that reuses a graded name (a helper of another
exercise also called ``mse``) leaves the question's grade alone, and a function defined only
below its check cell was not there when it was checked.

The grader follows the same rule (``judge``): it runs the notebook up to a question's last check
cell, judges the question there, and goes on. A question that no cell checks (a student deleted
the check cell, or wrote the question's name differently) is judged at the end of the notebook,
as otter's last cell judges it, and a note says so. The check cell is where the question is
judged whatever that cell did: the notebook's own client runs the public checks there, not the
hidden ones, so an error of that cell tells nothing of how otter's check would have gone (one
difference follows: where the client itself is missing, otter's checks all fail to run and
every question is judged at the end, while the grader still judges each at its check cell).
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


def at_end_note(questions: list[str]) -> str:
    """The note for questions that no cell checks: where they were judged instead."""
    calls = ", ".join(f'grader.check("{question}")' for question in questions)
    return (f"no cell runs {calls}: judged on the notebook as it stands at its end, as otter "
            f"does")


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
