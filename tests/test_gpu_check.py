"""tools/gpu-check, the one command that proves grading on CUDA: here, without a GPU, it runs the
same way, says that the CUDA checks were skipped, and still grades and compares both passes."""

from __future__ import annotations

import csv
import subprocess

import pytest
import torch

from labkit import gpucheck, paths


@pytest.mark.slow
@pytest.mark.skipif(torch.cuda.is_available(), reason="on a GPU machine, run tools/gpu-check itself")
def test_gpu_check_without_a_gpu_says_the_cuda_checks_were_skipped_and_compares_the_grades(tmp_path):
    out = tmp_path / "gpu-check"
    result = subprocess.run(
        ["tools/gpu-check", "--quick", "--assignment", "1_1_linear_regression", "--out", str(out)],
        cwd=paths.ROOT, capture_output=True, text=True, timeout=900,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "no CUDA GPU" in output
    assert "CUDA checks skipped: this machine has no CUDA GPU" in output
    assert "0 passed, 0 failed" in output  # every cuda-marked test skipped, none failed
    assert "grades (" in output and "2 submissions, 0 problem(s)" in output
    assert output.rstrip().endswith("gpu-check: OK (CPU only: the CUDA checks were skipped)")

    # Both passes graded through the real path; the solution and the answers only a GPU can
    # catch keep full marks without a GPU.
    full = gpucheck.read_points(out / "cpu" / "questions.csv")
    for name in ("cpu", "gpu"):
        with open(out / name / "grades.csv", newline="") as stream:
            rows = {row["student"]: row for row in csv.DictReader(stream)}
        assert set(rows) == {"solution-1_1_linear_regression", "gpu-only-1_1_linear_regression"}
        for row in rows.values():
            for column, points in full.items():
                if column.startswith("1_1_linear_regression/"):
                    assert float(row[column]) == points, (name, row["student"], column)


def _book(points: dict[str, dict[str, str]]) -> gpucheck.Gradebook:
    return gpucheck.Gradebook(points=points, notes={student: "" for student in points})


FULL = {"1_1_linear_regression/as_column": 4.0, "1_1_linear_regression/pinv_svd": 5.0}
ANSWERS = {"1_1_linear_regression": {"as_column": "def as_column(y): ..."}}
SOLUTION = "solution-1_1_linear_regression"
CANARY = "gpu-only-1_1_linear_regression"


def _row(as_column: str, pinv: str = "5") -> dict[str, str]:
    return {"1_1_linear_regression/as_column": as_column, "1_1_linear_regression/pinv_svd": pinv,
            "total": str(float(as_column) + float(pinv))}


def test_a_grade_that_differs_between_the_passes_is_a_problem():
    cpu = _book({SOLUTION: _row("4"), "someone": _row("2")})
    gpu = _book({SOLUTION: _row("4"), "someone": _row("1")})
    problems, _ = gpucheck.compare(cpu, gpu, FULL, ANSWERS, cuda=True)
    assert any("someone 1_1_linear_regression/as_column: 2 without the GPU, 1 with it" in p
               for p in problems)


def test_a_solution_below_full_marks_on_the_gpu_is_a_problem():
    cpu = _book({SOLUTION: _row("4")})
    gpu = _book({SOLUTION: _row("4", pinv="4")})
    problems, _ = gpucheck.compare(cpu, gpu, FULL, ANSWERS, cuda=True)
    assert any("the solution of 1_1_linear_regression/pinv_svd got 4/5 with the GPU" in p
               for p in problems)


def test_an_answer_only_a_gpu_catches_must_lose_points_with_the_gpu_and_only_there():
    # Loses points with the GPU, keeps them without: expected, and reported as such.
    problems, losses = gpucheck.compare(_book({CANARY: _row("4")}), _book({CANARY: _row("1")}),
                                        FULL, ANSWERS, cuda=True)
    assert problems == [] and losses == [
        "1_1_linear_regression/as_column: 4 without the GPU, 1 with it"]
    # Keeps full marks with the GPU: the GPU pass did not judge on CUDA.
    problems, _ = gpucheck.compare(_book({CANARY: _row("4")}), _book({CANARY: _row("4")}),
                                   FULL, ANSWERS, cuda=True)
    assert any("did not judge on cuda" in p for p in problems)
    # Loses points without a GPU: a CPU grader deducted what it cannot judge.
    problems, _ = gpucheck.compare(_book({CANARY: _row("3")}), _book({CANARY: _row("3")}),
                                   FULL, ANSWERS, cuda=False)
    assert any("a CPU grader must not deduct" in p for p in problems)
    # Without a GPU, equal grades in both passes are what is expected.
    problems, losses = gpucheck.compare(_book({CANARY: _row("4")}), _book({CANARY: _row("4")}),
                                        FULL, ANSWERS, cuda=False)
    assert problems == [] and losses == []
