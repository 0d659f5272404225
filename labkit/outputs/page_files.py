"""The file names of the pages the kit writes, decided here only: a student's feedback page
(``OUT/feedback/<slug>.html``, also the anchor of the student's answer on a written question's
page) and a written question's page (``OUT/manual/<assignment>-<question>.html``).

Pages link to each other (the report to feedback and written-question pages, the similarity page
to feedback pages), so every writer and every linker asks this module for a name rather than
building one. Student ids come from file names that students chose, so a page's name is a slug
built here, never the id itself.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter

_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")
_UNSAFE_CHARACTER = re.compile(r"[^A-Za-z0-9_.-]")


def _digest(student: str) -> str:
    return hashlib.sha256(student.encode("utf-8", "surrogatepass")).hexdigest()[:10]


def _slug(student: str) -> str:
    """A file-name-safe stem for one id: the id itself when it is already safe, else a cleaned
    prefix plus a hash of the id, so two ids that clean to the same text stay apart."""
    cleaned = _UNSAFE.sub("_", student).strip("._-")[:60]
    if cleaned and cleaned == student:
        return cleaned
    return f"{cleaned or 'student'}-{_digest(student)}"


def page_names(students: list[str]) -> list[str]:
    """File names (``<slug>.html``) for a list of ids, unique even ignoring case (for case-
    insensitive file systems).

    Safe ids that clash ignoring case ("Alice", "alice") both get a hash suffix, so a student's
    name does not depend on the order of the list; only an id listed twice gets "-2".
    """
    distinct = set(students)
    clashes = Counter(_slug(student).lower() for student in distinct)
    names: list[str] = []
    taken: set[str] = set()
    for student in students:
        stem = _slug(student)
        if clashes[stem.lower()] > 1 and stem == student:
            stem = f"{stem}-{_digest(student)}"
        name, number = f"{stem}.html", 1
        while name.lower() in taken:
            number += 1
            name = f"{stem}-{number}.html"
        taken.add(name.lower())
        names.append(name)
    return names


def written_page(assignment: str, question: str) -> str:
    """The file name of a written question's page in ``OUT/manual``."""
    return _UNSAFE_CHARACTER.sub("_", f"{assignment}-{question}") + ".html"
