"""``student/README.md``: the students' guide, released from ``docs/students.md``.

Students clone ``student/`` alone, so it needs a README of its own; and the course's documentation
needs the same guide for the teaching team to read and link. One text serves both: the part of
``docs/students.md`` between the two markers below is copied, under a title and a line that says
where it comes from, so the released guide cannot drift from the documented one.
"""

from __future__ import annotations

from pathlib import Path

from labkit.paths import ROOT, STUDENT

SOURCE = ROOT / "docs" / "students.md"
TARGET = STUDENT / "README.md"
START = "<!-- student-readme:start -->"
END = "<!-- student-readme:end -->"
TITLE = '# Lab 1 "Introducing PyTorch": your notebooks'


class MarkersMissing(ValueError):
    """The source has lost the markers around the part released to students."""


def render(source: str) -> str:
    """The released README for the text of ``docs/students.md``."""
    start, end = source.find(START), source.find(END)
    if start < 0 or end < start:
        raise MarkersMissing(f"{SOURCE.relative_to(ROOT)} must hold {START} ... {END} around "
                             "the part released as student/README.md")
    section = source[start + len(START):end].strip("\n")
    return (f"{TITLE}\n\n<!-- Released by `make release` from docs/students.md: edit that file. -->"
            f"\n\n{section}\n")


def write(source: Path = SOURCE, target: Path = TARGET) -> None:
    target.write_text(render(source.read_text(encoding="utf-8")), encoding="utf-8")
