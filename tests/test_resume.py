"""Re-running on the same OUT grades only what changed; an interrupted run loses nothing."""

from __future__ import annotations

import csv
import json
import shutil
import signal
import subprocess
import sys
import time

import nbformat
import psutil
import pytest

from labkit import paths

pytestmark = pytest.mark.slow

STEM = "1_1_linear_regression"


def _grade(submissions, out, *extra) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "labkit", "grade", "--submissions", str(submissions),
         "--out", str(out), "--workers", "1", *extra],
        capture_output=True, text=True, check=True)


def _rows(out) -> dict[str, dict[str, str]]:
    with open(out / "grades.csv", newline="") as f:
        return {row["student"]: row for row in csv.DictReader(f)}


def test_rerun_grades_only_new_or_changed_submissions(tmp_path):
    submissions, out = tmp_path / "submissions", tmp_path / "out"
    submissions.mkdir()
    shutil.copy(paths.solution_notebook(STEM), submissions / "ada.ipynb")
    shutil.copy(paths.student_notebook(STEM), submissions / "bob.ipynb")
    first = _grade(submissions, out)
    assert "2 new or changed, 0 unchanged" in first.stdout
    assert float(_rows(out)["bob"]["total"]) == 0

    again = _grade(submissions, out)
    assert "0 new or changed, 2 unchanged" in again.stdout

    shutil.copy(paths.solution_notebook(STEM), submissions / "bob.ipynb")  # bob resubmits
    shutil.copy(paths.student_notebook(STEM), submissions / "cy.ipynb")    # cy is new
    third = _grade(submissions, out)
    assert "2 new or changed, 1 unchanged" in third.stdout
    rows = _rows(out)
    assert rows["bob"]["total"] == rows["ada"]["total"] and float(rows["ada"]["total"]) > 0
    assert float(rows["cy"]["total"]) == 0


def test_an_interrupted_run_keeps_what_it_graded_and_never_a_half_written_file(tmp_path):
    submissions, out = tmp_path / "submissions", tmp_path / "out"
    submissions.mkdir()
    shutil.copy(paths.solution_notebook(STEM), submissions / "a_first.ipynb")
    slow = nbformat.read(paths.solution_notebook(STEM), 4)
    slow.cells.insert(2, nbformat.v4.new_code_cell("import time\ntime.sleep(600)"))
    nbformat.write(slow, submissions / "b_slow.ipynb")

    process = subprocess.Popen(
        [sys.executable, "-m", "labkit", "grade", "--submissions", str(submissions),
         "--out", str(out), "--workers", "1", "--cell-timeout", "20"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.monotonic() + 300
    while not (out / "records").is_dir() or not list((out / "records").glob("*.json")):
        assert process.poll() is None and time.monotonic() < deadline, "no student was graded"
        time.sleep(0.5)
    helpers = psutil.Process(process.pid).children(recursive=True)
    assert helpers, "the grader started no worker"
    process.send_signal(signal.SIGKILL)
    process.wait()
    # Workers, their grading interpreters and the notebook processes all end with the grader.
    gone, alive = psutil.wait_procs(helpers, timeout=30)
    assert not [p for p in alive if p.status() != psutil.STATUS_ZOMBIE], alive

    # The class files are written once, when a run ends: a killed run leaves none (so none
    # half-written), and the student it graded is recorded whole.
    assert not (out / "grades.csv").exists()
    recorded = [json.loads(path.read_text("utf-8")) for path in (out / "records").glob("*.json")]
    assert [record["entry"] for record in recorded] == ["a_first.ipynb"]
    graded_total = f"{sum(recorded[0]['row']['points'].values()):g}"

    resumed = _grade(submissions, out, "--cell-timeout", "20")
    assert "1 new or changed, 1 unchanged" in resumed.stdout
    rows = _rows(out)
    assert rows["a_first"]["total"] == graded_total
    assert "ran longer than 20 s" in rows["b_slow"]["notes"]


def _grader_child(grader: psutil.Process, module: str) -> psutil.Process | None:
    for child in grader.children():
        try:
            if module in " ".join(child.cmdline()):
                return child
        except psutil.NoSuchProcess:
            continue
    return None


def _worker_of(grader: psutil.Process) -> psutil.Process | None:
    """The grader's worker process: a child of the process workers are forked from
    (multiprocessing's fork server), not the fork server of the notebooks."""
    zygote = _grader_child(grader, "multiprocessing.forkserver")
    try:
        workers = zygote.children() if zygote is not None else []
    except psutil.NoSuchProcess:
        return None
    return workers[0] if workers else None


def _kill_worker_while_grading(grader: subprocess.Popen, out, record_count: int) -> None:
    """Once ``record_count`` students are recorded, SIGKILL the worker as soon as it runs the
    next one's notebook (the notebooks' fork server has a child)."""
    deadline = time.monotonic() + 300
    while True:
        assert grader.poll() is None and time.monotonic() < deadline, "the grader stopped early"
        records = list((out / "records").glob("*.json")) if (out / "records").is_dir() else []
        process = psutil.Process(grader.pid)
        worker = _worker_of(process)
        notebooks = _grader_child(process, "labkit.sandbox.forkserver")
        try:
            running = worker is not None and notebooks is not None and bool(notebooks.children())
        except psutil.NoSuchProcess:
            running = False
        if len(records) >= record_count and running:
            time.sleep(2)  # well inside the slow student's 25 s cell
            worker.kill()
            worker.wait(timeout=30)
            return
        time.sleep(0.3)


def test_a_dead_worker_costs_a_retry_and_a_second_death_a_note(tmp_path):
    """A worker that dies (the kernel's OOM killer, a crash) loses nothing: its submission is
    graded again in a fresh worker, the rest of the class goes on, and a submission whose grading
    ends two workers gets a row that says so; the report is written all the same."""
    submissions, out = tmp_path / "submissions", tmp_path / "out"
    submissions.mkdir()
    shutil.copy(paths.solution_notebook(STEM), submissions / "a_first.ipynb")
    slow = nbformat.read(paths.solution_notebook(STEM), 4)
    slow.cells.insert(2, nbformat.v4.new_code_cell("import time\ntime.sleep(25)"))
    nbformat.write(slow, submissions / "b_slow.ipynb")
    shutil.copy(paths.solution_notebook(STEM), submissions / "c_last.ipynb")

    grader = subprocess.Popen(
        [sys.executable, "-m", "labkit", "grade", "--submissions", str(submissions),
         "--out", str(out), "--workers", "1", "--cell-timeout", "60"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        _kill_worker_while_grading(grader, out, 1)   # b_slow's first try
        _kill_worker_while_grading(grader, out, 1)   # b_slow's second try, in a fresh worker
        stdout, stderr = grader.communicate(timeout=300)
    finally:
        if grader.poll() is None:
            grader.kill()
    assert grader.returncode == 0, stderr
    assert "graded 3 submissions" in stdout
    rows = _rows(out)
    assert float(rows["a_first"]["total"]) == float(rows["c_last"]["total"]) > 0
    assert "ended the grader's worker process 2 times" in rows["b_slow"]["notes"]
    assert (out / "report.html").is_file() and (out / "feedback" / "c_last.html").is_file()
