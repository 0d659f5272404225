"""Each typical wrong answer loses points and each correct alternative keeps full marks, judged
by the released tests of its question (the autograder zip's own file, run by otter's runner).

Here with the seeds as written; tests/test_key_independence.py grades every variant under 20
grading keys (hidden inputs differ per key, see ``labkit.checks.core``)."""

from __future__ import annotations

import pytest

from . import marks
from .conftest import RELEASED, answer_bank, answer_variants, grade_source, run_released_tests

def _cases(kind: str) -> list:
    cases = []
    for stem in RELEASED:
        wrong, correct = answer_variants(stem)
        for question, variants in (wrong if kind == "wrong" else correct).items():
            for variant, source in variants.items():
                cases.append(pytest.param(stem, question, source, id=f"{stem[:3]}-{question}-{variant}"))
    return cases


def _grade(stem: str, question: str, source: str, tmp_path) -> tuple[float, float, str]:
    tests = run_released_tests(stem, question, source, tmp_path)
    return tests.score, tests.possible, tests


@pytest.mark.parametrize("stem, question, source", _cases("wrong"))
def test_wrong_answer_loses_points(stem, question, source, tmp_path):
    score, possible, tests = _grade(stem, question, source, tmp_path)
    assert score < possible, f"a wrong answer kept full marks ({score}/{possible})"
    # It fails a check or raises (it does not merely lose points some other way).
    assert {outcome.kind for outcome in tests.failed} & {"check", "error", "stopped"}


@pytest.mark.parametrize("stem, question, source", _cases("correct"))
def test_correct_alternative_keeps_full_marks(stem, question, source, tmp_path):
    """With the seeds as written (as a plain otter run grades); under 20 grading keys, see
    tests/test_key_independence.py."""
    score, possible, tests = _grade(stem, question, source, tmp_path)
    assert score == possible, f"a correct alternative lost points:\n{tests.messages}"


def _words(stem: str) -> dict:
    return answer_bank(stem)["WORDS"]


@pytest.mark.parametrize("stem", RELEASED)
def test_every_wrong_answer_has_the_words_a_ta_would_use(stem):
    wrong, _ = answer_variants(stem)
    words = _words(stem)
    missing = [f"{question}/{variant}" for question, variants in wrong.items()
               for variant in variants if not words.get(question, {}).get(variant)]
    assert not missing, f"{stem}: no WORDS for {missing}"


@pytest.mark.parametrize("stem, question, source", _cases("wrong"))
def test_wrong_answer_feedback_names_the_mistake(stem, question, source, tmp_path, request):
    """The feedback page's text for a wrong answer's failed tests holds the words a TA would use
    for its mistake (the axis, the missing shift, the in-place write...)."""
    variant = request.node.callspec.id.split(f"{stem[:3]}-{question}-", 1)[1]
    words = _words(stem).get(question, {}).get(variant, ())
    _, _, shown = grade_source(stem, question, source, tmp_path)
    text = "\n".join(shown).lower()
    absent = [word for word in words if word.lower() not in text]
    assert not absent, f"the feedback lacks {absent}:\n" + "\n".join(shown)


def test_every_graded_question_has_wrong_answers(assignments):
    for assignment in assignments:
        wrong, _ = answer_variants(assignment.stem)
        functions = {q.name for q in assignment.graded} - {"diabetes_theta"}
        missing = functions - set(wrong)
        assert not missing, f"{assignment.stem}: no wrong answers for {sorted(missing)}"


def _exact_cases() -> list:
    cases = []
    for stem in RELEASED:
        bank = answer_bank(stem)
        for question, variants in bank.get("FAILS", {}).items():
            for variant, failing in variants.items():
                cases.append(pytest.param(stem, question, bank["WRONG"][question][variant],
                                          failing, id=f"{stem[:3]}-{question}-{variant}"))
    return cases


@pytest.mark.parametrize("stem, question, source, failing", _exact_cases())
def test_a_mistake_of_one_property_costs_that_property_alone(stem, question, source, failing,
                                                             tmp_path):
    tests = run_released_tests(stem, question, source, tmp_path)
    failed = {marks.test_name(case, question)
              for case, outcome in zip(tests.test_file.test_cases, tests.outcomes)
              if not outcome.passed}
    assert failed == failing
