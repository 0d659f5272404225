"""The kit knows no lab: every assignment, question, checks module and data set of the course is
content under ``assignments/``, found through each lab's declarative files, and none of their
names appears in ``labkit/``. A new lab is added by adding a folder (docs/instructors.md)."""

from __future__ import annotations

import re
from pathlib import Path

from labkit import paths
from labkit.course import labs, masters

KIT = paths.ROOT / "labkit"
#: Files of the kit whose text is read here (code, templates, styles, scripts).
KIT_FILES = (".py", ".j2", ".css", ".js", ".toml", ".txt")
#: Names that are also plain vocabulary, not names a lab gave: torch's ``Tensor.grad``, and
#: "digits" of precision (the data set is still caught as ``load_digits``).
GENERIC = {"grad", "digits"}


def course_names() -> set[str]:
    """What names the course's content: labs, assignment stems and their checks modules,
    question names, and the data sets the masters load (``load_<name>`` of scikit-learn)."""
    names = set(paths.lab_names())
    for master in paths.master_notebooks():
        names |= {master.stem, labs.checks_module_name(master.stem)}
        names |= {question.name for question in masters.parse(master).questions}
        for loader in set(re.findall(r"\bload_([a-z_]+)\(", master.read_text("utf-8"))):
            names |= {f"load_{loader}", loader}
    return names - GENERIC


def kit_mentions(names: set[str], root: Path = KIT) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    pattern = re.compile(r"(?<![A-Za-z0-9_])(" + "|".join(
        re.escape(name) for name in sorted(names, key=len, reverse=True)) + r")(?![A-Za-z0-9_])")
    for path in sorted(root.rglob("*")):
        if path.suffix in KIT_FILES and "__pycache__" not in path.parts:
            for match in pattern.finditer(path.read_text("utf-8")):
                found.setdefault(match.group(1), []).append(str(path.relative_to(root.parent)))
    return found


def test_the_course_has_labs_whose_names_are_known():
    names = course_names()
    assert {"lab1", "lab2"} <= names
    assert len(paths.master_notebooks()) >= 6 and len(names) > 30


def test_no_name_of_the_course_appears_in_the_kit():
    found = kit_mentions(course_names())
    assert not found, ("the kit names the course's content (put it in the lab's lab.toml or the "
                       f"assignment's grading.toml instead): {found}")


def test_the_search_finds_a_name_put_in_the_kit(tmp_path):
    """The check above can fail: a kit module that names an assignment is found."""
    kit = tmp_path / "labkit"
    kit.mkdir()
    stem = paths.master_notebooks()[0].stem
    (kit / "demo.py").write_text(f'HANGING = {{"{stem}": "x = 1"}}\n', encoding="utf-8")
    assert kit_mentions(course_names(), kit) == {stem: ["labkit/demo.py"]}
