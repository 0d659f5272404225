"""The committed releases are what `make release` makes of the masters, and leak nothing."""

from __future__ import annotations

import shutil
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import nbformat
import pytest

from labkit.course import masters
from labkit import paths
from labkit.course import student_readme, student_setup
from labkit.course.release import master_paths

pytestmark = pytest.mark.slow


def _copy_sources(root: Path) -> None:
    """What `make release` reads: the masters, the kit and the pinned requirements."""
    shutil.copytree(paths.ASSIGNMENTS, root / "assignments")
    shutil.copytree(paths.ROOT / "labkit", root / "labkit",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(paths.ROOT / "requirements.txt", root / "requirements.txt")
    (root / "docs").mkdir()
    shutil.copy(student_readme.SOURCE, root / "docs" / student_readme.SOURCE.name)


@pytest.fixture(scope="module")
def fresh_release(tmp_path_factory) -> Path:
    """A copy of the repository's sources, released from scratch."""
    root = tmp_path_factory.mktemp("repo")
    _copy_sources(root)
    subprocess.run([sys.executable, "-m", "labkit", "release"], cwd=root, check=True,
                   capture_output=True)
    return root


def _released_files(root: Path) -> list[str]:
    return sorted(
        str(p.relative_to(root)) for folder in ("student", "autograder", "solutions", "demo")
        for p in (root / folder).rglob("*") if p.is_file()
    )


def test_release_makes_the_committed_files(fresh_release):
    assert _released_files(fresh_release) == _released_files(paths.ROOT)
    # The manifests too: what grading reads the questions from (course.autograders).
    assert {str(paths.release_manifest(stem).relative_to(paths.ROOT))
            for stem in paths.assignment_stems()} <= set(
        _released_files(fresh_release))
    for name in _released_files(paths.ROOT):
        if name.startswith("solutions/"):
            continue  # executed outputs: compared below by structure
        assert (fresh_release / name).read_bytes() == (paths.ROOT / name).read_bytes(), (
            f"{name} differs from a fresh release: run `make release` and commit the result")


def test_solutions_match_a_fresh_release_cell_for_cell(fresh_release):
    for stem in paths.assignment_stems():
        fresh = nbformat.read(
            fresh_release / paths.solution_notebook(stem).relative_to(paths.ROOT), 4)
        committed = nbformat.read(paths.solution_notebook(stem), 4)
        assert [c.source for c in fresh.cells] == [c.source for c in committed.cells]
        assert fresh.metadata == committed.metadata
        for a, b in zip(fresh.cells, committed.cells):
            if a.cell_type == "code":
                assert [o.output_type for o in a.outputs] == [o.output_type for o in b.outputs]


def test_the_students_readme_is_the_marked_part_of_the_students_guide():
    """student/README.md is what a release writes from docs/students.md: the students' guide
    between its markers, under a title, and nothing of the guide outside them."""
    source = student_readme.SOURCE.read_text(encoding="utf-8")
    released = (paths.STUDENT / "README.md").read_text(encoding="utf-8")
    assert released == student_readme.render(source), (
        "student/README.md differs from docs/students.md: run `make release` and commit it")
    inside = source.split(student_readme.START)[1].split(student_readme.END)[0].strip()
    assert inside and inside in released
    assert "# For students" not in released  # the page's own introduction stays in docs/


def test_releases_exist_for_every_master():
    assert [m.stem for m in master_paths()] == paths.assignment_stems()


@pytest.mark.parametrize("master", master_paths(), ids=lambda p: p.stem)
def test_student_notebook_has_no_solution_and_no_hidden_test(master):
    student = paths.student_notebook(master.stem)
    parsed = masters.parse(master)
    assert parsed.distinctive_solution_lines(), "the master's solutions were not found"
    assert parsed.hidden_tests, "the master's hidden tests were not found"
    assert masters.find_leaks(parsed, student) == []
    nb = nbformat.read(student, 4)
    for question, test in nb.metadata["otter"]["tests"].items():
        assert "hidden=True" not in test, f"{question}: a hidden test is in the student notebook"
    sources = "\n".join(c.source for c in nb.cells)
    assert "BEGIN SOLUTION" not in sources and "SOLUTION:" not in sources


@pytest.mark.parametrize("master", master_paths(), ids=lambda p: p.stem)
def test_the_setup_cell_is_a_few_lines_under_the_title_collapsed_and_runs_the_kits_code(master):
    """A student first sees the notebook's title, then one collapsed cell of a few lines; what
    it runs is the kit's student_kernel, with this notebook's public checks."""
    nb = nbformat.read(paths.student_notebook(master.stem), 4)
    title, setup = nb.cells[:2]
    assert title.cell_type == "markdown" and title.source.startswith("# Lab ")
    assert student_setup.is_setup_cell(setup)
    assert [c for c in nb.cells if student_setup.is_setup_cell(c)] == [setup]
    assert len(setup.source.splitlines()) <= 6
    assert setup.metadata["jupyter"] == {"source_hidden": True}
    assert setup.metadata["cellView"] == "form"  # Colab shows its title only
    carried = student_setup.carried_code(setup.source)
    assert carried == student_setup.setup_code(master.stem, dict(nb.metadata["otter"]["tests"]))
    assert carried.startswith(student_setup.KERNEL_CODE.read_text(encoding="utf-8"))


@pytest.mark.parametrize("master", master_paths(), ids=lambda p: p.stem)
def test_autograder_zip_holds_every_hidden_test_and_the_checks(master):
    parsed = masters.parse(master)
    with zipfile.ZipFile(paths.autograder_zip(master.stem)) as archive:
        names = set(archive.namelist())
        tests = "".join(archive.read(n).decode() for n in names if n.startswith("tests/"))
    assert "files/labkit/checks/core.py" in names
    assert tests.count("hidden=True") == len(parsed.hidden_tests)
    autograded = {q.name for q in parsed.questions if not q.written}
    assert {n[len("tests/"):-3] for n in names if n.startswith("tests/")} == autograded


def test_release_refuses_a_solution_outside_a_solution_block(tmp_path):
    """otter keeps a cell with inline solution markers outside a solution block whole; the
    release must refuse it and name the cell."""
    root = tmp_path / "repo"
    _copy_sources(root)
    stem = "1_1_linear_regression"
    master = root / paths.master_notebook(stem).relative_to(paths.ROOT)
    nb = nbformat.read(master, 4)
    # Drop the raw BEGIN/END SOLUTION cells around the first solution.
    first = next(i for i, c in enumerate(nb.cells)
                 if c.cell_type == "raw" and c.source.strip() == "# BEGIN SOLUTION")
    assert nb.cells[first + 2].source.strip() == "# END SOLUTION"
    del nb.cells[first + 2]
    del nb.cells[first]
    nbformat.write(nb, master)
    for other in (root / "assignments").glob("*/*/*.ipynb"):
        if other != master:
            shutil.rmtree(other.parent)
    result = subprocess.run([sys.executable, "-m", "labkit", "release"], cwd=root,
                            capture_output=True, text=True)
    assert result.returncode != 0
    assert "release refused" in result.stderr
    # With the raw cell before it gone, the solution cell now sits at index `first`.
    assert f"cell {first}: solution line" in result.stderr
    assert "X.new_ones(X.shape[0], 1)" in result.stderr
    assert not any((root / "student").rglob("*.ipynb")), "a leaking student notebook was written"


def test_release_refuses_a_solution_that_the_kits_grading_does_not_give_full_marks(tmp_path):
    """A solution that passes otter's own run of its tests, but not the kit's grading (here it
    reads an environment variable that a graded notebook's process is not given): the release
    grades each solution as a student's notebook and refuses, naming the question."""
    root = tmp_path / "repo"
    _copy_sources(root)
    stem = "1_2_logistic_regression"
    master = root / paths.master_notebook(stem).relative_to(paths.ROOT)
    nb = nbformat.read(master, 4)
    right = "return X.T @ (torch.sigmoid(X @ theta) - y)"
    (cell,) = [c for c in nb.cells if right in c.source]
    cell.source = cell.source.replace(right, '__import__("os").environ["COURSE_SCALE"]\n    ' + right)
    nbformat.write(nb, master)
    environment = {**os.environ, "COURSE_SCALE": "1"}
    result = subprocess.run([sys.executable, "-m", "labkit", "release", stem], cwd=root,
                            capture_output=True, text=True, env=environment)
    assert result.returncode == 1, result.stdout[-2000:] + result.stderr[-2000:]
    assert "release refused: " in result.stderr, result.stderr[-3000:]
    refusal = result.stderr.split("release refused: ", 1)[1]
    assert "a solution does not earn full marks when the kit grades it" in refusal
    assert f"{stem}/logistic_regression_loss_grad: its solution earns " in refusal
    assert "COURSE_SCALE" in refusal  # the first failing check's message says why
    assert f"{stem}/training_observations" not in refusal  # a written question is not graded
