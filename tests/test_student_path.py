"""The student's path, for real: fill in the released notebook, run it through its export cell,
and grade the exported file with `make grade`'s engine; run its setup cell as Colab would (a
fresh environment without otter, no notebook file in the working folder), online and offline,
and its export cell there; run a renamed copy ("<stem> (1).ipynb", a second download) through its
export cell beside the blank first download, in a kernel that is not told which file it runs;
and run checks and exports where the notebook cannot be known."""

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
from labkit.course import autograders, student_kernel, student_setup
from labkit.grading import classrun

from .conftest import LAB

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
    assert sorted(folder.glob("*.zip")) == [folder / f"{STEM}-submission.zip"]
    return executed, folder / f"{STEM}-submission.zip"


def _setup_cell(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    (cell,) = [c for c in nb.cells if student_setup.is_setup_cell(c)]
    return cell


def _last_line(text: str) -> str:
    return text.strip().splitlines()[-1]


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
    assert _last_line(exported) == (
        f"Your notebook {STEM}.ipynb is exported, every public check passing: hand in "
        f"{STEM}-submission.zip (each export replaces it).")

    wrong_nb = _filled_in(nbformat.read(paths.student_notebook(STEM), 4))
    (cell,) = [c for c in wrong_nb.cells if SIGN_ERROR[0] in c.source]
    cell.source = cell.source.replace(*SIGN_ERROR)
    wrong, wrong_zip = _run_and_export(wrong_nb, tmp_path / "wrong")
    flagged = _check_output(wrong, "linear_regression_loss_grad")
    assert "Test case failed" in flagged and "Check the sign" in flagged
    assert _last_line(_export_output(wrong)) == (
        f"Your notebook {STEM}.ipynb is exported, 1 check failing (linear_regression_loss_grad): "
        f"fix it and export again, or hand in {STEM}-submission.zip as it is.")

    submissions = tmp_path / "submissions"
    (submissions / "ada").mkdir(parents=True)
    shutil.copy(right_zip, submissions / "ada")
    shutil.copy(wrong_zip, submissions / "bob.zip")
    out = tmp_path / "out"
    classrun.grade_class(submissions, out, workers=2)
    with open(out / "grades.csv", newline="") as f:
        rows = {row["student"]: row for row in csv.DictReader(f)}
    (assignment,) = [a for a in autograders.load_all(LAB) if a.stem == STEM]
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
    start and its shell a class of that package (as otter tells Colab apart), and pip offline,
    installing only from ``wheels``."""
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
    (stub / "__init__.py").write_text(
        '"""Stands in for Colab\'s own module; the shell becomes a google.colab class."""\n'
        "from IPython import get_ipython\n"
        "shell = get_ipython()\n"
        "if shell is not None:\n"
        "    shell.__class__ = type('Shell', (type(shell),),\n"
        "                           {'__module__': 'google.colab._shell'})\n")
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
    nb.cells.append(nbformat.v4.new_code_cell(
        'import sys; print("colab:", "google.colab" in sys.modules, grader.interpreter.name)'))
    _run_in(km, nb, work)
    assert _text(nb.cells[-1]).strip() == "colab: True COLAB"  # otter knows it is on Colab
    (export,) = [c for c in nb.cells if notebooks.is_export_cell(c)]
    assert [o.output_type for o in export.outputs] == ["stream"]  # no error, no traceback
    assert _text(export).strip() == student_kernel.ON_COLAB
    assert "File → Download → Download .ipynb" in student_kernel.ON_COLAB
    setup = _text(_setup_cell(nb))
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
    nb.cells = [_setup_cell(nb)]
    _run_in(km, nb, work, allow_errors=True)
    (error,) = [o for o in nb.cells[0].outputs if o.output_type == "error"]
    assert error.traceback == [
        "The grading client could not be installed (pip install otter-grader==7.0.0 failed; "
        "is this computer offline?): connect to the internet and run this cell again."]
    assert "CalledProcessError" not in _text(nb.cells[0])


def test_a_renamed_copy_beside_the_blank_download_exports_itself_and_grades_full_marks(
        tmp_path, monkeypatch):
    """The folder holds the blank first download and the copy worked in; the kernel is not told
    which file it runs (no JPY_SESSION_NAME, as in every front end but Jupyter Server), and it ran
    the copy's cells once as downloaded before their answers were written in. The export takes
    the copy, and replaces the zip an earlier export left."""
    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)
    folder = tmp_path / "downloads"
    folder.mkdir()
    shutil.copy(paths.student_notebook(COLAB_STEM), folder / f"{COLAB_STEM}.ipynb")  # blank
    earlier = folder / f"{COLAB_STEM}-submission.zip"
    with zipfile.ZipFile(earlier, "w") as archive:
        archive.writestr("an earlier export.ipynb", "{}")
    name = f"{COLAB_STEM} (1).ipynb"  # what a second download is called
    nbformat.write(_filled_in(nbformat.read(paths.student_notebook(COLAB_STEM), 4), COLAB_STEM),
                   folder / name)
    as_downloaded = nbformat.read(paths.student_notebook(COLAB_STEM), 4)
    as_downloaded.cells = [c for c in as_downloaded.cells if not notebooks.is_export_cell(c)]
    km = KernelManager(kernel_name=notebooks.KERNEL_NAME)
    try:
        _run_in(km, as_downloaded, folder, allow_errors=True)  # the copy before its answers
        executed = _run_in(km, nbformat.read(folder / name, 4), folder)  # ...and as saved now
        if _ZMQ_ABORT in _export_output(executed):
            executed = _run_in(km, nbformat.read(folder / name, 4), folder)
    finally:
        km.shutdown_kernel(now=True)
    checks = [c for c in executed.cells if c.cell_type == "code" and "grader.check(" in c.source]
    assert all("Public checks passed" in _text(c) for c in checks)
    exported_text = _export_output(executed)
    assert "Warning" not in exported_text
    assert _last_line(exported_text) == (
        f"Your notebook {name} is exported, every public check passing: hand in "
        f"{COLAB_STEM}-submission.zip (each export replaces it).")
    assert sorted(folder.glob("*.zip")) == [earlier]
    exported = earlier
    with zipfile.ZipFile(exported) as archive:
        assert archive.namelist() == [name]
    submissions = tmp_path / "submissions"
    submissions.mkdir()
    shutil.copy(exported, submissions / "cleo.zip")
    out = tmp_path / "out"
    classrun.grade_class(submissions, out, workers=1)
    with open(out / "grades.csv", newline="") as f:
        (row,) = csv.DictReader(f)
    (assignment,) = [a for a in autograders.load_all(LAB) if a.stem == COLAB_STEM]
    for question in assignment.graded:
        assert float(row[f"{COLAB_STEM}/{question.name}"]) == question.points, question


# --- Where the notebook cannot be known, and a check run too early ----------------------------

def _run_fresh(cells: list, cwd: Path) -> nbformat.NotebookNode:
    """These cells, in a fresh kernel started in ``cwd`` and not told which notebook it runs."""
    nb = nbformat.v4.new_notebook(cells=[nbformat.from_dict(dict(c)) for c in cells])
    NotebookClient(nb, timeout=600, kernel_name=notebooks.KERNEL_NAME, allow_errors=True,
                   resources={"metadata": {"path": str(cwd)}}).execute()
    return nb


def _error(cell: nbformat.NotebookNode) -> list[str]:
    (error,) = [o for o in cell.outputs if o.output_type == "error"]
    return error.traceback


def test_a_check_run_before_its_answer_cell_says_which_cell_to_run(tmp_path):
    student = nbformat.read(paths.student_notebook(STEM), 4)
    (check,) = [c for c in student.cells if c.source == 'grader.check("pinv_svd")']
    (theta,) = [c for c in student.cells if c.source == 'grader.check("diabetes_theta")']
    nb = _run_fresh([_setup_cell(student), check, theta], tmp_path)
    assert _text(nb.cells[1]).strip() == (
        "Run the cell that defines `pinv_svd` first, then run this check again.")
    assert _text(nb.cells[2]).strip() == (  # a variable, not a function
        "Run the cell that defines `theta` first, then run this check again.")


def test_an_export_that_cannot_tell_its_notebook_refuses_in_one_sentence_and_a_named_one_exports(
        tmp_path, monkeypatch):
    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)
    student = nbformat.read(paths.student_notebook(STEM), 4)
    (export,) = [c for c in student.cells if notebooks.is_export_cell(c)]
    copy = f"{STEM} (1).ipynb"
    two = tmp_path / "two-copies"
    two.mkdir()
    shutil.copy(paths.student_notebook(STEM), two / f"{STEM}.ipynb")
    nbformat.write(_filled_in(nbformat.read(paths.student_notebook(STEM), 4)), two / copy)
    named = nbformat.v4.new_code_cell(f'grader.export("{copy}")')
    # A kernel restarted, then only the setup and export cells run: no copy's own code ran here.
    nb = _run_fresh([_setup_cell(student), export, named], two)
    (sentence,) = _error(nb.cells[1])
    assert sentence == (
        f"This folder holds several copies of this notebook ({STEM} (1).ipynb, {STEM}.ipynb) "
        "and none is known to be the one open here: save your work, then run "
        'grader.export("<your notebook>.ipynb") in a new cell, with the name of the file you '
        "work in, or rename or move the other copies.")
    assert _last_line(_text(nb.cells[2])) == (
        f"Your notebook {copy} is exported, every public check passing: hand in "
        f"{STEM}-submission.zip (each export replaces it).")
    with zipfile.ZipFile(two / f"{STEM}-submission.zip") as archive:
        assert archive.namelist() == [copy]

    elsewhere = tmp_path / "elsewhere"  # a kernel whose folder is not the notebook's
    elsewhere.mkdir()
    nb = _run_fresh([_setup_cell(student), export], elsewhere)
    (sentence,) = _error(nb.cells[1])
    assert sentence.startswith(f"This kernel's folder ({elsewhere}) holds no copy of this notebook")
    assert not list(elsewhere.glob("*.zip"))
