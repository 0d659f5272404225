"""Grading a class with each amplification file completes with every row, the report and the
pages, inside a 2 GB memory cgroup (cgroup v1, as root; skipped elsewhere)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from labkit import paths
from labkit.outputs import gradebook

from .test_intake import STEM, _bomb

pytestmark = pytest.mark.slow

LIMIT = 2 << 30


def _own_memory_cgroup() -> Path | None:
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        if "memory" in controllers.split(","):
            folder = Path("/sys/fs/cgroup/memory") / path.lstrip("/")
            return folder if (folder / "memory.limit_in_bytes").exists() else None
    return None


@pytest.fixture
def memory_cgroup():
    """A memory cgroup of 2 GiB (memory and swap) beneath this process's own, removed after."""
    parent = _own_memory_cgroup()
    if os.geteuid() != 0 or parent is None:
        pytest.skip("needs root and a cgroup v1 memory hierarchy")
    group = parent / f"labkit-intake-{os.getpid()}"
    group.mkdir()
    try:
        (group / "memory.limit_in_bytes").write_text(str(LIMIT))
        if (group / "memory.memsw.limit_in_bytes").exists():
            (group / "memory.memsw.limit_in_bytes").write_text(str(LIMIT))
        yield group
    finally:
        for _ in range(50):  # the grader's processes are gone once it returns; wait if not yet
            if not (group / "cgroup.procs").read_text().split():
                break
            time.sleep(0.2)
        for pid in (group / "cgroup.procs").read_text().split():  # only what this test started
            os.kill(int(pid), signal.SIGKILL)
        for _ in range(50):
            try:
                group.rmdir()
                break
            except OSError:
                time.sleep(0.2)


def _amplifying_class(submissions: Path) -> None:
    (submissions / "solution").mkdir(parents=True)
    shutil.copy(paths.solution_notebook(STEM), submissions / "solution" / f"{STEM}.ipynb")
    _bomb(submissions / "bomb.zip")
    (submissions / "linked").mkdir()
    (submissions / "linked" / f"{STEM}.ipynb").symlink_to(
        submissions / "solution" / f"{STEM}.ipynb")
    (submissions / "dup").mkdir()
    shutil.copy(paths.solution_notebook(STEM), submissions / "dup" / f"{STEM}.ipynb")
    shutil.copy(paths.solution_notebook(STEM), submissions / "dup.ipynb")
    shutil.copy(paths.student_notebook(STEM), submissions / "=2+5.ipynb")


def test_amplifying_submissions_are_graded_within_a_2_gb_cgroup(tmp_path, memory_cgroup, assignments):
    submissions, out = tmp_path / "submissions", tmp_path / "out"
    _amplifying_class(submissions)
    command = (f'echo $$ > {memory_cgroup}/cgroup.procs; exec "$0" -m labkit grade '
               f'--submissions {submissions} --out {out} --workers 1')
    result = subprocess.run(["sh", "-c", command, sys.executable], cwd=paths.ROOT,
                            capture_output=True, text=True, timeout=900)
    peak = int((memory_cgroup / "memory.max_usage_in_bytes").read_text())
    print(f"peak memory of the grading cgroup: {peak >> 20} MB")
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    assert int((memory_cgroup / "memory.failcnt").read_text()) == 0
    rows = {row["student"]: row for row in gradebook.read_csv(out / "grades.csv")}
    assert sorted(rows) == ["=2+5", "bomb", "dup", "linked", "solution"]
    assert "over the budget of 200 MB of notebooks for one submission" in rows["bomb"]["notes"]
    assert "symbolic link" in rows["linked"]["notes"]
    assert "dup and dup.ipynb: 2 submissions for the one student id 'dup'" in rows["dup"]["notes"]
    assert "\n'=2+5," in (out / "grades.csv").read_text()
    [lab] = [a for a in assignments if a.stem == STEM]
    for question in lab.graded:
        assert float(rows["solution"][f"{STEM}/{question.name}"]) == question.points, question
    for student in ("bomb", "dup", "linked"):
        assert float(rows[student]["total"]) == 0
    assert (out / "report.html").is_file()
    assert len(list((out / "feedback").glob("*.html"))) >= 5
    if any(a.written for a in assignments):
        assert list((out / "manual").glob("*.html"))
