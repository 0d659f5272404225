"""Pinned versions, read from the one pinned requirements file (``requirements.txt``, the grading
environment), and the students' own short requirements file made from it.

Students need five packages, not the grading environment's hundred-odd pins (sphinx and
playwright come with otter's extras). Their file, ``student/requirements.txt``, is written by
``make release`` with each package pinned to the grading environment's version, so a student's
``pip install -r requirements.txt`` resolves to the versions the kit is tested with; the packages
those five pull in are left to pip.
"""

from __future__ import annotations

import re
from pathlib import Path

from labkit.paths import ROOT

#: What a student installs to work locally: the lab's libraries, the grading client, JupyterLab.
STUDENT_PACKAGES = ("torch", "scikit-learn", "matplotlib", "otter-grader", "jupyterlab")


def pinned(text: str) -> dict[str, str]:
    """Normalised package name (PEP 503) -> pinned version, for each ``name==version`` line."""
    pins = {}
    for line in text.splitlines():
        match = re.match(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*==\s*([^\s#;]+)", line)
        if match:
            pins[re.sub(r"[-_.]+", "-", match.group(1)).lower()] = match.group(2)
    return pins


def _pin(package: str) -> str:
    version = pinned((ROOT / "requirements.txt").read_text(encoding="utf-8")).get(package)
    if version is None:
        raise RuntimeError(f"{package} is not pinned in requirements.txt")
    return f"{package}=={version}"


def student_requirements() -> str:
    """The text of ``student/requirements.txt``."""
    return ("# What you need to work on the lab on your own computer (Python 3.11):\n"
            "#   pip install -r requirements.txt\n"
            "#   jupyter lab\n"
            "# The versions are the ones the notebooks are graded with.\n"
            + "".join(f"{_pin(package)}\n" for package in STUDENT_PACKAGES))


def write_student_requirements(path: Path) -> None:
    path.write_text(student_requirements(), encoding="utf-8")


#: What a student's environment installs where otter is missing.
OTTER = _pin("otter-grader")
