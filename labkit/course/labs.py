"""A lab as a folder of content, read through its declarative files.

``assignments/<lab>/lab.toml`` says what the lab's notebooks need loaded before they start;
``assignments/<lab>/<stem>/grading.toml`` says what the kit needs to know about one assignment
beyond its master notebook: the demo class's mistakes, the bench's slow answers, the data files
its notebook reads. The machinery reads these rather than naming any lab, assignment, function or
data set itself, so a new lab is added by adding a folder.
"""

from __future__ import annotations

import runpy
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from labkit import paths


class SpecError(ValueError):
    """A lab's or assignment's declarative file that cannot be read; the message names it."""


@dataclass(frozen=True)
class DemoMistake:
    """An edit of the solution's text that makes the demo class's typical mistake."""

    solution: str
    mistaken: str
    what: str


@dataclass(frozen=True)
class AssignmentSpec:
    stem: str
    folder: Path
    #: the module name the hidden tests import the checks as (``labkit.checks.<name>``)
    checks_module: str
    demo_mistakes: tuple[DemoMistake, ...] = ()
    #: the demo's hanging notebook gets its endless loop before the first cell holding this text
    hanging_before: str | None = None
    #: graded function name -> a correct but slow (looping) definition, for ``make bench``
    slow_answers: dict[str, str] = field(default_factory=dict)
    #: the data files the notebook reads beside itself, as paths from ``folder``
    #: (``data = [...]``; shipped and protected as ``labkit.datafiles`` says)
    data: tuple[str, ...] = ()

    @property
    def checks_file(self) -> Path:
        return self.folder / "checks.py"

    @property
    def answers_file(self) -> Path:
        return self.folder / "answers.py"

    def answer_bank(self) -> dict:
        """The assignment's bank of answer variants (``WRONG``, ``CORRECT``, ...; see
        docs/instructors.md), empty where it has none."""
        return runpy.run_path(str(self.answers_file)) if self.answers_file.is_file() else {}


@dataclass(frozen=True)
class Lab:
    name: str
    folder: Path
    title: str
    #: modules the grader's processes import once, before any notebook of the lab starts
    preload: tuple[str, ...] = ()
    #: Python run once in the notebooks' fork server after the imports (see ``lab.toml``)
    warm_up: str = ""


def _read_toml(path: Path) -> dict:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        return {}
    except tomllib.TOMLDecodeError as error:
        raise SpecError(f"{path.relative_to(paths.ROOT) if path.is_relative_to(paths.ROOT) else path}"
                        f" is not valid TOML: {error}") from None


def checks_module_name(stem: str) -> str:
    """The module name of an assignment's checks: its stem without its number
    (``3_2_convolutions`` -> ``convolutions``); ``labkit.checks`` finds it by the same rule."""
    parts = stem.split("_", 2)
    return parts[2] if len(parts) == 3 else stem


def lab(name: str) -> Lab:
    folder = paths.ASSIGNMENTS / name
    data = _read_toml(folder / paths.LAB_FILE)
    return Lab(name=name, folder=folder, title=str(data.get("title", name)),
               preload=tuple(str(m) for m in data.get("preload", [])),
               warm_up=str(data.get("warm_up", "")))


def assignment(stem: str) -> AssignmentSpec:
    folder = paths.assignment_folder(stem)
    spec_path = folder / paths.SPEC_FILE
    data = _read_toml(spec_path)
    demo = data.get("demo", {})
    try:
        mistakes = tuple(DemoMistake(str(m["solution"]), str(m["mistaken"]), str(m["what"]))
                         for m in demo.get("mistakes", []))
    except (KeyError, TypeError) as error:
        raise SpecError(f"{spec_path}: each [[demo.mistakes]] needs solution, mistaken and what "
                        f"({error})") from None
    names = data.get("data", [])
    if not isinstance(names, list) or not all(isinstance(name, str) for name in names):
        raise SpecError(f"{spec_path}: `data` must be a list of file names, as in "
                        f'data = ["points.csv"]')
    return AssignmentSpec(
        stem=stem, folder=folder,
        checks_module=checks_module_name(stem),
        demo_mistakes=mistakes, hanging_before=demo.get("hanging_before"),
        slow_answers={str(k): str(v) for k, v in data.get("bench", {}).get("slow", {}).items()},
        data=tuple(names))


def stems(lab_name: str | None = None) -> list[str]:
    """The assignments whose masters are in the course (of one lab, or every lab), in order."""
    return [m.stem for m in paths.master_notebooks(lab_name)]


def preload(lab_name: str) -> tuple[str, ...]:
    """What the grader's processes import before grading this lab: the lab's preload and the
    checks module of each of its assignments."""
    return (*lab(lab_name).preload,
            *(f"labkit.checks.{assignment(stem).checks_module}" for stem in stems(lab_name)))
