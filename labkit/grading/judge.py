"""Grade one notebook with one released autograder: the single place where grading happens.

The notebook runs in a confined process (``labkit.sandbox.session``); the autograder's own test
files (otter's format, from the released zip) run here, in the grader, case by case
(``outcomes``), against proxies of the notebook's names (``standins``). The student's code never
shares a process with a test, a reference or a comparison.

Each question is judged where otter's autograder judges it (``checkpoints``): the notebook runs
up to the question's check cell, the question's tests run on the notebook as it stands there,
and the notebook goes on to the next check cell.
"""

from __future__ import annotations

import functools
import sys
import types
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from otter.test_files import ExceptionTestFile

from labkit import notebooks
from labkit.checks import core
from labkit.course.autograders import Assignment
from labkit.outputs.results import CaseOutcome
from labkit.sandbox.confine import Limits
from labkit.sandbox.session import (ForkServerClient, GraderFailure, NotebookRejected,
                                    NotebookSession, SessionFailed)
from . import checkpoints, course_data, keys, outcomes
from .standins import RemoteEnv

#: At most this many crashed cells are named in the notes (the first ones: later errors often
#: follow from them).
MAX_CRASH_NOTES = 3


@dataclass
class NotebookResult:
    assignment: str
    #: question -> points earned
    scores: dict[str, float] = field(default_factory=dict)
    cases: list[CaseOutcome] = field(default_factory=list)
    #: what went wrong with the notebook as a whole, in words
    notes: list[str] = field(default_factory=list)
    #: None when the notebook could be run at all
    problem: str | None = None


def _readable(notebook: Path) -> str | None:
    """Why the file cannot be graded as a notebook, or None."""
    try:
        nb = notebooks.read(notebook)
    except Exception as error:  # not JSON, not a notebook, truncated, binary...
        return f"not a readable notebook ({type(error).__name__})"
    if not any(cell.cell_type == "code" for cell in nb.cells):
        return "the notebook has no code cells"
    return None


@functools.lru_cache(maxsize=None)
def _test_sources(zip_path: Path, size: int, modified: int) -> tuple[tuple[str, str], ...]:
    """The test files of an autograder zip, read once per worker (keyed by the zip's size and
    time too, so that a zip released again is read again)."""
    with zipfile.ZipFile(zip_path) as archive:
        return tuple((name, archive.read(name).decode("utf-8")) for name in archive.namelist()
                     if name.startswith("tests/") and name.endswith(".py"))


#: Where an autograder zip holds the hidden-test helpers its tests import (``labkit.checks.*``).
_ZIP_CHECKS = "files/labkit/checks/"


@functools.lru_cache(maxsize=None)
def _install_checks(zip_path: Path, size: int, modified: int) -> tuple[str, ...]:
    """Import the assignment's own checks module(s) from its autograder zip as
    ``labkit.checks.<name>``, so that the tests run with the checks that were released (as
    ``otter run`` would), wherever the course's content is. The shared modules are the kit's."""
    import labkit.checks

    shared = Path(labkit.checks.__file__).parent
    installed = []
    with zipfile.ZipFile(zip_path) as archive:
        for name in archive.namelist():
            module = name[len(_ZIP_CHECKS):-len(".py")] if name.startswith(_ZIP_CHECKS) \
                and name.endswith(".py") else ""
            if not module.isidentifier() or (shared / f"{module}.py").is_file():
                continue
            fullname = f"labkit.checks.{module}"
            loaded = types.ModuleType(fullname)
            loaded.__file__ = str(zip_path / name)
            loaded.__package__ = "labkit.checks"
            sys.modules[fullname] = loaded
            exec(compile(archive.read(name).decode("utf-8"), loaded.__file__, "exec"),
                 loaded.__dict__)
            setattr(labkit.checks, module, loaded)
            installed.append(fullname)
    return tuple(installed)


def _test_files(assignment: Assignment) -> list[ExceptionTestFile]:
    """The test files as otter parses them (their cases, each case's points) in the order of the
    questions; parsed anew for each notebook, so that nothing a test leaves in its file's globals
    reaches the next notebook's grading."""
    stat = assignment.zip_path.stat()
    _install_checks(assignment.zip_path, stat.st_size, stat.st_mtime_ns)
    sources = _test_sources(assignment.zip_path, stat.st_size, stat.st_mtime_ns)
    order = {question.name: i for i, question in enumerate(assignment.graded)}
    files = [ExceptionTestFile.from_string(source, path=name) for name, source in sources]
    return sorted(files, key=lambda f: order.get(f.name, len(order)))


class _TestEnv(dict):
    """The notebook's names as otter's tests receive them: a name the notebook does not define
    comes as a ``core.MissingName``, so a test that calls it says "no function named ...", and
    why when a cell that sets the name raised or was stopped, or runs only after the check
    (``missing_name``)."""

    def __init__(self, names: RemoteEnv,
                 missing: Callable[[str], core.MissingName] = core.MissingName):
        super().__init__()
        self._names = names
        self._missing = missing

    def get(self, name: str, default: object = None) -> object:
        value = self._names.get(name, _ABSENT)
        return self._missing(name) if value is _ABSENT else value

    def __getitem__(self, name: str) -> object:
        return self._names[name]

    def __contains__(self, name: object) -> bool:
        return name in self._names


_ABSENT = object()


def first_line(text: str) -> str:
    """The first line of an error text, cut to ``core.MAX_ERROR_CHARS`` characters."""
    line = text.strip().split("\n", 1)[0]
    return line if len(line) <= core.MAX_ERROR_CHARS else line[: core.MAX_ERROR_CHARS - 3] + "..."


def why_missing(session: NotebookSession, name: str) -> str:
    """Why the notebook lacks ``name``, when a cell that sets it did not run to its end (it
    raised, or was stopped for time or memory): that cell, by its name, and what happened;
    else ""."""
    report = session.report
    for index in session.binding_cells(name):
        cell = session.cell_name(index)
        for stopped, how in ((report.fatal, "was left out"), (report.interrupted, "was interrupted")):
            if index in stopped:
                reason = stopped[index].removeprefix(cell).strip()
                return f"{cell} {how} ({reason})"
        if index in report.errors:
            return f"{cell} raised an error ({first_line(report.errors[index])})"
    return ""


def missing_name(session: NotebookSession, name: str) -> core.MissingName:
    """What a test receives for a name the notebook lacks where the question is judged: why,
    when a cell before that point that sets it did not run to its end (``why_missing``), or
    that a cell defines it only after the question's check cell
    (``checkpoints.DefinedAfterCheck``)."""
    cause = why_missing(session, name)
    later = [index for index in session.binding_cells(name) if index >= session.position]
    if cause or not later or session.position == 0:
        return core.MissingName(name, cause)
    return checkpoints.DefinedAfterCheck(name, session.cell_name(later[0]),
                                         session.cell_name(session.position - 1))


def _crash_notes(session: NotebookSession, errors: dict[int, str]) -> list[str]:
    """One note per code cell that raised (the first MAX_CRASH_NOTES), named as a student finds
    it (``NotebookSession.cell_name``), with the error's first line."""
    ordered = sorted(errors.items())
    notes = [f"{session.cell_name(index)} raised an error: {first_line(text)}"
             for index, text in ordered[:MAX_CRASH_NOTES]]
    if len(ordered) > MAX_CRASH_NOTES:
        more = len(ordered) - MAX_CRASH_NOTES
        notes[-1] += f" (and {more} later cell{'s' if more > 1 else ''} raised errors too)"
    return notes


def _session_notes(session: NotebookSession, limits: Limits) -> list[str]:
    report, notes = session.report, []
    stopped = report.fatal.keys() | report.interrupted.keys()
    notes.extend(_crash_notes(session, {i: t for i, t in report.errors.items()
                                        if i not in stopped}))
    for index, reason in sorted(report.interrupted.items()):
        notes.append(f"{reason}; it was interrupted there and the notebook went on")
    for index, reason in sorted(report.fatal.items()):
        notes.append(f"{reason}; graded without {session.cell_name(index)}")
    if report.output_bytes > limits.output_bytes:
        notes.append(f"printed {report.output_bytes >> 20} MB; output kept to the first "
                     f"{limits.output_bytes >> 10} kB")
    return notes


def grade_notebook(
    notebook: Path, assignment: Assignment, *, server: ForkServerClient, limits: Limits,
    hidden: list[Path] = (),
) -> NotebookResult:
    result = NotebookResult(assignment=assignment.stem)
    problem = _readable(notebook)
    if problem:
        result.problem = problem
        return result
    # The course's data files, read-only in the notebook's working folder; only the notebook of
    # a submission is graded, so a file of the same name that it brought never replaces them.
    session = NotebookSession(server, notebook, f"{assignment.stem}.ipynb", limits, list(hidden),
                              course_data.sources(assignment))
    try:
        # This notebook's own hidden inputs (see labkit.grading.keys).
        core.set_key(keys.notebook_key(notebook.read_bytes(), keys.grading_secret()))
        test_files = {test_file.name: test_file for test_file in _test_files(assignment)}
        graded = _judge_at_checks(session, test_files, result.notes)
        if isinstance(graded, str):
            result.problem = graded
            return result
        for name in test_files:  # in the questions' order, wherever each was judged
            result.scores[name], cases = graded[name]
            result.cases.extend(cases)
    finally:
        core.set_key(None)
        session.close()  # whatever happened; it also counts the printed output, so notes follow
        result.notes.extend(_session_notes(session, limits))
    return result


def _judge_at_checks(session: NotebookSession, test_files: dict[str, ExceptionTestFile],
                     notes: list[str]) -> dict[str, tuple[float, list[CaseOutcome]]] | str:
    """Run the notebook from one check cell to the next (``checkpoints.stops``), judging each
    question on the notebook as it stands after its own; each question's score and outcomes,
    or why the notebook as a whole could not be graded.

    When the notebook stops for good part of the way (its time in all, too many crashed cells),
    the questions already judged keep their grades and the others get ``STOPPED`` outcomes
    saying so; when it stops before any question was judged, or because it broke the grader's
    protocol (``NotebookRejected``: nothing it answered can be trusted) or the grader failed to
    start it (``GraderFailure``), nothing is graded and the reason is the notebook's problem.
    """
    env = _TestEnv(RemoteEnv(session), functools.partial(missing_name, session))
    graded: dict[str, tuple[float, list[CaseOutcome]]] = {}
    stops = checkpoints.stops(session.sources, list(test_files))
    try:
        for stop in stops:
            session.run_to(None if stop.cell is None else stop.cell + 1)
            if stop.cell is None and stop.questions:
                notes.append(checkpoints.at_end_note(list(stop.questions)))
            for name in stop.questions:
                graded[name] = outcomes.run_question(test_files[name], env)
    except SessionFailed as failure:
        if not graded or isinstance(failure, (NotebookRejected, GraderFailure)):
            return f"the notebook could not be run: {failure}"
        left = [name for name in test_files if name not in graded]
        notes.append(f"the notebook stopped before {', '.join(left)} could be judged: {failure}")
        for name, test_file in test_files.items():
            if name not in graded:
                graded[name] = outcomes.not_run(test_file, (
                    f"Not judged: the notebook stopped before this question's check ran "
                    f"({failure}). Make the cells above it finish within the limits."))
    return graded
