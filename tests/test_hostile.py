"""Hostile and broken submissions, graded for real: each costs only what depends on it."""

from __future__ import annotations

import csv
import os
import json
import shutil
from pathlib import Path

import nbformat
import pytest

from labkit import paths
from labkit.course import autograders
from labkit.grading import classrun

from .conftest import LAB, tree_digest

pytestmark = pytest.mark.slow

STEM = "1_1_linear_regression"


def _solution() -> nbformat.NotebookNode:
    return nbformat.read(paths.solution_notebook(STEM), 4)


def _with_cell(source: str, after: str = "X_inv_svd = pinv_svd(X)") -> nbformat.NotebookNode:
    """The solution notebook with one extra code cell, placed before the cell holding ``after``."""
    nb = _solution()
    index = next(i for i, c in enumerate(nb.cells) if after in c.source)
    nb.cells.insert(index, nbformat.v4.new_code_cell(source))
    return nb


def _replace(old: str, new: str) -> nbformat.NotebookNode:
    nb = _solution()
    (cell,) = [c for c in nb.cells if old in c.source]
    cell.source = cell.source.replace(old, new)
    return nb


def _write(folder: Path, name: str, nb: nbformat.NotebookNode) -> None:
    (folder / name).mkdir(parents=True)
    nbformat.write(nb, folder / name / f"{STEM}.ipynb")


@pytest.fixture(scope="module")
def hostile_class(tmp_path_factory):
    """One class of hostile and broken submissions, graded once with short limits."""
    submissions = tmp_path_factory.mktemp("hostile") / "submissions"
    submissions.mkdir()
    _write(submissions, "perfect", _solution())
    _write(submissions, "loops_forever", _with_cell("while True:\n    pass"))
    _write(submissions, "sleeps", _with_cell("import time\ntime.sleep(10**6)"))
    _write(submissions, "ignores_interrupt", _with_cell(
        "import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True:\n    pass"))
    _write(submissions, "swallows_interrupt", _with_cell(
        "while True:\n    try:\n        while True:\n            pass\n    except KeyboardInterrupt:\n"
        "        pass"))
    _write(submissions, "exits", _with_cell("import sys\nsys.exit(3)"))
    _write(submissions, "os_exit", _with_cell("import os\nos._exit(1)"))
    _write(submissions, "kills_parent", _with_cell(
        "import os, signal\nfor pid in (os.getppid(), 1):\n    try:\n        os.kill(pid, signal.SIGKILL)\n"
        "    except Exception as e:\n        print('could not kill', pid, e)"))
    _write(submissions, "kills_process_group", _with_cell("import os, signal\nos.killpg(0, signal.SIGKILL)"))
    _write(submissions, "allocates", _with_cell(
        "import torch\nhog = []\nwhile True:\n    hog.append(torch.ones(2**27, dtype=torch.float64))"))
    _write(submissions, "prints_tens_of_mb", _with_cell("for _ in range(40):\n    print('x' * 1_000_000)"))
    _write(submissions, "patches_allclose", _with_cell(
        "import torch\ntorch.allclose = lambda *a, **k: True\ntorch.equal = lambda *a, **k: True\n"
        "torch.testing.assert_close = lambda *a, **k: None\n"
        "def pinv_svd(X):\n    return torch.zeros(X.shape[1], X.shape[0], dtype=X.dtype, device=X.device)",
        after="grader.check(\"pinv_svd\")"))
    _write(submissions, "patches_checks", _with_cell(
        "import sys, types\ntry:\n    import labkit.checks.core as core\n"
        "    core.expect_close = lambda *a, **k: None\nexcept Exception as e:\n    print('no checks here:', e)\n"
        "def pinv_svd(X):\n    return X.T",
        after="grader.check(\"pinv_svd\")"))
    _write(submissions, "function_exits_when_called", _replace(
        "U, S, Vh = torch.linalg.svd(X, full_matrices=False)",
        "import os\n    if X.shape[0] != 1000:\n        os._exit(1)\n    U, S, Vh = torch.linalg.svd(X, full_matrices=False)"))
    _write(submissions, "searches_disk", _with_cell(
        "import os\nfound = []\nfor root in ('/', '/tmp', os.path.expanduser('~')):\n"
        "    for folder, dirs, files in os.walk(root):\n"
        "        if folder.startswith(('/proc', '/sys', '/dev')):\n            dirs[:] = []\n            continue\n"
        "        for name in files:\n"
        "            if name.endswith(('.py', '.zip', '.json')) and ('autograder' in name or name in ("
        "'pinv_svd.py', 'linear_regression.py', 'core.py', 'results.json', 'grades.csv')):\n"
        "                try:\n                    text = open(os.path.join(folder, name), 'rb').read()\n"
        "                except OSError:\n                    continue\n"
        "                if b'hidden=True' in text or b'check_values' in text or b'CheckFailed' in text"
        " or b'student,' in text:\n                    found.append(os.path.join(folder, name))\n"
        "environment = dict(os.environ)\nprint('found', found)"))
    _write(submissions, "forges_results", _with_cell(
        "import json, os\nfake = {'tests': [{'name': 'pinv_svd', 'score': 5, 'max_score': 5}]}\n"
        "for path in ('results.json', '/tmp/results.json', os.path.expanduser('~/results.json')):\n"
        "    try:\n        open(path, 'w').write(json.dumps(fake))\n    except OSError:\n        pass\n"
        "print('pinv_svd results: All test cases passed!')\n"
        "def pinv_svd(X):\n    return X.T",
        after="grader.check(\"pinv_svd\")"))
    _write(submissions, "asks_for_a_process", _with_cell(
        "import glob, socket\n"
        "# The run's fork server listens on a Unix socket: try its folder's pattern and every\n"
        "# socket path this process can see, and answer wrongly if any of them answers.\n"
        "paths_seen = glob.glob('/tmp/labkit-forkserver-*/socket')\n"
        "paths_seen += [line.split()[-1] for line in open('/proc/net/unix').read().splitlines()[1:]\n"
        "               if line.split()[-1].startswith('/')]\n"
        "reached = []\n"
        "for path in paths_seen:\n"
        "    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)\n"
        "    try:\n        probe.connect(path)\n        reached.append(path)\n"
        "    except OSError:\n        pass\n"
        "if reached:\n    def pinv_svd(X):\n        return X.T\n"
        "print('sockets seen', paths_seen, 'reached', reached)",
        after="X_inv_svd = pinv_svd(X)"))
    # Broken files.
    (submissions / "not_json.ipynb").write_text("this is not a notebook")
    (submissions / "empty.ipynb").write_bytes(b"")
    text = paths.solution_notebook(STEM).read_text()
    (submissions / "truncated.ipynb").write_text(text[: len(text) // 2])
    (submissions / "binary.zip").write_bytes(bytes(range(256)) * 10)
    (submissions / "a_picture.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 100)
    (submissions / "no_notebook").mkdir()
    (submissions / "no_notebook" / "notes.txt").write_text("I ran out of time")
    wrong = _solution()
    wrong.metadata["otter"]["assignment_name"] = "hw01"
    nbformat.write(wrong, submissions / "wrong_assignment.ipynb")
    conda = _solution()
    conda.metadata["kernelspec"] = {"name": "conda-env-dl-py", "display_name": "Python [conda env:dl]",
                                    "language": "python"}
    _write(submissions, "conda_kernel", conda)
    _write(submissions, "duplicated", _solution())
    shutil.copy(paths.student_notebook(STEM), submissions / "duplicated" / f"{STEM} (1).ipynb")
    # The blank copy was downloaded an hour before the work was saved: the work is graded.
    hour_ago = os.stat(submissions / "duplicated" / f"{STEM}.ipynb").st_mtime - 3600
    os.utime(submissions / "duplicated" / f"{STEM} (1).ipynb", (hour_ago, hour_ago))
    # What a Mac's zip and Windows leave beside the submissions, and a file of the TA's own.
    (submissions / "__MACOSX").mkdir()
    (submissions / "__MACOSX" / "._alice").write_bytes(b"\0" * 10)
    (submissions / "Thumbs.db").write_bytes(b"\0" * 10)
    (submissions / "README.txt").write_text("Lab 1 submissions, downloaded on Monday")

    before = tree_digest(submissions)
    out = tmp_path_factory.mktemp("hostile_out")
    limits = classrun.Limits(cell_seconds=20, notebook_seconds=150, call_seconds=20,
                          memory_bytes=2 << 30, output_bytes=1 << 20)
    summary = classrun.grade_class(submissions, out, workers=2, limits=limits)
    with open(out / "grades.csv", newline="") as f:
        rows = {row["student"]: row for row in csv.DictReader(f)}
    return {"rows": rows, "out": out, "summary": summary, "submissions": submissions,
            "before": before}


def _points(row, question) -> float:
    return float(row[f"{STEM}/{question}"])


#: Full marks per autograded question of STEM, as its released autograder gives them.
FULL = {q.name: q.points for q in autograders.load(STEM).graded}


def _assert_full_1_1(row):
    for question, points in FULL.items():
        assert _points(row, question) == points, (question, row["notes"])


def test_every_entry_gets_exactly_one_row(hostile_class):
    # Every entry but the system's leftovers and the files that are not submissions (a README,
    # a picture), which the summary lists instead.
    others = {"README.txt", "a_picture.png", "__MACOSX", "Thumbs.db"}
    entries = sorted(p.stem if p.is_file() else p.name for p in hostile_class["submissions"].iterdir()
                     if p.name not in others)
    assert sorted(hostile_class["rows"]) == entries


def test_submissions_are_never_modified(hostile_class):
    assert tree_digest(hostile_class["submissions"]) == hostile_class["before"]


@pytest.mark.parametrize("student", ["loops_forever", "sleeps"])
def test_a_cell_out_of_time_is_interrupted_not_run_again(hostile_class, student):
    """A cell over its time gets Jupyter's interrupt, and the notebook goes on in the same
    process: nothing before it runs a second time."""
    row = hostile_class["rows"][student]
    _assert_full_1_1(row)
    assert "ran longer than 20 s; it was interrupted there and the notebook went on" in row["notes"]
    assert "graded without" not in row["notes"] and "KeyboardInterrupt" not in row["notes"]


@pytest.mark.parametrize("student, said", [
    ("ignores_interrupt", "ran longer than 20 s"),
    ("swallows_interrupt", "ran longer than 20 s"),
    ("os_exit", "ended the notebook's process"),
    ("kills_process_group", "ended the notebook's process"),
])
def test_a_fatal_cell_costs_only_what_depends_on_it(hostile_class, student, said):
    row = hostile_class["rows"][student]
    _assert_full_1_1(row)
    assert said in row["notes"] and "graded without the cell under" in row["notes"]


@pytest.mark.parametrize("student", ["exits", "kills_parent", "prints_tens_of_mb", "conda_kernel"])
def test_harmless_misbehaviour_keeps_full_marks(hostile_class, student):
    _assert_full_1_1(hostile_class["rows"][student])


def test_printed_output_is_capped_and_noted(hostile_class):
    assert "output kept to the first" in hostile_class["rows"]["prints_tens_of_mb"]["notes"]


def test_memory_hog_is_stopped_and_the_rest_graded(hostile_class):
    row = hostile_class["rows"]["allocates"]
    _assert_full_1_1(row)
    # Stopped by the address-space limit (an error in the cell) or by the memory watch.
    problems = [n for n in row["notes"].split("; ") if n.startswith(STEM)]
    assert all("memory" in n for n in problems), problems


def test_the_fork_server_of_the_run_is_out_of_a_notebooks_reach(hostile_class):
    """No socket of the grading run (its fork server, which forks any process it is asked
    for) can be found or reached from a notebook: the cell that looks for one answers wrongly
    if it reaches any, and it ran without error."""
    row = hostile_class["rows"]["asks_for_a_process"]
    _assert_full_1_1(row)
    assert "raised an error" not in row["notes"]


@pytest.mark.parametrize("student", ["patches_allclose", "patches_checks", "forges_results"])
def test_patching_or_forging_does_not_turn_a_wrong_answer_into_points(hostile_class, student):
    row = hostile_class["rows"][student]
    # Each hidden test judges one property: these wrong answers keep their dtype, inputs and
    # device (3 points), and patching or forging must not win the values and rank-deficient
    # tests (2 points).
    assert _points(row, "pinv_svd") == FULL["pinv_svd"] - 2
    assert _points(row, "add_bias_column") == FULL["add_bias_column"]


def test_a_function_that_kills_its_process_loses_only_its_own_points(hostile_class):
    row = hostile_class["rows"]["function_exits_when_called"]
    assert _points(row, "pinv_svd") < FULL["pinv_svd"]
    for question in ("add_bias_column", "as_column", "linear_regression_loss_grad",
                     "train_test_split"):
        assert _points(row, question) == FULL[question], question
    record = json.loads((hostile_class["out"] / "results" / "function_exits_when_called"
                         / f"{STEM}.json").read_text())
    messages = " ".join(c["message"] for c in record["cases"] if c["question"] == "pinv_svd")
    assert "ended the notebook's process" in messages


def test_student_code_finds_no_hidden_test_and_no_grader_environment(hostile_class, tmp_path):
    from labkit.sandbox import confine
    from labkit.sandbox.session import ForkServerClient, NotebookSession
    from labkit.grading.standins import RemoteEnv
    from labkit.sandbox.confine import Limits

    from labkit.grading.classrun import notebook_preload

    notebook = hostile_class["submissions"] / "searches_disk" / f"{STEM}.ipynb"
    # As the grader starts it: with the lab's modules loaded before the notebook's process
    # starts (scikit-learn, imported there, sets its own KMP_* variables, which are no secret).
    server = ForkServerClient(preload=notebook_preload(LAB))
    session = NotebookSession(server, notebook, f"{STEM}.ipynb", Limits(),
                              [hostile_class["submissions"], hostile_class["out"]])
    try:
        session.start()
        env = RemoteEnv(session)
        assert env.get("found") == []
        environment = env.get("environment")
    finally:
        session.close()
        server.close()
    assert environment is not None
    assert set(environment) <= {"PATH", "HOME", "TMPDIR", "LANG", "MPLBACKEND", "MPLCONFIGDIR",
                                "OMP_NUM_THREADS", "PYTHONDONTWRITEBYTECODE",
                                *confine.KEPT_VARIABLES}


@pytest.mark.parametrize("student, said", [
    ("not_json", "not a readable notebook"),
    ("empty", "not a readable notebook"),
    ("truncated", "not a readable notebook"),
    ("binary", "not a readable zip file"),
    ("no_notebook", "no notebook found"),
    ("wrong_assignment", "not a notebook of this lab"),
    ("duplicated", "a second notebook for"),
])
def test_broken_input_gets_a_row_and_a_clear_note(hostile_class, student, said):
    row = hostile_class["rows"][student]
    assert said in row["notes"]
    if student != "duplicated":
        assert float(row["total"]) == 0


def test_files_that_are_not_submissions_get_no_row_and_are_listed(hostile_class):
    rows = hostile_class["rows"]
    assert not {"a_picture", "README", "__MACOSX", "Thumbs"} & set(rows)
    summary = hostile_class["summary"]
    assert "not graded, as not a notebook, zip or folder: README.txt, a_picture.png" in summary
    assert "__MACOSX" not in summary and "Thumbs.db" not in summary


def test_of_two_copies_the_later_work_is_graded_and_both_are_named(hostile_class):
    row = hostile_class["rows"]["duplicated"]
    assert _points(row, "pinv_svd") > 0
    assert (f"duplicated/{STEM} (1).ipynb: a second notebook for {STEM}, ignored "
            f"(duplicated/{STEM} (1).ipynb, saved ") in row["notes"]
    assert f"duplicated/{STEM}.ipynb graded, the later work, saved " in row["notes"]
