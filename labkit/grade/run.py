"""Grade one notebook with one released autograder: the single place where student code runs.

Each notebook is graded by ``otter run`` in its own process group, in a fresh temporary folder,
under a wall-clock limit; a notebook that never finishes is killed with everything it started.
Otter's Gradescope-style ``results.json`` is read back into a ``NotebookResult``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from .. import notebooks
from .autograders import Assignment

#: The entry otter adds for the public tests, already counted inside each question.
_PUBLIC_ENTRY = "Public Tests"


@dataclass
class NotebookResult:
    assignment: str
    #: question -> points earned
    scores: dict[str, float] = field(default_factory=dict)
    #: question -> otter's output for the question (failed checks and their messages)
    outputs: dict[str, str] = field(default_factory=dict)
    #: what went wrong with the notebook as a whole, in words (None when it was graded)
    problem: str | None = None


def _prepare(notebook: Path, folder: Path, stem: str) -> Path | str:
    """Copy the notebook under its assignment's name with the standard kernel; or say why not."""
    try:
        nb = notebooks.read(notebook)
    except Exception as error:  # not JSON, not a notebook, truncated...
        return f"not a readable notebook ({type(error).__name__})"
    notebooks.normalise_kernelspec(nb)
    target = folder / f"{stem}.ipynb"
    notebooks.write(nb, target)
    return target


def grade_notebook(notebook: Path, assignment: Assignment, *, timeout: float) -> NotebookResult:
    result = NotebookResult(assignment=assignment.stem)
    with tempfile.TemporaryDirectory(prefix="labkit-grade-") as tmp:
        folder = Path(tmp)
        prepared = _prepare(notebook, folder, assignment.stem)
        if isinstance(prepared, str):
            result.problem = prepared
            return result
        out = folder / "out"
        out.mkdir()
        command = [
            sys.executable, "-m", "otter", "run", "--no-logo",
            "-a", str(assignment.zip_path), "-o", str(out), str(prepared),
        ]
        process = subprocess.Popen(
            command, cwd=folder, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            start_new_session=True, text=True, errors="replace",
        )
        try:
            log, _ = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
            result.problem = f"grading took longer than {timeout:.0f} s and was stopped"
            return result
        results_file = out / "results.json"
        if not results_file.is_file():
            last = (log or "").strip().splitlines()[-1:] or ["no output"]
            result.problem = f"the notebook could not be graded ({last[0][:200]})"
            return result
        _read_results(json.loads(results_file.read_text("utf-8")), result)
    return result


def _read_results(results: dict, result: NotebookResult) -> None:
    for test in results.get("tests", []):
        name = test.get("name")
        if name == _PUBLIC_ENTRY or name is None:
            continue
        result.scores[name] = float(test.get("score") or 0.0)
        result.outputs[name] = test.get("output", "")
