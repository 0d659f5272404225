"""Where the kit's folders are. The layout is the product's: masters in, three releases out.

A course is a set of labs, each a folder of content: ``assignments/<lab>/lab.toml`` and one folder
per assignment, ``assignments/<lab>/<stem>/`` (its master ``<stem>.ipynb``, ``checks.py``,
``grading.toml``, ``answers.py``). The generated folders follow the same layout
(``student/<lab>/<stem>/``, ``autograder/<lab>/<stem>/``, ``solutions/<lab>/<stem>/``,
``demo/<lab>/submissions/``). Stems are unique across the course, so a stem names its lab.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ASSIGNMENTS = ROOT / "assignments"
STUDENT = ROOT / "student"
AUTOGRADER = ROOT / "autograder"
SOLUTIONS = ROOT / "solutions"
DEMO = ROOT / "demo"
DEFAULT_GRADES = ROOT / "grades"
CHECKS_PACKAGE = Path(__file__).resolve().parent / "checks"
LAB_FILE = "lab.toml"
SPEC_FILE = "grading.toml"


def course_order(name: str) -> list:
    """Sort key that reads the numbers in a name as numbers: ``1_2`` before ``1_10``, ``unit9``
    before ``unit10``."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def lab_names(root: Path | None = None) -> list[str]:
    """The labs of the course (folders of ``assignments/`` holding a ``lab.toml``), in order."""
    root = ASSIGNMENTS if root is None else root
    found = [p.parent.name for p in root.glob(f"*/{LAB_FILE}")] if root.is_dir() else []
    return sorted(found, key=course_order)


def master_notebooks(lab: str | None = None) -> list[Path]:
    """Every master notebook (``assignments/<lab>/<stem>/<stem>.ipynb``), in course order."""
    labs = [lab] if lab else lab_names()
    found = [p for name in labs for p in (ASSIGNMENTS / name).glob("*/*.ipynb")
             if p.stem == p.parent.name]
    return sorted(found, key=lambda p: (course_order(p.parent.parent.name), course_order(p.stem)))


def lab_of(stem: str) -> str:
    """The lab an assignment belongs to: the lab folder holding its master, or else its release."""
    for root in (ASSIGNMENTS, AUTOGRADER, STUDENT, SOLUTIONS):
        found = sorted(p.parent.name for p in root.glob(f"*/{stem}") if p.is_dir()) \
            if root.is_dir() and stem and "/" not in stem else []
        if found:
            return found[0]
    raise KeyError(f"no lab of the course holds an assignment named {stem!r}")


def assignment_folder(stem: str) -> Path:
    """The content of one assignment: master, checks, spec, answer bank, data files."""
    return ASSIGNMENTS / lab_of(stem) / stem


def master_notebook(stem: str) -> Path:
    return assignment_folder(stem) / f"{stem}.ipynb"


def student_notebook(stem: str) -> Path:
    return STUDENT / lab_of(stem) / stem / f"{stem}.ipynb"


def autograder_zip(stem: str) -> Path:
    return AUTOGRADER / lab_of(stem) / stem / f"{stem}-autograder.zip"


def release_manifest(stem: str) -> Path:
    """The questions of a released assignment (``course.autograders``), beside its zip."""
    return autograder_zip(stem).parent / "manifest.json"


def solution_notebook(stem: str) -> Path:
    return SOLUTIONS / lab_of(stem) / stem / f"{stem}.ipynb"


def demo_submissions(lab: str | None = None) -> Path:
    """The demo class of a lab (the first lab's by default: what ``make grade`` grades)."""
    return DEMO / (lab or default_lab()) / "submissions"


def default_lab() -> str:
    """The lab ``make grade`` and ``make release`` take when none is named: the course's first."""
    labs = lab_names() or released_labs()
    if not labs:
        raise KeyError(f"the course has no lab: no {ASSIGNMENTS.name}/<lab>/{LAB_FILE}")
    return labs[0]


def released_labs() -> list[str]:
    found = [p.name for p in AUTOGRADER.iterdir() if p.is_dir()] if AUTOGRADER.is_dir() else []
    return sorted(found, key=course_order)


def assignment_stems(lab: str | None = None) -> list[str]:
    """The released assignments (of one lab, or of every lab), in course order."""
    labs = [lab] if lab else released_labs()
    found = [(course_order(name), course_order(zip_path.parent.name), zip_path.parent.name)
             for name in labs for zip_path in (AUTOGRADER / name).glob("*/*-autograder.zip")
             if zip_path.name == f"{zip_path.parent.name}-autograder.zip"]
    return [stem for *_, stem in sorted(found)]
