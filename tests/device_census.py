"""Run the released hidden checks on plain functions and record the devices their inputs were on.

The released autograder zips are the source of truth for what is checked: every hidden test case
is found in them (not listed here), so cases added to ``labkit/checks`` and the masters are
covered without editing this file. The reference solutions are the graded functions defined in
the executed solution notebooks (``solutions/<lab>/<stem>/<stem>.ipynb``), taken as the notebook
defines them. A recorder wraps each function and notes the device of every tensor it receives,
so a test can say that a check really ran on ``cuda`` rather than assume it.

Run as ``python -m tests.device_census``, it grades the ``GPU_ONLY`` answers of the answer banks
with the released tests and prints the results as JSON (used to grade them in a process that
sees no GPU).
"""

from __future__ import annotations

import ast
import functools
import inspect
import json
import math
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from otter.test_files import ExceptionTestFile

from labkit import paths

from labkit.course import labs

#: The lab whose graded functions the census calls (its hidden tests take tensors and functions;
#: Lab 2's take classes and run in tests/test_lab2_content.py).
LAB = "lab1"


@dataclass(frozen=True)
class HiddenCase:
    """One hidden test case of a released autograder."""

    stem: str
    question: str
    #: otter's name of the case (``<question> - <index>``)
    name: str
    #: the name of the case's function in the test file, e.g. ``test_pinv_svd_devices``
    function: str
    #: The names the case's function takes: graded functions, or ``env`` (the notebook's globals).
    takes: tuple[str, ...]

    @property
    def id(self) -> str:
        return f"{self.stem[:3]}/{self.function}"

    @property
    def reads_notebook_variables(self) -> bool:
        return "env" in self.takes


def released_test_source(stem: str, question: str) -> str:
    with zipfile.ZipFile(paths.autograder_zip(stem)) as archive:
        return archive.read(f"tests/{question}.py").decode("utf-8")


def load_test_file(source: str, question: str) -> ExceptionTestFile:
    """A test file loaded by otter, as the grader loads it (a fresh one each call)."""
    with tempfile.TemporaryDirectory(prefix="labkit-census-") as folder:
        path = Path(folder) / f"{question}.py"
        path.write_text(source, "utf-8")
        return ExceptionTestFile.from_file(str(path))


@functools.lru_cache(maxsize=None)
def released_test_file(stem: str, question: str) -> ExceptionTestFile:
    """The released test file of a question (loaded once; its cases are run one by one)."""
    return load_test_file(released_test_source(stem, question), question)


def released_questions(stem: str) -> list[str]:
    with zipfile.ZipFile(paths.autograder_zip(stem)) as archive:
        return sorted(Path(n).stem for n in archive.namelist()
                      if n.startswith("tests/") and n.endswith(".py"))


def hidden_cases() -> list[HiddenCase]:
    """Every hidden test case of every released assignment, in a stable order."""
    cases = []
    for stem in paths.assignment_stems(LAB):
        for question in released_questions(stem):
            for case in released_test_file(stem, question).test_cases:
                if case.hidden:
                    function = case.body.test_func
                    takes = tuple(inspect.signature(function).parameters)
                    cases.append(HiddenCase(stem, question, case.name, function.__name__, takes))
    return cases


def answer_namespace() -> dict[str, Any]:
    """What answer sources and solution cells may assume: torch, math and F."""
    return {"torch": torch, "math": math, "F": F}


@functools.lru_cache(maxsize=None)
def solution_functions(stem: str) -> dict[str, Callable[..., Any]]:
    """The functions the solution notebook defines, with the imports they rely on.

    Only top-level ``def`` and ``import`` statements of the code cells are run: the cells' other
    statements (loading data, training, printing) are not needed to call the functions.
    """
    notebook = json.loads(paths.solution_notebook(stem).read_text("utf-8"))
    namespace = answer_namespace()
    for cell in notebook["cells"]:
        if cell["cell_type"] != "code":
            continue
        source = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
        try:
            tree = ast.parse(source)
        except SyntaxError:  # IPython magics: no graded function lives in such a cell
            continue
        kept = [node for node in tree.body
                if isinstance(node, (ast.FunctionDef, ast.Import, ast.ImportFrom))]
        exec(compile(ast.Module(body=kept, type_ignores=[]), f"<{stem} solution>", "exec"),
             namespace)
    return {name: value for name, value in namespace.items()
            if inspect.isfunction(value) and value.__code__.co_filename == f"<{stem} solution>"}


@dataclass
class DeviceRecorder:
    """Calls a function and records the device type of every tensor argument it is given."""

    fn: Callable[..., Any]
    devices: set[str] = field(default_factory=set)

    def __call__(self, *args: Any) -> Any:
        for arg in args:
            if isinstance(arg, torch.Tensor):
                self.devices.add(arg.device.type)
        return self.fn(*args)


def run_hidden_case(case: HiddenCase, functions: dict[str, Callable[..., Any]]) -> set[str]:
    """Run one released hidden case on ``functions``; return the devices its calls reached.

    Raises what the check raises (``CheckFailed`` when a function fails it), so a failing case
    shows the student's message and its traceback.
    """
    test_file = released_test_file(case.stem, case.question)
    (test_case,) = [c for c in test_file.test_cases if c.name == case.name]
    recorders = {name: DeviceRecorder(fn) for name, fn in functions.items()}
    test_case.body.call_func(dict(recorders))
    return set().union(*(r.devices for r in recorders.values()))


@dataclass
class GradedAnswer:
    score: float
    possible: float
    #: the functions of the failed cases, e.g. ``test_as_column_devices``
    failed: list[str]
    messages: list[str]


def grade_answer(stem: str, question: str, source: str) -> GradedAnswer:
    """Grade one answer's source with the released test file of its question, case by case as
    the grader grades a notebook (``labkit.grading.outcomes``)."""
    from labkit.grading import outcomes

    tests = load_test_file(released_test_source(stem, question), question)
    env = answer_namespace()
    exec(compile(source, f"<{question} answer>", "exec"), env)
    score, graded = outcomes.run_question(tests, env)
    failed = [(c.body.test_func.__name__, outcome.message)
              for c, outcome in zip(tests.test_cases, graded) if not outcome.passed]
    return GradedAnswer(float(score), float(tests.possible), [n for n, _ in failed],
                        [m for _, m in failed])


def gpu_only_answers() -> list[tuple[str, str, str, str]]:
    """(stem, question, variant, source) of every answer that only a GPU can catch."""
    return [(stem, question, variant, source)
            for stem in paths.assignment_stems(LAB)
            for questions in [labs.assignment(stem).answer_bank().get("GPU_ONLY", {})]
            for question, variants in questions.items()
            for variant, source in variants.items()]


def main() -> None:
    results = {"cuda_available": torch.cuda.is_available(), "answers": []}
    for stem, question, variant, source in gpu_only_answers():
        graded = grade_answer(stem, question, source)
        results["answers"].append({"stem": stem, "question": question, "variant": variant,
                                   **graded.__dict__})
    print(json.dumps(results))


if __name__ == "__main__":
    main()
