"""The released autograders read back: which assignments exist, and their questions.

``make release`` writes, next to each autograder zip, its manifest (``autograder/<lab>/
<stem>/manifest.json``): the assignment's questions in the order of the notebook, with their points,
whether they are written (graded by hand), and a written question's prompt and solution. Grading
and everything that asks which questions exist reads that file, and nothing else: no master, no
student notebook, no test file is parsed for it, so what is graded is what was released.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from labkit import datafiles, paths

from .questions import Question

#: Bump when the manifest's layout changes; a manifest of another version is refused.
MANIFEST_VERSION = 1


class ManifestError(RuntimeError):
    """An autograder without a readable manifest: the message says which and what to do."""


@dataclass(frozen=True)
class Assignment:
    stem: str
    zip_path: Path
    #: every question, autograded and written, in the order of the notebook
    questions: tuple[Question, ...]
    #: the course's data files (``labkit.datafiles``), by the names the notebook reads them
    #: under; the autograder zip holds each as ``files/<name>``, as otter ships it
    data: tuple[str, ...] = ()

    @property
    def graded(self) -> tuple[Question, ...]:
        """The autograded questions, in the order of the notebook."""
        return tuple(q for q in self.questions if not q.written)

    @property
    def written(self) -> tuple[Question, ...]:
        """The written questions, graded by hand, in the order of the notebook."""
        return tuple(q for q in self.questions if q.written)

    @property
    def columns(self) -> tuple[Question, ...]:
        """The questions in the order of ``grades.csv``: the autograded ones, then the written."""
        return self.graded + self.written

    @property
    def max_points(self) -> float:
        """Points of the autograded questions."""
        return sum(q.points for q in self.graded)


def manifest_text(stem: str, questions: list[Question], data: list[str] = ()) -> str:
    """The manifest of an assignment, as ``make release`` writes it (the same questions give the
    same bytes, so the committed release can be checked against a fresh one). ``data``, the
    names of its data files, is written only when there are some: a manifest without the key
    means none, so the manifests of assignments without data files read as before."""
    manifest = {
        "version": MANIFEST_VERSION,
        "assignment": stem,
        "questions": [{"name": q.name, "points": q.points, "written": q.written,
                       "prompt": q.prompt, "solution": q.solution} for q in questions],
    }
    if data:
        manifest["data"] = list(data)
    return json.dumps(manifest, indent=1, ensure_ascii=False) + "\n"


def write_manifest(stem: str, questions: list[Question], data: list[str] = ()) -> Path:
    path = paths.release_manifest(stem)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(manifest_text(stem, questions, data), encoding="utf-8")
    return path


def load(stem: str) -> Assignment:
    """The released assignment ``stem``, read from its manifest."""
    path = paths.release_manifest(stem)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ManifestError(f"cannot read {path} ({error}): run `make release`") from None
    if data.get("version") != MANIFEST_VERSION or data.get("assignment") != stem:
        raise ManifestError(f"{path} is not a manifest of {stem} (version "
                            f"{MANIFEST_VERSION}): run `make release`")
    questions = tuple(Question(stem, str(item["name"]), float(item["points"]),
                               bool(item["written"]), str(item["prompt"]), str(item["solution"]))
                      for item in data["questions"])
    try:
        names = tuple(datafiles.check_names(list(data.get("data", []))))
    except (datafiles.DataFileError, TypeError) as error:
        raise ManifestError(f"{path}: {error}; run `make release`") from None
    return Assignment(stem=stem, zip_path=paths.autograder_zip(stem), questions=questions,
                      data=names)


def load_all(lab: str | None = None) -> list[Assignment]:
    """The released assignments of one lab, or of every lab."""
    return [load(stem) for stem in paths.assignment_stems(lab)]


def load_released(lab: str | None = None) -> list[Assignment]:
    """The released assignments of one lab (the course's first by default: a class is graded one
    lab at a time), for a command that needs at least one: raises ``ManifestError`` saying what
    to do when none is released or a manifest is unreadable."""
    try:
        lab = lab or paths.default_lab()
    except KeyError as error:
        raise ManifestError(f"{error.args[0]}: run `make release` first") from None
    known = paths.lab_names() or paths.released_labs()
    if lab not in known:
        raise ManifestError(f"no lab named {lab!r}; the labs are: {', '.join(known)}")
    assignments = load_all(lab)
    if not assignments:
        raise ManifestError(f"no released autograders of {lab} found: run `make release`")
    return assignments


def written_questions(assignments: list[Assignment]) -> list[Question]:
    """The written questions, in the order of ``grades.csv``."""
    return [q for assignment in assignments for q in assignment.written]
