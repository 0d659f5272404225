"""An assignment's data files: shipped by the release, read by the notebook, changed by no one.

A tiny master whose cells read ``points.csv`` is released with the file its spec names
(``data = ["points.csv"]`` in its ``grading.toml``; into a copy of the kit,
so that the repository's own release is left alone), and its release graded as root and as an
ordinary user (a TA's laptop): the notebook reads the course's file in its confined working
folder, cannot overwrite, remove, rename or replace it, and a student zip that brings its own
``points.csv`` is graded against the course's all the same. The grading image's requirements
name torch's CPU build.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import nbformat
import pytest
import yaml
from packaging.requirements import Requirement

from labkit import datafiles, paths
from labkit.course import requirements

from .tiny_masters import assignment_config

from . import cgroup_delegation

STEM = "9_1_points"
LAB = "labdata"
#: The course's file: a header and three points.
POINTS = "x,y\n0,1\n1,3\n2,5\n"
#: The file a student's zip brings under the same name: five points.
STUDENTS_POINTS = "x,y\n9,9\n9,9\n9,9\n9,9\n9,9\n"
TA_USER = cgroup_delegation.TA_USER
RUNUSER = shutil.which("runuser") or "runuser"


# -- the names ------------------------------------------------------------------------------------

def test_data_files_are_found_inside_the_assignments_folder(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "points.csv").write_text(POINTS)
    (tmp_path / "data" / "weights.pt").write_bytes(b"\0")
    assert datafiles.data_files(tmp_path, ["points.csv", "data/weights.pt"]) == [
        tmp_path / "points.csv", tmp_path / "data" / "weights.pt"]


@pytest.mark.parametrize("name, said", [
    ("../secret.csv", "leaves the assignment's folder"),
    ("data/../../secret.csv", "leaves the assignment's folder"),
    ("/etc/passwd", "relative to the assignment's folder"),
    ("missing.csv", "is not a file"),
    ("linked.csv", "symbolic link"),
    ("through/points.csv", "symbolic link"),
    (".hidden.csv", "must start with a letter or digit"),
    ("other.ipynb", "would replace"),
    (".matplotlib/x", "must start with a letter or digit"),
])
def test_a_data_file_outside_the_folder_or_behind_a_link_is_refused(tmp_path, name, said):
    (tmp_path / "points.csv").write_text(POINTS)
    outside = tmp_path.parent / f"{tmp_path.name}-outside"
    outside.mkdir()
    (outside / "points.csv").write_text("secret")
    (tmp_path / "linked.csv").symlink_to(outside / "points.csv")
    (tmp_path / "through").symlink_to(outside)
    with pytest.raises(datafiles.DataFileError, match=said):
        datafiles.data_files(tmp_path, [name])


def test_a_data_file_named_twice_or_inside_another_is_refused():
    with pytest.raises(datafiles.DataFileError, match="named twice"):
        datafiles.check_names(["points.csv", "./points.csv"])
    with pytest.raises(datafiles.DataFileError, match="lies inside"):
        datafiles.check_names(["data", "data/points.csv"])


@pytest.mark.parametrize("spec, said", [
    ('data = ["../secret.csv"]', "leaves the assignment's folder"),
    ('data = ["missing.csv"]', "is not a file"),
    ('data = "points.csv"', "must be a list of file names"),
])
def test_make_release_refuses_a_spec_naming_a_bad_data_file(tmp_path, monkeypatch, spec, said):
    from labkit.course import release

    monkeypatch.setattr(paths, "ASSIGNMENTS", tmp_path / "assignments")
    folder = tmp_path / "assignments" / LAB / STEM
    folder.mkdir(parents=True)
    (folder / "points.csv").write_text(POINTS)
    (folder / "grading.toml").write_text(spec + "\n")
    with pytest.raises(release.ReleaseError, match=said):
        release.spec_data_files(folder / f"{STEM}.ipynb")


# -- the grading image's requirements -------------------------------------------------------------

def _requirement_lines(text: str) -> tuple[list[str], list[Requirement]]:
    """A requirements text's option lines and its requirements, each parsed as pip parses it."""
    lines = [line.strip() for line in text.splitlines()
             if line.strip() and not line.strip().startswith("#")]
    return ([line for line in lines if line.startswith("-")],
            [Requirement(line) for line in lines if not line.startswith("-")])


def _torch_on(machine: str, reqs: list[Requirement]) -> list[str]:
    environment = {"platform_machine": machine, "sys_platform": "linux"}
    return [str(r.specifier) for r in reqs if r.name == "torch"
            and (r.marker is None or r.marker.evaluate(environment))]


def test_the_grading_requirements_name_torchs_cpu_build_from_its_index():
    options, reqs = _requirement_lines(requirements.grading_requirements())
    version = requirements.pinned((paths.ROOT / "requirements.txt").read_text())["torch"]
    assert options == [f"--extra-index-url={requirements.TORCH_CPU_INDEX}"]
    assert _torch_on("x86_64", reqs) == [f"=={version}+cpu"]
    assert _torch_on("aarch64", reqs) == [f"=={version}"]
    # Every other pin of assignments/requirements.txt is kept as it is.
    source = (paths.ASSIGNMENTS / "requirements.txt").read_text()
    _, pinned = _requirement_lines(source)
    assert {str(r) for r in pinned if r.name != "torch"} <= {str(r) for r in reqs}


def test_the_students_requirements_keep_the_default_build_and_say_how_to_take_the_cpu_one():
    """A student's machine, JupyterHub or Colab may have a GPU: the default index's build."""
    text = requirements.student_requirements()
    _, reqs = _requirement_lines(text)
    assert all("+cpu" not in str(r.specifier) for r in reqs)
    assert f"--extra-index-url {requirements.TORCH_CPU_INDEX}" in text


# -- a released assignment with a data file -------------------------------------------------------

def _config() -> str:
    return assignment_config(STEM)


READ_CELL = 'with open("points.csv") as handle:\n    header = handle.readline().strip()\nheader'
SOLUTION = '''def count_points():
    """How many points points.csv holds (its lines after the header)."""
    # BEGIN SOLUTION
    with open("points.csv") as handle:
        return len(handle.read().splitlines()) - 1
    # END SOLUTION'''
PUBLIC_TEST = '''""" # BEGIN TEST CONFIG
points: 0
""" # END TEST CONFIG
def test_count_points_runs(count_points):
    assert count_points() >= 0'''
#: The hidden check, declared in the spec and written by the release (``course.assemble``).
SPEC = """data = ["points.csv"]

[questions.count_points]
hidden = [{ test = "reads_the_courses_file", call = "check_count" }]
"""
CHECKS = '''"""The hidden check of 9_1_points: the notebook reads the course's data file."""
from labkit.checks import core


def check_count(count_points):
    if core.call(count_points, "count_points") != 3:
        raise core.CheckFailed("the course's points.csv holds three points")
'''


def _master() -> nbformat.NotebookNode:
    new = nbformat.v4
    raw = new.new_raw_cell
    return new.new_notebook(cells=[
        raw(_config()), new.new_markdown_cell("# Points from a data file"),
        new.new_code_cell(READ_CELL),
        new.new_markdown_cell("### Exercise 1 — count the points"),
        raw("# BEGIN QUESTION\nname: count_points"), raw("# BEGIN SOLUTION"),
        new.new_code_cell(SOLUTION), raw("# END SOLUTION"), raw("# BEGIN TESTS"),
        new.new_code_cell(PUBLIC_TEST), raw("# END TESTS"),
        raw("# END QUESTION"),
    ], metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                "language": "python"}})


def _kit_copy(root: Path) -> None:
    """What releasing and grading one assignment reads: the kit and the pinned requirements."""
    shutil.copytree(paths.ROOT / "labkit", root / "labkit",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(paths.ROOT / "requirements.txt", root / "requirements.txt")
    (root / "assignments").mkdir()
    shutil.copy(paths.ASSIGNMENTS / "requirements.txt", root / "assignments" / "requirements.txt")


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def released() -> Path:
    """A copy of the kit, under /tmp and open to other users (the TA grades from it too), with
    the tiny master and its ``points.csv`` released into it."""
    root = Path(tempfile.mkdtemp(prefix="labkit-datafiles-", dir="/tmp"))
    root.chmod(0o755)
    try:
        _kit_copy(root)
        folder = root / "assignments" / LAB / STEM
        folder.mkdir(parents=True)
        nbformat.write(_master(), folder / f"{STEM}.ipynb")
        (folder / "points.csv").write_text(POINTS)
        (folder / "grading.toml").write_text(SPEC)
        (folder / "checks.py").write_text(CHECKS)
        # As `make release` releases it: the data files its spec names.
        code = ("from pathlib import Path\nfrom labkit.course import release\n"
                f"master = Path('assignments/{LAB}/{STEM}/{STEM}.ipynb').resolve()\n"
                "release.release_one(master, release.spec_data_files(master))\n")
        result = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True,
                                text=True, timeout=600)
        assert result.returncode == 0, result.stderr[-3000:]
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _released(root: Path, kind: str) -> Path:
    """The released file of ``kind`` (student notebook, zip, manifest, solution), found by its
    name wherever this kit's layout puts it."""
    names = {"student": ("student", f"{STEM}.ipynb"), "zip": ("autograder", f"{STEM}-autograder.zip"),
             "manifest": ("autograder", "manifest.json"), "solution": ("solutions", f"{STEM}.ipynb")}
    folder, name = names[kind]
    (found,) = [p for p in (root / folder).rglob(name) if p.parent.name == STEM]
    return found


@pytest.mark.slow
def test_the_release_ships_the_data_file_to_students_and_in_the_autograder_zip(released):
    student = _released(released, "student").parent
    assert (student / "points.csv").read_text() == POINTS
    with zipfile.ZipFile(_released(released, "zip")) as archive:
        assert archive.read("files/points.csv").decode() == POINTS
    manifest = json.loads(_released(released, "manifest").read_text())
    assert manifest["data"] == ["points.csv"]


@pytest.mark.slow
def test_the_solution_is_executed_beside_the_data_file(released):
    solution = nbformat.read(_released(released, "solution"), 4)
    (cell,) = [c for c in solution.cells if c.cell_type == "code" and c.source == READ_CELL]
    assert cell.outputs and cell.outputs[0]["data"]["text/plain"] == "'x,y'"


@pytest.mark.slow
def test_the_zips_setup_installs_torchs_cpu_build(released):
    """otter writes the requirements into the pip section of the zip's environment.yml, which its
    setup.sh creates the grading environment from."""
    with zipfile.ZipFile(_released(released, "zip")) as archive:
        setup = archive.read("setup.sh").decode()
        environment = yaml.safe_load(archive.read("environment.yml"))
        run = archive.read("run_autograder").decode()
    assert "env create -f /autograder/source/environment.yml" in setup
    (env_name,) = {line.split()[-1] for line in run.splitlines() if " activate " in line}
    assert environment["name"] == env_name
    (pip,) = [d["pip"] for d in environment["dependencies"] if isinstance(d, dict)]
    options, reqs = _requirement_lines("\n".join(pip))
    assert options == [f"--extra-index-url={requirements.TORCH_CPU_INDEX}"]
    version = requirements.pinned((paths.ROOT / "requirements.txt").read_text())["torch"]
    assert _torch_on("x86_64", reqs) == [f"=={version}+cpu"]
    assert any(r.name == "otter-grader" for r in reqs)


# -- grading it, as root and as a TA --------------------------------------------------------------

ATTACK = r'''
import errno, os
def _attempt(action):
    try:
        action()
        return "done"
    except OSError as error:
        return errno.errorcode.get(error.errno, str(error.errno))
def _overwrite():
    with open("points.csv", "w") as handle:
        handle.write("x,y\n")
with open("mine.csv", "w") as handle:
    handle.write("x,y\n7,7\n")
attempts = {"write": _attempt(_overwrite),
            "remove": _attempt(lambda: os.remove("points.csv")),
            "rename": _attempt(lambda: os.rename("points.csv", "gone.csv")),
            "replace": _attempt(lambda: os.replace("mine.csv", "points.csv")),
            "chmod": _attempt(lambda: os.chmod("points.csv", 0o666))}
'''


def _class(released: Path, workspace: Path) -> tuple[Path, Path]:
    """Two students: ada hands in a zip of her notebook that tries to overwrite the course's file
    and brings a points.csv of her own; bob hands in the solution as it is."""
    submissions, out = workspace / "submissions", workspace / "out"
    submissions.mkdir()
    solution = nbformat.read(_released(released, "solution"), 4)
    nbformat.write(solution, submissions / "bob.ipynb")
    hostile = nbformat.read(_released(released, "solution"), 4)
    at = next(i for i, c in enumerate(hostile.cells) if c.source == READ_CELL)
    hostile.cells.insert(at + 1, nbformat.v4.new_code_cell(ATTACK))
    with zipfile.ZipFile(submissions / "ada.zip", "w") as archive:
        archive.writestr(f"{STEM}.ipynb", nbformat.writes(hostile))
        archive.writestr("points.csv", STUDENTS_POINTS)
    return submissions, out


def _probe_as_ta(environment: dict[str, str]) -> str | None:
    code = "from labkit.sandbox import confine; print(confine.probe() or '')"
    result = subprocess.run([RUNUSER, "-u", TA_USER, "--", sys.executable, "-c", code],
                            capture_output=True, text=True, cwd="/", env=environment)
    return result.stdout.strip() or (result.stderr.strip()[-300:] if result.returncode else None)


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["root", "unprivileged"])
def test_the_notebook_reads_the_courses_file_and_no_submission_changes_it(released, mode,
                                                                         tmp_path):
    workspace = Path(tempfile.mkdtemp(prefix=f"labkit-datafiles-{mode}-", dir="/tmp"))
    workspace.chmod(0o755)
    environment = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(workspace),
                   "LANG": "C.UTF-8", "LABKIT_GRADING_SECRET": "data files test secret"}
    command = [sys.executable, "-m", "labkit", "grade", "--workers", "1"]
    course_files = [released / "assignments" / LAB / STEM / "points.csv",
                    _released(released, "student").parent / "points.csv",
                    _released(released, "zip")]
    before = {path: _digest(path) for path in course_files}
    try:
        submissions, out = _class(released, workspace)
        with _as(mode, environment) as run_as:
            result = subprocess.run(
                [*run_as, *command, "--submissions", str(submissions), "--out", str(out)],
                cwd=released, env=environment, capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, result.stderr[-3000:]
        with open(out / "grades.csv", newline="") as handle:
            rows = {row["student"]: row for row in csv.DictReader(handle)}
        for student in ("ada", "bob"):
            assert float(rows[student][f"{STEM}/count_points"]) == 1.0, rows[student]["notes"]
        assert {path: _digest(path) for path in course_files} == before
    finally:
        shutil.rmtree(workspace, ignore_errors=True)


class _as:
    """The command prefix that runs the grader as root, or as the TA (skipping, with why, where
    this machine cannot make or confine one), with the kit's interpreter and the copy open to
    the TA while it runs."""

    def __init__(self, mode: str, environment: dict[str, str]):
        self.mode, self.environment = mode, environment
        self._opened = None

    def __enter__(self) -> list[str]:
        if self.mode == "root":
            return []
        if os.geteuid() != 0 or not shutil.which("useradd") or not shutil.which("runuser"):
            pytest.skip("grading as an ordinary user needs root, useradd and runuser (as on CI)")
        user = cgroup_delegation.ensure_ta_user()
        self._opened = cgroup_delegation.opened_for_others(cgroup_delegation.kit_paths())
        self._opened.__enter__()
        workspace = Path(self.environment["HOME"])
        for path in [workspace, *workspace.rglob("*")]:
            os.chown(path, user.pw_uid, user.pw_gid)
        if reason := _probe_as_ta(self.environment):
            self.__exit__(None, None, None)
            pytest.skip(f"unprivileged user namespaces are not available here: {reason}")
        return [RUNUSER, "-u", TA_USER, "--"]

    def __exit__(self, *exc: object) -> None:
        if self._opened is not None:
            self._opened.__exit__(None, None, None)
            self._opened = None


@pytest.mark.slow
def test_a_confined_notebook_can_read_its_data_file_and_change_none_of_it(tmp_path):
    """The sandbox as a TA's grader starts it (here as root): each way to change the file fails
    as the kernel says, and the file reads as the course's after them."""
    from labkit.grading.standins import RemoteEnv
    from labkit.sandbox.confine import Limits
    from labkit.sandbox.session import ForkServerClient, NotebookSession

    course = tmp_path / "course"
    (course / "data").mkdir(parents=True)
    (course / "points.csv").write_text(POINTS)
    (course / "data" / "more.csv").write_text(POINTS)
    (course / "points.csv").chmod(0o600)  # readable by the grader only: the sandbox gets a copy
    notebook = tmp_path / "reads.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        ATTACK + "attempts['into_folder'] = _attempt(lambda: open('data/new.csv', 'w').close())\n"
        "attempts['rename_folder'] = _attempt(lambda: os.rename('data', 'elsewhere'))\n"
        "after = open('points.csv').read()\nmore = open('data/more.csv').read()\n")]), notebook)
    server = ForkServerClient()
    session = NotebookSession(server, notebook, notebook.name, Limits(), [],
                              {"points.csv": course / "points.csv",
                               "data/more.csv": course / "data" / "more.csv"})
    try:
        session.start()
        env = RemoteEnv(session)
        attempts, after, more = env.get("attempts"), env.get("after"), env.get("more")
    finally:
        session.close()
        server.close()
    assert session.report.errors == {}
    assert after == POINTS and more == POINTS
    assert attempts == {"write": "EROFS", "remove": "EBUSY", "rename": "EBUSY",
                        "replace": "EBUSY", "chmod": "EROFS", "into_folder": "EROFS",
                        "rename_folder": "EBUSY"}
    assert (course / "points.csv").read_text() == POINTS
