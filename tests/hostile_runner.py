"""Runs the grader for the confinement tests, as whichever user starts it, and prints JSON.

The tests start it as root directly, and as an ordinary user through ``runuser``, so that both
ways a course grades (a server, a TA's laptop) face the same attacks:

    python -m tests.hostile_runner observe NOTEBOOK HIDDEN...   the observer notebook's findings
    python -m tests.hostile_runner grade SUBMISSIONS OUT        grade a class with short limits
    python -m tests.hostile_runner objects NOTEBOOK ZIP         grade one notebook with the checks
                                                                of an autograder zip (its cases)
    python -m tests.hostile_runner notebooks SPEC.json          grade several notebooks, each with
                                                                its autograder zip, as judge does
"""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path

from labkit.course.autograders import Assignment
from labkit.course.questions import Question
from labkit.grading import classrun, judge
from labkit.sandbox.session import ForkServerClient, NotebookSession
from labkit.grading.standins import RemoteEnv
from labkit.sandbox.confine import Limits

#: Short limits, so that the hostile classes are graded in seconds.
LIMITS = Limits(cell_seconds=8, notebook_seconds=90, call_seconds=6, memory_bytes=2 << 30)
#: The observer reads the whole of its own memory in one cell: a few seconds on a loaded machine.
OBSERVE_LIMITS = Limits(cell_seconds=60, notebook_seconds=120, call_seconds=6,
                        memory_bytes=2 << 30)


def observe(notebook: Path, hidden: list[Path]) -> dict:
    """Run the observer notebook confined and return what it saw (its ``seen`` variable)."""
    server = ForkServerClient()
    session = NotebookSession(server, notebook, notebook.name, OBSERVE_LIMITS, hidden)
    try:
        session.start()
        seen = RemoteEnv(session).get("seen")
    finally:
        session.close()
        server.close()
    return {"seen": seen, "errors": session.report.errors,
            "confinement": session.report.confinement, "fork_server_cuda": server.cuda_initialized}


def grade(submissions: Path, out: Path) -> dict:
    started = time.monotonic()
    summary = classrun.grade_class(submissions, out, workers=2, limits=LIMITS)
    return {"summary": summary, "seconds": time.monotonic() - started}


def objects(notebook: Path, zip_path: Path, questions: list[list]) -> dict:
    """Grade ``notebook`` with the test files of ``zip_path``; the grader's own peak memory
    comes back too."""
    started = time.monotonic()
    assignment = Assignment(stem=notebook.stem, zip_path=zip_path, questions=tuple(
        Question(notebook.stem, q, float(p)) for q, p in questions))
    server = ForkServerClient()
    try:
        result = judge.grade_notebook(notebook, assignment, server=server, limits=LIMITS)
    finally:
        server.close()
    return {"scores": result.scores, "problem": result.problem, "notes": result.notes,
            "cases": [case.__dict__ for case in result.cases],
            "seconds": time.monotonic() - started,
            "max_rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}


def notebooks(spec_path: Path) -> dict:
    """Grade each notebook of the spec (``{"notebooks": [{"label", "notebook", "zip",
    "questions"}]}``) with one fork server, as a worker of ``make grade`` grades one after
    another; each notebook's scores, cases, notes and seconds come back by its label."""
    spec = json.loads(spec_path.read_text())
    server = ForkServerClient()
    results = {}
    try:
        for item in spec["notebooks"]:
            zip_path, notebook = Path(item["zip"]), Path(item["notebook"])
            assignment = Assignment(stem=notebook.stem, zip_path=zip_path, questions=tuple(
                Question(notebook.stem, q, float(p)) for q, p in item["questions"]))
            started = time.monotonic()
            result = judge.grade_notebook(notebook, assignment, server=server, limits=LIMITS)
            results[item["label"]] = {
                "scores": result.scores, "problem": result.problem, "notes": result.notes,
                "cases": [case.__dict__ for case in result.cases],
                "seconds": time.monotonic() - started}
    finally:
        server.close()
    return {"results": results, "max_rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}


def main(argv: list[str]) -> int:
    command, *args = argv
    if command == "observe":
        result = observe(Path(args[0]), [Path(p) for p in args[1:]])
    elif command == "objects":
        result = objects(Path(args[0]), Path(args[1]), json.loads(args[2]))
    elif command == "notebooks":
        result = notebooks(Path(args[0]))
    else:
        result = grade(Path(args[0]), Path(args[1]))
    print(json.dumps(result, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
