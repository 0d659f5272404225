"""``make release``: turn each master notebook into its student, autograder and solution files
(and write the students' ``requirements.txt`` and ``README.md`` beside their notebooks, and each
autograder's manifest of questions, ``course.autograders``).

otter assign does the split. Around it, this module stages the master as otter gets it (its
hidden tests and points written in from its ``grading.toml``, ``course.assemble``) with the
hidden-test helpers next to it, refuses a bad spec before anything is written, refuses a release that would leak solutions or hidden tests, and makes the output
byte-for-byte reproducible: otter stamps the zip's name and entries with the time, and executed
notebooks carry timings.
"""

from __future__ import annotations

import ast
import dataclasses
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import yaml

from . import (assemble, autograders, demo, labs, masters, requirements, student_readme,
               student_setup, written)
from .questions import Question
from labkit import datafiles, notebooks, paths
from labkit.paths import (AUTOGRADER, CHECKS_PACKAGE, ROOT, SOLUTIONS, STUDENT, autograder_zip,
                          solution_notebook, student_notebook)

#: Every zip entry gets this timestamp (the earliest a zip can hold), so zips depend on content only.
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
_EXECUTABLE = {"run_autograder", "setup.sh"}
#: The modules of labkit.checks every assignment's hidden tests use.
SHARED_CHECKS = ("__init__.py", "core.py", "descent.py", "graded.py")


class ReleaseError(RuntimeError):
    """A master that cannot be released as it is; the message says which cell and why."""


def _refuse_bad_specs(masters_chosen: list[Path]) -> None:
    """Read every chosen master's spec before releasing any, so that a bad ``grading.toml``
    stops the release before it replaces anything."""
    for master in masters_chosen:
        try:
            assemble.assemble(master)
            assemble.verify_calls(master)
        except labs.SpecError as error:
            raise ReleaseError(str(error)) from None


def master_paths(lab: str | None = None) -> list[Path]:
    """The masters of one lab, or of every lab, in course order."""
    return paths.master_notebooks(lab)


def checks_module(stem: str) -> str:
    """The hidden-test module of an assignment (``labs.checks_module_name``)."""
    return labs.checks_module_name(stem)


def stage(master: Path, build: Path) -> Path:
    """Write the master as otter gets it (``assemble``: the hidden tests and points its
    ``grading.toml`` declares written in), its grading requirements and the hidden-test helpers
    into ``build``: the shared helpers of ``labkit.checks`` and the assignment's own
    ``checks.py`` (beside the master) as ``labkit/checks/<module>.py``, where its hidden tests
    import it from.

    Only the shared helpers and this assignment's own module go in, so that a change to another
    assignment's checks leaves this autograder unchanged.
    """
    assemble.verify_calls(master)
    notebooks.write(assemble.assemble(master), build / master.name)
    (build / "requirements.txt").write_text(requirements.grading_requirements(),
                                            encoding="utf-8")
    package = build / "labkit"
    (package / "checks").mkdir(parents=True)
    shutil.copy(CHECKS_PACKAGE.parent / "__init__.py", package / "__init__.py")
    for module in SHARED_CHECKS:
        shutil.copy(CHECKS_PACKAGE / module, package / "checks" / module)
    own = master.parent / "checks.py"
    if own.is_file():
        shutil.copy(own, package / "checks" / f"{checks_module(master.stem)}.py")
    return build / master.name


#: The first line of the raw cell holding a master's otter configuration.
_CONFIG_MARKER = "# ASSIGNMENT CONFIG"


def _stage_data(staged: Path, data: dict[str, Path]) -> None:
    """Put the data files (name -> the course's file) beside the staged master and name them in
    its otter configuration's ``files:``, so that otter ships them in the autograder zip (as
    ``files/<name>``, which otter's runner copies beside the notebook on Gradescope) and runs
    the master's own tests with them in place."""
    if not data:
        return
    _copy_data(data, staged.parent)
    nb = notebooks.read(staged)
    for cell in nb.cells:
        lines = cell.source.strip().splitlines()
        if cell.cell_type == "raw" and lines and lines[0].strip() == _CONFIG_MARKER:
            config = yaml.safe_load("\n".join(lines[1:])) or {}
            shipped = [str(f) for f in config.get("files") or []]
            config["files"] = shipped + [name for name in data if name not in shipped]
            cell.source = f"{_CONFIG_MARKER}\n" + yaml.safe_dump(config, sort_keys=False)
            notebooks.write(nb, staged)
            return
    raise ReleaseError(f"{staged.name}: no `{_CONFIG_MARKER}` raw cell to name its data files "
                       f"in; add otter's assignment configuration as the first cell")


def _copy_data(data: dict[str, Path], folder: Path) -> None:
    """Copy each data file (name -> the course's file) to ``folder / name``."""
    for name, source in data.items():
        target = folder / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)


def _run_otter_assign(staged: Path, dist: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "otter", "assign", staged.name, str(dist)],
        cwd=staged.parent, capture_output=True, text=True,
    )
    if result.returncode != 0:
        raise ReleaseError(
            f"otter assign failed on {staged.name}:\n{result.stdout[-3000:]}{result.stderr[-3000:]}"
        )


def reproducible_zip(source: Path, target: Path) -> None:
    """Rewrite a zip with sorted entries, fixed timestamps and fixed permissions."""
    with zipfile.ZipFile(source) as original:
        entries = sorted((info.filename, original.read(info)) for info in original.infolist()
                         if not info.is_dir())
    target.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as rewritten:
        for name, data in entries:
            info = zipfile.ZipInfo(name, date_time=_ZIP_EPOCH)
            mode = 0o755 if Path(name).name in _EXECUTABLE else 0o644
            info.external_attr = (0o100000 | mode) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3
            rewritten.writestr(info, data)


def _is_check_cell(cell) -> bool:
    return cell.cell_type == "code" and "grader.check(" in cell.source


def _drop_check_html(nb) -> None:
    """Keep the plain-text result of ``grader.check`` cells: otter's HTML picks a random emoji."""
    for cell in filter(_is_check_cell, nb.cells):
        for output in cell.get("outputs", []):
            output.get("data", {}).pop("text/html", None)


def _write_solution(autograder_nb: Path, student_nb: Path, target: Path,
                    data: dict[str, Path] | None = None) -> None:
    """Execute the notebook with solutions (beside the assignment's data files, as a student's
    copy runs), so the released solution shows its plots and passes its own checks; its
    metadata carries the public tests only, like a student's copy."""
    nb = notebooks.read(autograder_nb)
    nb.metadata["otter"] = notebooks.read(student_nb).metadata["otter"]
    student_setup.install(nb, autograder_nb.stem)  # the same first cell as the student's copy
    notebooks.number_cells(nb)
    with tempfile.TemporaryDirectory() as run_dir:
        notebooks.write(nb, Path(run_dir) / target.name)  # otter.Notebook() reads its own file
        _copy_data(data or {}, Path(run_dir))
        notebooks.execute(nb, Path(run_dir), skip=notebooks.is_export_cell)
    _drop_check_html(nb)
    notebooks.write(nb, target)


def _test_file_points(source: str) -> tuple[str, float]:
    """Read ``name`` and ``points`` from an otter test file without running it."""
    values = {}
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target = node.targets[0]
            if isinstance(target, ast.Name) and target.id in ("name", "points"):
                values[target.id] = ast.literal_eval(node.value)
    points = values.get("points", 1)
    total = float(sum(points)) if isinstance(points, list) else float(points)
    return str(values["name"]), total


def _tested_points(zip_path: Path) -> dict[str, float]:
    """Points of each autograded question, as the autograder's test files give them."""
    with zipfile.ZipFile(zip_path) as archive:
        return dict(_test_file_points(archive.read(name).decode("utf-8"))
                    for name in sorted(archive.namelist())
                    if name.startswith("tests/") and name.endswith(".py"))


def released_questions(parsed: masters.Master) -> list[Question]:
    """The questions of a released assignment, for its manifest, in the master's order: an
    autograded question's points as its test file in the autograder zip gives them (what otter
    grades with), a written question's from the master, with its prompt from the student notebook
    and its solution from the solutions notebook."""
    stem = parsed.stem
    tested = _tested_points(autograder_zip(stem))
    autograded = [q.name for q in parsed.questions if not q.written]
    if sorted(tested) != sorted(autograded):
        raise ReleaseError(f"{stem}: the autograder tests {sorted(tested)}, the master's "
                           f"autograded questions are {sorted(autograded)}")
    prompts = written.prompts(written.read_cells(student_notebook(stem)))
    solutions = written.solutions(written.read_cells(solution_notebook(stem)))
    questions, k = [], 0
    for question in parsed.questions:
        if not question.written:
            questions.append(dataclasses.replace(question, points=tested[question.name]))
            continue
        questions.append(dataclasses.replace(
            question, prompt=prompts[k] if k < len(prompts) else "",
            solution=solutions[k] if k < len(solutions) else ""))
        k += 1
    return questions


def _data_by_name(master: Path, data_files: list[Path]) -> dict[str, Path]:
    """The data files by the name they are shipped under (their path from the master's folder,
    the assignment's), each checked as grading checks it (``labkit.datafiles``)."""
    try:
        names = [datafiles.name_of(path, master.parent) for path in data_files]
        return dict(zip(names, datafiles.data_files(master.parent, names)))
    except datafiles.DataFileError as error:
        raise ReleaseError(f"{master.name}: {error}") from None


def _check_zip_data(zip_path: Path, names: list[str]) -> None:
    with zipfile.ZipFile(zip_path) as archive:
        missing = [name for name in names if f"files/{name}" not in archive.namelist()]
    if missing:
        raise ReleaseError(f"{zip_path.name}: otter left out the data files {missing}")


def spec_data_files(master: Path) -> list[Path]:
    """The data files the assignment's spec names (``data = [...]`` in its ``grading.toml``),
    checked as grading checks them."""
    try:
        names = list(labs.assignment(master.stem).data)
        return datafiles.data_files(master.parent, names)
    except (datafiles.DataFileError, labs.SpecError) as error:
        raise ReleaseError(f"{master.name}: {error}") from None


def release_one(master: Path, data_files: list[Path] = ()) -> None:
    """Release one master into student/, autograder/ and solutions/ (replacing what was there).

    ``data_files`` (``labkit.datafiles.data_files``: files inside the master's folder) go into the
    student folder, the autograder zip (as otter's ``files/``), and beside the solution as it is
    executed, under their paths from the master's folder; the manifest names them for grading.
    """
    parsed = masters.parse(master)
    stem = master.stem
    data = _data_by_name(master, list(data_files))
    with tempfile.TemporaryDirectory() as tmp:
        build = Path(tmp)
        staged = stage(master, build)
        _stage_data(staged, data)
        dist = build / "dist"
        _run_otter_assign(staged, dist)

        leaks = masters.find_leaks(parsed, dist / "student" / master.name)
        if leaks:
            raise ReleaseError(
                f"{master.name}: the student notebook would leak:\n  " + "\n  ".join(leaks)
                + "\nPut solution code inside BEGIN/END SOLUTION blocks or markers, and mark "
                "hidden tests `hidden: true` inside BEGIN/END TESTS."
            )

        student_dir = student_notebook(stem).parent
        shutil.rmtree(student_dir, ignore_errors=True)
        student_dir.mkdir(parents=True)
        student_nb = notebooks.read(dist / "student" / master.name)
        student_setup.install(student_nb, stem)
        notebooks.number_cells(student_nb)
        notebooks.write(student_nb, student_notebook(stem))
        _copy_data(data, student_dir)

        (zip_source,) = (dist / "autograder").glob(f"{stem}-autograder_*.zip")
        _check_zip_data(zip_source, list(data))
        shutil.rmtree(autograder_zip(stem).parent, ignore_errors=True)
        reproducible_zip(zip_source, autograder_zip(stem))

        shutil.rmtree(solution_notebook(stem).parent, ignore_errors=True)
        _write_solution(dist / "autograder" / master.name, student_notebook(stem),
                        solution_notebook(stem), data)
        autograders.write_manifest(stem, released_questions(parsed), list(data))


def release(names: list[str] | None = None, lab: str | None = None) -> list[Path]:
    """Release the named masters (by stem), or all of one lab, or all of the course; returns the
    masters released. The demo class of each lab touched is rebuilt."""
    candidates = master_paths(lab)
    chosen = [m for m in candidates if not names or m.stem in names]
    if names and len(chosen) != len(names):
        known = ", ".join(m.stem for m in candidates)
        raise ReleaseError(f"unknown assignment in {names}; the masters are: {known}")
    _refuse_bad_specs(chosen)
    for folder in (STUDENT, AUTOGRADER, SOLUTIONS):
        folder.mkdir(exist_ok=True)
    requirements.write_student_requirements(STUDENT / "requirements.txt")
    student_readme.write()
    for master in chosen:
        print(f"releasing {master.relative_to(ROOT)} ...", flush=True)
        release_one(master, spec_data_files(master))
    for lab_name in sorted({paths.lab_of(m.stem) for m in chosen}, key=paths.course_order):
        released = [m.stem for m in master_paths(lab_name) if solution_notebook(m.stem).is_file()]
        try:
            demo.build(released)
        except demo.DemoError as error:
            raise ReleaseError(str(error)) from None
        print(f"demo class rebuilt in {paths.demo_submissions(lab_name).relative_to(ROOT)}/",
              flush=True)
    return chosen
