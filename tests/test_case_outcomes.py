"""The grader runs each test case of a question itself (``labkit.grading.outcomes``): a question
scores what otter's own runner gives it, and each failure keeps, as data, the text a student may
see (a check's message whole, any other error as its type and first line)."""

from __future__ import annotations

import itertools

import pytest
from otter.test_files import ExceptionTestFile

from labkit.checks import core
from labkit.grading import outcomes
from labkit.outputs import results

#: (points, all_or_nothing, the points each case names or None) of test files as otter reads them:
#: points per case, a total split over the cases that name none, no points at all, and all or
#: nothing.
SPECS = [
    ([0, 1, 2], False, [None, None, None]),
    (3, False, [None, None, None]),
    (5, False, [2, None, None]),
    (None, False, [None, None, None]),
    (None, False, [0, None, None]),
    (None, False, [1, 2, 0]),
    (4, True, [None, None, None]),
    ([1, 1, 0.5], True, [None, None, None]),
]


def _source(points: object, all_or_nothing: bool, named: list) -> str:
    lines = ["from otter.test_files import test_case", "", 'name = "q"']
    if points is not None:
        lines.append(f"points = {points!r}")
    lines.append(f"all_or_nothing = {all_or_nothing!r}")
    for index, case_points in enumerate(named):
        given = "" if case_points is None else f"points={case_points!r}, "
        lines += ["", f"@test_case({given}hidden={index > 0})", f"def test_{index}(fail):",
                  f"    assert {index} not in fail, 'case {index} failed'"]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("points, all_or_nothing, named", SPECS)
def test_a_question_scores_what_otters_runner_gives_it(points, all_or_nothing, named):
    source = _source(points, all_or_nothing, named)
    for failing in itertools.chain.from_iterable(
            itertools.combinations(range(len(named)), n) for n in range(len(named) + 1)):
        env = {"fail": set(failing)}
        otter_run = ExceptionTestFile.from_string(source, path="q.py")
        otter_run.run(env)
        ours = ExceptionTestFile.from_string(source, path="q.py")
        score, graded = outcomes.run_question(ours, env)
        assert score == float(otter_run.score), (failing, score, otter_run.score)
        assert [o.possible for o in graded] == [float(c.points) for c in otter_run.test_cases]
        assert [o.passed for o in graded] == [r.passed for r in otter_run.test_case_results]
        assert sum(o.earned for o in graded) == pytest.approx(score)
        assert [o.name for o in graded] == [c.name for c in otter_run.test_cases]
        assert [o.hidden for o in graded] == [False] + [True] * (len(named) - 1)


WRONG_PINV = ("`pinv_svd` returned wrong values for inputs (a float64 tensor of shape (8, 4) on "
              "cpu): off by up to 1 where the expected values are of size up to 0.152.")
#: What each case raises, and the kind and message it must be kept as.
FAILURES = {
    "wrong_values": ("raise CheckFailed(WRONG_PINV)", results.CHECK, WRONG_PINV),
    "public_assert": ("assert isinstance(1, str), 'pinv_svd must return a tensor'",
                      results.CHECK, "pinv_svd must return a tensor"),
    "empty_assert": ("assert False", results.CHECK, outcomes.EMPTY),
    "hint": ("raise CheckFailed('first line\\n  a hint')", results.CHECK, "first line\n  a hint"),
    "too_slow": ("raise TooSlow('`f` is too slow: ' + 'x' * 400)", results.CHECK,
                 "`f` is too slow: " + "x" * 400),
    "stopped": ("raise NotebookStopped('`f` stopped the notebook\\'s process: it ended')",
                results.STOPPED, "`f` stopped the notebook's process: it ended"),
    "division": ("1 / 0", results.ERROR, "ZeroDivisionError: division by zero"),
    "key": ("{}['theta']", results.ERROR, "KeyError: theta"),
    "long_error": ("raise ValueError('v' * 300 + '\\nsecond line')", results.ERROR,
                   "ValueError: " + "v" * (core.MAX_ERROR_CHARS - 15) + "..."),
    "bare_error": ("raise RuntimeError()", results.ERROR, "RuntimeError"),
    "passes": ("pass", results.PASSED, ""),
}


def test_each_failure_keeps_the_text_a_student_may_see():
    lines = ["from otter.test_files import test_case",
             "from labkit.checks.core import CheckFailed, TooSlow",
             "from labkit.grading.standins import NotebookStopped",
             f"WRONG_PINV = {WRONG_PINV!r}", 'name = "q"', "points = 1"]
    for case, (statement, _, _) in FAILURES.items():
        lines += ["", f"@test_case(name={case!r}, hidden=True)", f"def test_{case}():",
                  f"    {statement}"]
    test_file = ExceptionTestFile.from_string("\n".join(lines) + "\n", path="q.py")
    score, graded = outcomes.run_question(test_file, {})
    assert {o.name: (o.kind, o.message) for o in graded} == {
        case: (kind, message) for case, (_, kind, message) in FAILURES.items()}
    assert score == pytest.approx(1 / len(FAILURES))
    assert all(len(o.message) <= core.MAX_ERROR_CHARS for o in graded if o.kind == results.ERROR)
