"""Pinned versions, read from the one pinned requirements file (``requirements.txt``, the grading
environment), the students' own short requirements file made from it, and the requirements the
autograder zip's grading image installs.

Students need five packages, not the grading environment's hundred-odd pins (sphinx and
playwright come with otter's extras). Their file, ``student/requirements.txt``, is written by
``make release`` with each package pinned to the grading environment's version, so a student's
``pip install -r requirements.txt`` resolves to the versions the kit is tested with; the packages
those five pull in are left to pip. They keep torch from the default index: a student's machine,
JupyterHub or Colab may have a GPU, and the CUDA build is what uses it (their file says how to
take the CPU build instead). The grading image has no GPU, so its requirements name the CPU
build (``grading_requirements``).
"""

from __future__ import annotations

import re
from pathlib import Path

from labkit.paths import ASSIGNMENTS, ROOT

#: What a student installs to work locally: the lab's libraries, the grading client, JupyterLab.
STUDENT_PACKAGES = ("torch", "scikit-learn", "matplotlib", "otter-grader", "jupyterlab")
#: Where PyTorch publishes its CPU-only builds. The default index (PyPI) serves Linux the CUDA
#: build, which pulls in some 2 GB of NVIDIA libraries a grading image without a GPU never uses.
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"
#: The machines PyTorch's CPU index has ``+cpu`` builds for; Gradescope's images are x86-64.
_CPU_BUILD_MARKER = 'platform_machine == "x86_64"'


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
            "# The versions are the ones the notebooks are graded with. On Linux without an\n"
            "# NVIDIA GPU, torch's CPU build is some 2 GB smaller to download:\n"
            f"#   pip install -r requirements.txt --extra-index-url {TORCH_CPU_INDEX}\n"
            + "".join(f"{_pin(package)}\n" for package in STUDENT_PACKAGES))


def write_student_requirements(path: Path) -> None:
    path.write_text(student_requirements(), encoding="utf-8")


#: What a student's environment installs where otter is missing.
OTTER = _pin("otter-grader")


def grading_requirements(source: Path | None = None) -> str:
    """The autograder's ``requirements.txt``, made from ``assignments/requirements.txt``: the
    same pins, but torch's CPU build from PyTorch's CPU index on x86-64.

    otter puts each line into the pip section of the zip's ``environment.yml``, which the zip's
    ``setup.sh`` installs (``mamba env create``, through pip) when Gradescope builds the image:
    an index option line is passed on to pip as in a requirements file, in its ``--opt=value``
    form, which pip also reads as a single argument. ``torch==X+cpu`` exists only on that index;
    elsewhere (an ARM image) the plain pin stays, and pip prefers a ``+cpu`` build of it where
    the index has one (a local version label sorts after the public version).
    """
    text = (source or ASSIGNMENTS / "requirements.txt").read_text(encoding="utf-8")
    lines = [f"--extra-index-url={TORCH_CPU_INDEX}"]
    for line in text.splitlines():
        if version := pinned(line).get("torch"):
            lines += [f"torch=={version}+cpu; {_CPU_BUILD_MARKER}",
                      f"torch=={version}; platform_machine != \"x86_64\""]
        else:
            lines.append(line)
    if not any(line.startswith("torch==") for line in lines):
        raise RuntimeError("assignments/requirements.txt pins no torch version (torch==X.Y.Z)")
    return "\n".join(lines) + "\n"
