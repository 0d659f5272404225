"""Run a question's test cases and keep what each one did as data (``results.CaseOutcome``).

The released test files are otter's exception-based format, parsed by otter (its test cases and
their points, a question's points split over its cases as otter splits them). Each case is then
called here, on the notebook's names, and what it raises is turned into an outcome at once
(``outcome``): its kind and the text a student may see. Otter's runner would instead write the
exception into its own failure text, beside a quoted line of the hidden test, and that text would
have to be parsed back apart, guessing where the check's own message (which may hold anything)
starts and ends.

Scores are otter's: a question scores the points of the cases it passed, or, for a test file
marked ``all_or_nothing``, all of its points when every case passed and none otherwise.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from otter.test_files import ExceptionTestFile
from otter.test_files.abstract_test import TestCase

from labkit.checks import core
from labkit.outputs.results import CHECK, ERROR, PASSED, STOPPED, CaseOutcome
from .standins import NotebookStopped

#: What a student sees for a check that failed with an empty message.
EMPTY = "This check failed without a message."


def failure(error: Exception) -> tuple[str, str]:
    """The kind of a test case's failure and the text a student may see of it.

    A failed check (``CheckFailed`` and its kinds, or a test's own ``assert``) carries a message
    written for students: it is kept whole. Any other exception comes from student code or from
    the test itself: only its type and first line are kept, cut to ``core.MAX_ERROR_CHARS``
    characters (enough to act on, too little to carry hidden inputs out through a student's
    exception text). The text is the exception's as otter showed it: single quotes around it
    (a ``KeyError``'s) and surrounding white space dropped.
    """
    text = str(error).strip("'").strip()
    name = type(error).__name__
    if isinstance(error, AssertionError):
        return (STOPPED if isinstance(error, NotebookStopped) else CHECK), text or EMPTY
    return ERROR, core.clip_error(f"{name}: {text.splitlines()[0]}" if text else name)


def outcome(question: str, case: TestCase, error: Exception | None) -> CaseOutcome:
    """One test case's outcome, from what calling it raised (None: nothing, it passed). Its
    points earned are the case's own; ``run_question`` settles an all-or-nothing question."""
    points = float(case.points or 0)
    if error is None:
        return CaseOutcome(question=question, name=str(case.name), hidden=bool(case.hidden),
                           kind=PASSED, message="", earned=points, possible=points)
    kind, message = failure(error)
    return CaseOutcome(question=question, name=str(case.name), hidden=bool(case.hidden),
                       kind=kind, message=message, earned=0.0, possible=points)


def run_case(case: TestCase, names: Mapping[str, object]) -> Exception | None:
    """Call one test case on the notebook's names (otter's calling convention: each parameter
    gets the name of its own, ``env`` gets them all); what it raised, or None."""
    try:
        case.body.call_func(names)
    except Exception as error:  # whatever a test or the student's code raises is its outcome
        return error
    return None


def run_question(test_file: ExceptionTestFile,
                 names: Mapping[str, object]) -> tuple[float, list[CaseOutcome]]:
    """Every test case of one question's test file, in order: the question's score, as otter's
    runner scores it, and each case's outcome."""
    outcomes = [outcome(test_file.name, case, run_case(case, names))
                for case in test_file.test_cases]
    passed = [case.points for case, done in zip(test_file.test_cases, outcomes) if done.passed]
    if not test_file.all_or_nothing:
        return float(sum(passed)), outcomes
    if len(passed) == len(outcomes):
        return float(sum(case.points for case in test_file.test_cases)), outcomes
    # Nothing at all when any case failed: the passed cases earn nothing either.
    return 0.0, [dataclasses.replace(done, earned=0.0) for done in outcomes]


def not_run(test_file: ExceptionTestFile, message: str) -> tuple[float, list[CaseOutcome]]:
    """A question whose test cases never ran because the notebook's process had stopped for
    good before the question's check: every case ``STOPPED`` with ``message``, nothing earned."""
    return 0.0, [CaseOutcome(question=test_file.name, name=str(case.name),
                             hidden=bool(case.hidden), kind=STOPPED, message=message,
                             earned=0.0, possible=float(case.points or 0))
                 for case in test_file.test_cases]
