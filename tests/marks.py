"""Marks of the answer banks' variants, per hidden test: what the key calibration
(``assignments/lab1/calibrate_keys.py``, ``tests/test_key_independence.py``) and the load test
(``tests/test_load_independence.py``) compare between grading keys and between a quiet and a busy
machine.

A variant's marks are the points it earns on each hidden test of its question, graded in-process
with the released tests of the question (the autograder zip's own file, run by the grader's runner), as
``tests/test_answer_variants.py`` grades them. Two gradings give the same marks when every hidden
test gives the same points: the same total and the same failing tests.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from .conftest import RELEASED, answer_bank, answer_variants, run_released_tests

#: Per hidden test, in the test file's order, its name, the points earned and the points it is
#: worth: ``(("example", 0.0, 0.0), ("values", 0.0, 1.0), ("dtypes", 1.0, 1.0), ...)``.
Marks = tuple[tuple[str, float, float], ...]


@dataclass(frozen=True)
class Variant:
    """One answer of a bank: a WRONG or CORRECT way to write one question of one assignment."""

    stem: str
    question: str
    kind: str  # "wrong", "correct" or "gpu-only"
    name: str
    source: str

    @property
    def label(self) -> str:
        return f"{self.stem[:3]} {self.question}/{self.name} ({self.kind})"


def bank(stems: Iterable[str] = RELEASED) -> list[Variant]:
    """Every WRONG and CORRECT variant of the answer banks of ``stems``, and the answers wrong
    only on a GPU (each bank's ``GPU_ONLY``: full marks on the CPU, fewer on CUDA, the same
    under every key and load either way)."""
    found = []
    for stem in stems:
        wrong, correct = answer_variants(stem)
        gpu_only = answer_bank(stem).get("GPU_ONLY", {})
        for kind, questions in (("wrong", wrong), ("correct", correct), ("gpu-only", gpu_only)):
            for question, sources in questions.items():
                found.extend(Variant(stem, question, kind, name, source)
                             for name, source in sources.items())
    return found


def grade(variant: Variant, key: bytes | None, folder: Path) -> Marks:
    """The points ``variant`` earns on each hidden test of its question under ``key``."""
    tests = run_released_tests(variant.stem, variant.question, variant.source, folder, key)
    return tuple((test_name(case, variant.question),
                  outcome.possible if outcome.passed else 0.0, outcome.possible)
                 for case, outcome in zip(tests.test_file.test_cases, tests.outcomes))


def test_name(case: object, question: str) -> str:
    """A hidden test by what it checks (``large_logits``), from its function's name after the
    question's, else otter's numbered name."""
    function = getattr(getattr(case, "body", None), "test_func", None)
    name = getattr(function, "__name__", "")
    return name.removeprefix(f"test_{question}_") or case.name


def grade_all(variants: Sequence[Variant], keys: Sequence[bytes | None]) -> dict[Variant, dict]:
    """Every variant's marks under every key: ``{variant: {key: marks}}``."""
    graded: dict[Variant, dict] = {}
    with tempfile.TemporaryDirectory() as folder:
        for variant in variants:
            graded[variant] = {key: grade(variant, key, Path(folder)) for key in keys}
    return graded


def total(marks: Marks) -> float:
    return sum(earned for _, earned, _ in marks)


def possible(marks: Marks) -> float:
    return sum(points for _, _, points in marks)


def failing(marks: Marks) -> list[str]:
    """The hidden tests that gave fewer points than they are worth."""
    return [name for name, earned, points in marks if earned < points]


def describe(marks: Marks) -> str:
    """``3/5 (failing values, unmodified)``: the total and what failed, for a message."""
    lost = failing(marks)
    return f"{total(marks):g}/{possible(marks):g}" + (f" (failing {', '.join(lost)})" if lost else "")


def key_differences(graded: dict[Variant, dict]) -> list[str]:
    """One line per variant whose marks differ between keys, naming each distinct outcome and the
    keys that gave it."""
    lines = []
    for variant, by_key in graded.items():
        outcomes: dict[Marks, list] = {}
        for key, marks in by_key.items():
            outcomes.setdefault(marks, []).append(key)
        if len(outcomes) > 1:
            parts = [f"{describe(m)} under {len(ks)} keys (e.g. {ks[0]!r})"
                     for m, ks in outcomes.items()]
            lines.append(f"{variant.label}: " + "; ".join(parts))
    return lines


def full_marks_lost(graded: dict[Variant, dict]) -> list[str]:
    """One line per CORRECT variant (and, without CUDA, answer wrong only on a GPU) that lost a
    point under some key."""
    kept = {"correct"} if torch.cuda.is_available() else {"correct", "gpu-only"}
    return [f"{v.label} under key {key!r}: {describe(m)}"
            for v, by_key in graded.items() if v.kind in kept
            for key, m in by_key.items() if total(m) < possible(m)]


def spread(graded: dict[Variant, dict]) -> list[str]:
    """Per variant whose total varies between keys: its lowest and highest total."""
    return [f"{v.label}: {min(map(total, by_key.values())):g} .. {max(map(total, by_key.values())):g}"
            f" of {possible(next(iter(by_key.values()))):g}"
            for v, by_key in graded.items() if len({total(m) for m in by_key.values()}) > 1]


def keys(count: int, salt: str = "calibration") -> list[bytes]:
    """``count`` grading keys, as the grader derives one per notebook (bytes)."""
    return [f"{salt} key {i}".encode() for i in range(count)]
