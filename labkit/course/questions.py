"""One question of an assignment, as the whole kit knows it: the release writes it into the
autograder's manifest, grading reads it back, and every output (gradebook, feedback, report,
written questions' pages, LMS export, similarity) names it the same way.

A question's column key, ``<assignment>/<question>``, names it in ``grades.csv``, in the scores
file, in the pages' forms and in the shards' answers: it is built here only (``column_key``), so
that no two parts of the kit can spell it differently.
"""

from __future__ import annotations

from dataclasses import dataclass


def column_key(assignment: str, name: str) -> str:
    """The key of question ``name`` of ``assignment``: its column in ``grades.csv``. For keys of
    questions read as bare text (a CSV row, a recorded result), where no ``Question`` is at hand."""
    return f"{assignment}/{name}"


@dataclass(frozen=True)
class Question:
    assignment: str
    name: str
    points: float
    #: graded by hand (a written answer), rather than by the autograder's tests
    written: bool = False
    #: a written question's text (markdown), as the student notebook shows it
    prompt: str = ""
    #: a written question's reference solution (markdown), from the solutions notebook
    solution: str = ""

    @property
    def column(self) -> str:
        """The question's column in ``grades.csv``."""
        return column_key(self.assignment, self.name)
