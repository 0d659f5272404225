"""Where the kit's folders are. The layout is the product's: masters in, three releases out."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ASSIGNMENTS = ROOT / "assignments"
STUDENT = ROOT / "student"
AUTOGRADER = ROOT / "autograder"
SOLUTIONS = ROOT / "solutions"
DEMO_SUBMISSIONS = ROOT / "demo" / "submissions"
DEFAULT_GRADES = ROOT / "grades"
CHECKS_PACKAGE = Path(__file__).resolve().parent / "checks"


def student_notebook(stem: str) -> Path:
    return STUDENT / stem / f"{stem}.ipynb"


def autograder_zip(stem: str) -> Path:
    return AUTOGRADER / stem / f"{stem}-autograder.zip"


def release_manifest(stem: str) -> Path:
    """The questions of a released assignment (``course.autograders``), beside its zip."""
    return AUTOGRADER / stem / "manifest.json"


def solution_notebook(stem: str) -> Path:
    return SOLUTIONS / stem / f"{stem}.ipynb"


def assignment_stems() -> list[str]:
    """The released assignments, in course order (their stems sort that way)."""
    return sorted(p.name for p in AUTOGRADER.iterdir() if autograder_zip(p.name).is_file()) \
        if AUTOGRADER.is_dir() else []
