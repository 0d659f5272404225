"""The GPU half of the hidden tests: every check runs on CUDA where there is one, the reference
solutions keep full marks there, and answers that only a GPU can catch lose points there and only
there.

Tests marked ``cuda`` skip on machines without a GPU (CI, this project's machines); `tools/gpu-check`
runs them on a GPU machine. Hidden cases come from the released autograder zips and the graded
functions from the solution notebooks (``tests/device_census.py``), so new checks are covered
without editing this file.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

from labkit import paths

from .device_census import (
    gpu_only_answers, grade_answer, hidden_cases, run_hidden_case, solution_functions,
)

CUDA = torch.cuda.is_available()
NO_GPU_REASON = "needs a CUDA GPU (torch.cuda.is_available() is False on this machine)"
ON_CUDA = [pytest.mark.cuda, pytest.mark.skipif(not CUDA, reason=NO_GPU_REASON)]

#: Cases that call a graded function; the others read the notebook's variables (``env``), which
#: hold what the notebook computed on the CPU: no input of theirs goes to a device.
FUNCTION_CASES = [case for case in hidden_cases() if not case.reads_notebook_variables]


def test_the_census_has_a_reference_for_every_graded_function():
    assert FUNCTION_CASES, "no hidden test case found in the released autograders"
    for case in FUNCTION_CASES:
        missing = set(case.takes) - set(solution_functions(case.stem))
        assert not missing, f"{case.id}: the solution notebook defines no {sorted(missing)}"


@pytest.mark.parametrize("case", FUNCTION_CASES, ids=[c.id for c in FUNCTION_CASES])
@pytest.mark.cuda
@pytest.mark.skipif(not CUDA, reason=NO_GPU_REASON)
def test_every_hidden_check_runs_on_cuda_and_passes_the_reference_solution(case):
    devices = run_hidden_case(case, solution_functions(case.stem))
    assert "cuda" in devices, (
        f"{case.id} ran on {sorted(devices)} only: it never gives the function CUDA tensors "
        "(the check does not run on every device, e.g. through core.on_every_device)"
    )


@pytest.mark.skipif(CUDA, reason="this machine has a GPU: the cuda-marked census covers it")
def test_without_a_gpu_every_hidden_check_passes_the_reference_solution_on_the_cpu():
    """The census's own machinery, exercised where CI runs: every case passes, and the devices it
    records are the CPU's (meta's alone for the devices checks), never CUDA."""
    seen: set[str] = set()
    for case in FUNCTION_CASES:
        devices = run_hidden_case(case, solution_functions(case.stem))
        # A devices check judges placement only: without a GPU, by meta propagation alone.
        needed = {"meta"} if case.id.endswith("_devices") else {"cpu"}
        assert needed <= devices <= {"cpu", "meta"}, f"{case.id}: {sorted(devices)}"
        seen |= devices
    assert seen == {"cpu", "meta"}


GPU_ONLY = gpu_only_answers()
GPU_ONLY_IDS = [f"{stem[:3]}-{question}-{variant}" for stem, question, variant, _ in GPU_ONLY]


@pytest.mark.parametrize("stem, question, variant, source", GPU_ONLY, ids=GPU_ONLY_IDS)
@pytest.mark.cuda
@pytest.mark.skipif(not CUDA, reason=NO_GPU_REASON)
def test_an_answer_only_a_gpu_catches_loses_its_devices_point_on_cuda(stem, question, variant,
                                                                      source):
    graded = grade_answer(stem, question, source)
    assert graded.score < graded.possible, f"kept full marks ({graded.score}/{graded.possible})"
    assert any("devices" in name for name in graded.failed), (
        f"the devices case passed on cuda; failed: {graded.failed}")


def test_answers_only_a_gpu_catches_keep_full_marks_without_a_gpu():
    """Graded in a process that sees no GPU (also on a GPU machine): meta cannot decide these,
    so a CPU-only grader must not deduct."""
    result = subprocess.run(
        [sys.executable, "-m", "tests.device_census"], cwd=paths.ROOT, capture_output=True,
        text=True, timeout=600, env={**os.environ, "CUDA_VISIBLE_DEVICES": ""},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["cuda_available"] is False
    assert len(report["answers"]) == len(GPU_ONLY)
    for answer in report["answers"]:
        assert answer["score"] == answer["possible"], (
            f"{answer['stem']} {answer['question']} {answer['variant']} lost points without a "
            f"GPU: {answer['messages']}")
