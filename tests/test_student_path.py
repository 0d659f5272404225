"""The student's path, for real: fill in the released notebook, run it through its export cell,
and grade the exported file with `make grade`'s engine; run its first cell as Colab would (a
fresh environment without otter, no notebook file in the working folder), online and offline;
and run a renamed copy ("<stem> (1).ipynb", a second download) through its export cell."""

from __future__ import annotations

import base64
import csv
import hashlib
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import nbformat
import pytest
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient

from labkit import notebooks, paths
from labkit.course import autograders
from labkit.grading import classrun

pytestmark = pytest.mark.slow

STEM = "1_1_linear_regression"
SIGN_ERROR = ("return X.T @ (X @ theta - y)", "return X.T @ (y - X @ theta)")


def _filled_in(student: nbformat.NotebookNode, stem: str = STEM) -> nbformat.NotebookNode:
    """The student notebook with each `...` scaffold replaced by the reference answer."""
    def key(source: str) -> str:  # "def f(x):" or the name an assignment sets
        first = source.splitlines()[0]
        return first if first.startswith("def ") else first.split("=")[0].strip()

    solution = nbformat.read(paths.solution_notebook(stem), 4)
    answers = {key(c.source): c.source for c in solution.cells
               if c.cell_type == "code" and c.source.strip()}
    filled = 0
    for cell in student.cells:
        if cell.cell_type == "code" and "..." in cell.source:
            cell.source = answers[key(cell.source)]
            filled += 1
    assert filled >= 1
    return student


#: libzmq's own abort, seen now and then in the kernel that otter's export starts to run the
#: checks (a crash of that library, not of the kit or of otter): the export is run again once.
_ZMQ_ABORT = "Assertion failed: pfd.revents & POLLIN"


def _execute_exporting(path: Path, folder: Path) -> nbformat.NotebookNode:
    """Run a saved notebook whose last cell exports it; once more where libzmq aborted in the
    export's own kernel (the zips of that try removed)."""
    executed = notebooks.execute(nbformat.read(path, 4), folder, timeout=600)
    if _ZMQ_ABORT in _export_output(executed):
        for stale in folder.glob("*.zip"):
            stale.unlink()
        executed = notebooks.execute(nbformat.read(path, 4), folder, timeout=600)
    return executed


def _run_and_export(nb: nbformat.NotebookNode, folder) -> tuple[nbformat.NotebookNode, object]:
    folder.mkdir()
    path = folder / f"{STEM}.ipynb"
    nbformat.write(nb, path)  # export zips the saved file, as a student's save would
    executed = _execute_exporting(path, folder)
    (exported,) = folder.glob(f"{STEM}_*.zip")
    return executed, exported


def _text(cell: nbformat.NotebookNode) -> str:
    """Everything a cell showed: streams, results and errors."""
    return "".join(str(o.get("text", "")) + str(o.get("data", {}).get("text/plain", ""))
                   + "\n".join(o.get("traceback", [])) for o in cell.get("outputs", []))


def _export_output(nb: nbformat.NotebookNode) -> str:
    (cell,) = [c for c in nb.cells if notebooks.is_export_cell(c)]
    return _text(cell)


def _check_output(nb: nbformat.NotebookNode, question: str) -> str:
    (cell,) = [c for c in nb.cells if c.cell_type == "code" and f'grader.check("{question}")' in c.source]
    return "".join(str(o.get("text", "")) + str(o.get("data", {}).get("text/plain", ""))
                   for o in cell.outputs)


def test_export_round_trip_full_marks_and_a_flagged_mistake(tmp_path):
    student = nbformat.read(paths.student_notebook(STEM), 4)
    right, right_zip = _run_and_export(_filled_in(student), tmp_path / "right")
    assert "hidden tests" in _check_output(right, "pinv_svd")  # passing is not called a grade
    exported = _export_output(right)
    assert "received the following results" in exported, exported
    assert "Warning" not in exported and "WARNING" not in exported, exported  # nothing in red

    wrong_nb = _filled_in(nbformat.read(paths.student_notebook(STEM), 4))
    (cell,) = [c for c in wrong_nb.cells if SIGN_ERROR[0] in c.source]
    cell.source = cell.source.replace(*SIGN_ERROR)
    wrong, wrong_zip = _run_and_export(wrong_nb, tmp_path / "wrong")
    flagged = _check_output(wrong, "linear_regression_loss_grad")
    assert "Test case failed" in flagged and "Check the sign" in flagged

    submissions = tmp_path / "submissions"
    (submissions / "ada").mkdir(parents=True)
    shutil.copy(right_zip, submissions / "ada")
    shutil.copy(wrong_zip, submissions / "bob.zip")
    out = tmp_path / "out"
    classrun.grade_class(submissions, out, workers=2)
    with open(out / "grades.csv", newline="") as f:
        rows = {row["student"]: row for row in csv.DictReader(f)}
    (assignment,) = [a for a in autograders.load_all() if a.stem == STEM]
    full = {q.name: q.points for q in assignment.graded}
    for question, points in full.items():
        assert float(rows["ada"][f"{STEM}/{question}"]) == points, question
    assert float(rows["bob"][f"{STEM}/linear_regression_loss_grad"]) < full[
        "linear_regression_loss_grad"]
    assert float(rows["bob"][f"{STEM}/pinv_svd"]) == full["pinv_svd"]


# --- Colab, and copies under another name ------------------------------------------------------

COLAB_STEM = "1_2_logistic_regression"
SITE = Path(sysconfig.get_paths()["purelib"])


def _otter_wheel(folder: Path) -> Path:
    """A wheel of the installed otter-grader, built from its installed files: what pip on Colab
    downloads, without a network."""
    dist_info = next(SITE.glob("otter_grader-*.dist-info"))
    version = dist_info.name[len("otter_grader-"):-len(".dist-info")]
    wheel = folder / f"otter_grader-{version}-py3-none-any.whl"
    skip = {"INSTALLER", "REQUESTED", "RECORD", "direct_url.json"}
    names = [line.split(",")[0] for line in (dist_info / "RECORD").read_text().splitlines()]
    names = [n for n in names if n and not n.startswith("..") and "__pycache__" not in n
             and not (n.startswith(dist_info.name) and n.split("/")[-1] in skip)]
    record = []
    folder.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in names:
            data = (SITE / name).read_bytes()
            archive.writestr(name, data)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            record.append(f"{name},sha256={digest},{len(data)}")
        record.append(f"{dist_info.name}/RECORD,,")
        archive.writestr(f"{dist_info.name}/RECORD", "\n".join(record) + "\n")
    return wheel


def _colab_kernel(tmp: Path, wheels: Path) -> KernelManager:
    """A kernel like Colab's: its own Python environment without otter (everything else the
    grading environment holds is visible through a .pth file), ``google.colab`` imported at
    start, and pip offline, installing only from ``wheels``."""
    env = tmp / "colab-env"
    venv.EnvBuilder(with_pip=True).create(env)
    mirror = tmp / "colab-site"  # the grading environment's packages, less otter
    mirror.mkdir()
    for entry in SITE.iterdir():
        if not entry.name.lower().startswith(("otter", "__editable__", "_labkit", "labkit")):
            (mirror / entry.name).symlink_to(entry)
    stub = tmp / "colab-stub" / "google" / "colab"
    stub.mkdir(parents=True)
    (stub.parent / "__init__.py").write_text("")
    (stub / "__init__.py").write_text('"""Stands in for Colab\'s own module."""\n')
    (site,) = env.glob("lib/python*/site-packages")
    (site / "grading-env.pth").write_text(f"{mirror}\n{stub.parent.parent}\n")
    kernels = tmp / "kernels"
    (kernels / "colab").mkdir(parents=True)
    (kernels / "colab" / "kernel.json").write_text(json.dumps({
        "argv": [str(env / "bin" / "python"), "-m", "ipykernel_launcher", "-f",
                 "{connection_file}", "--IPKernelApp.exec_lines=import google.colab"],
        "display_name": "Colab (simulated)", "language": "python",
        "env": {"PIP_CONFIG_FILE": os.devnull, "PIP_NO_INDEX": "1",
                "PIP_FIND_LINKS": str(wheels), "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
    }))
    check = subprocess.run([str(env / "bin" / "python"), "-c", "import otter"],
                           capture_output=True, text=True)
    assert "No module named 'otter'" in check.stderr  # the environment really lacks otter
    return KernelManager(kernel_name="colab",
                         kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(kernels)]))


def _run_in(km: KernelManager, nb: nbformat.NotebookNode, cwd: Path,
            allow_errors: bool = False) -> nbformat.NotebookNode:
    NotebookClient(nb, km=km, timeout=600, allow_errors=allow_errors,
                   resources={"metadata": {"path": str(cwd)}}).execute()
    return nb


def test_on_colab_the_first_cell_installs_otter_and_every_public_check_runs(tmp_path):
    wheels = tmp_path / "wheels"
    _otter_wheel(wheels)
    km = _colab_kernel(tmp_path, wheels)
    work = tmp_path / "content"  # Colab's working folder holds no notebook file
    work.mkdir()
    nb = _filled_in(nbformat.read(paths.student_notebook(COLAB_STEM), 4), COLAB_STEM)
    nb.cells = [c for c in nb.cells if not notebooks.is_export_cell(c)]  # downloaded instead
    nb.cells.append(nbformat.v4.new_code_cell('import sys; print("colab:", "google.colab" in sys.modules)'))
    _run_in(km, nb, work)
    assert _text(nb.cells[-1]).strip() == "colab: True"
    setup = _text(nb.cells[0])
    assert "Installing the grading client (otter-grader==7.0.0)" in setup, setup
    checks = [c for c in nb.cells if c.cell_type == "code" and "grader.check(" in c.source]
    assert checks
    for cell in checks:
        assert "Public checks passed" in _text(cell), _text(cell)
    assert not list(work.glob("*.ipynb")) and not (work / "tests").exists()  # nothing left behind
    assert list((tmp_path / "colab-env").glob("lib/python*/site-packages/otter/__init__.py"))


def test_offline_the_first_cell_says_in_one_sentence_that_the_install_failed(tmp_path):
    km = _colab_kernel(tmp_path, tmp_path / "no-wheels")  # pip finds nothing: as with no network
    work = tmp_path / "content"
    work.mkdir()
    nb = nbformat.read(paths.student_notebook(COLAB_STEM), 4)
    nb.cells = nb.cells[:1]
    _run_in(km, nb, work, allow_errors=True)
    (error,) = [o for o in nb.cells[0].outputs if o.output_type == "error"]
    assert error.traceback == [
        "The grading client could not be installed (pip install otter-grader==7.0.0 failed; "
        "is this computer offline?): connect to the internet and run this cell again."]
    assert "CalledProcessError" not in _text(nb.cells[0])


def test_a_renamed_copy_checks_and_exports_itself_and_grades_full_marks(tmp_path):
    folder = tmp_path / "downloads"
    folder.mkdir()
    name = f"{COLAB_STEM} (1).ipynb"  # what a second download is called
    nbformat.write(_filled_in(nbformat.read(paths.student_notebook(COLAB_STEM), 4), COLAB_STEM),
                   folder / name)
    executed = _execute_exporting(folder / name, folder)
    checks = [c for c in executed.cells if c.cell_type == "code" and "grader.check(" in c.source]
    assert all("Public checks passed" in _text(c) for c in checks)
    assert "Warning" not in _export_output(executed)
    (exported,) = folder.glob(f"{COLAB_STEM} (1)_*.zip")
    with zipfile.ZipFile(exported) as archive:
        assert archive.namelist() == [name] or name in archive.namelist()
    submissions = tmp_path / "submissions"
    submissions.mkdir()
    shutil.copy(exported, submissions / "cleo.zip")
    out = tmp_path / "out"
    classrun.grade_class(submissions, out, workers=1)
    with open(out / "grades.csv", newline="") as f:
        (row,) = csv.DictReader(f)
    (assignment,) = [a for a in autograders.load_all() if a.stem == COLAB_STEM]
    for question in assignment.graded:
        assert float(row[f"{COLAB_STEM}/{question.name}"]) == question.points, question
