"""Each typical wrong answer loses points and each correct alternative keeps full marks, judged
by the released tests of its question (the autograder zip's own file, run by otter's runner).

Correct alternatives are graded under several grading keys (hidden inputs differ per key, see
``labkit.checks.core``): a correct answer must keep full marks whatever the inputs."""

from __future__ import annotations

import importlib
import math

import pytest
import torch
import torch.nn.functional as F
from otter.test_files import ExceptionTestFile

from labkit.checks import core

from .conftest import RELEASED, answer_variants, released_test_source

#: No key (the seeds as written), then four keys as the grader derives them from notebooks.
KEYS = [None, *(f"ci key {i}".encode() for i in range(1, 5))]


def _cases(kind: str) -> list:
    cases = []
    for stem in RELEASED:
        wrong, correct = answer_variants(stem)
        for question, variants in (wrong if kind == "wrong" else correct).items():
            for variant, source in variants.items():
                cases.append(pytest.param(stem, question, source, id=f"{stem[:3]}-{question}-{variant}"))
    return cases


def _run(stem: str, question: str, source: str, tmp_path,
         key: bytes | None = None) -> ExceptionTestFile:
    test_file = tmp_path / f"{question}.py"
    test_file.write_text(released_test_source(stem, question))
    tests = ExceptionTestFile.from_file(str(test_file))
    env = {"torch": torch, "math": math, "F": F}
    exec(compile(source, f"<{question} answer>", "exec"), env)
    with core.keyed(key):
        tests.run(env)
    return tests


def _grade(stem: str, question: str, source: str, tmp_path,
           key: bytes | None = None) -> tuple[float, float, str]:
    tests = _run(stem, question, source, tmp_path, key)
    messages = "\n".join(r.message for r in tests.test_case_results if not r.passed)
    return tests.score, tests.possible, messages


def _failed_tests(tests: ExceptionTestFile, question: str) -> set[str]:
    """The failed hidden tests of a graded question, by their names after the question's."""
    prefix = f"test_{question}_"
    return {r.test_case.body.test_func.__name__.removeprefix(prefix)
            for r in tests.test_case_results if not r.passed}


@pytest.mark.parametrize("stem, question, source", _cases("wrong"))
def test_wrong_answer_loses_points(stem, question, source, tmp_path):
    score, possible, messages = _grade(stem, question, source, tmp_path)
    assert score < possible, f"a wrong answer kept full marks ({score}/{possible})"
    assert "CheckFailed" in messages or "Error" in messages


@pytest.mark.parametrize("key", KEYS, ids=["seeds-as-written", *(f"key{i}" for i in range(1, 5))])
@pytest.mark.parametrize("stem, question, source", _cases("correct"))
def test_correct_alternative_keeps_full_marks(stem, question, source, key, tmp_path):
    score, possible, messages = _grade(stem, question, source, tmp_path, key)
    assert score == possible, f"a correct alternative lost points under key {key!r}:\n{messages}"


def test_every_graded_question_has_wrong_answers(assignments):
    for assignment in assignments:
        wrong, _ = answer_variants(assignment.stem)
        functions = {q for q, _ in assignment.questions} - {"diabetes_theta"}
        missing = functions - set(wrong)
        assert not missing, f"{assignment.stem}: no wrong answers for {sorted(missing)}"


def _exact_cases() -> list:
    cases = []
    for stem in RELEASED:
        module = importlib.import_module(f"tests.answers.a{stem[:3]}")
        for question, variants in getattr(module, "FAILS", {}).items():
            for variant, failing in variants.items():
                cases.append(pytest.param(stem, question, module.WRONG[question][variant],
                                          failing, id=f"{stem[:3]}-{question}-{variant}"))
    return cases


@pytest.mark.parametrize("stem, question, source, failing", _exact_cases())
def test_a_mistake_of_one_property_costs_that_property_alone(stem, question, source, failing,
                                                             tmp_path):
    tests = _run(stem, question, source, tmp_path)
    assert _failed_tests(tests, question) == failing
