"""Prove the GPU half of grading in one run: the checks run on CUDA and no grade changes.

A GPU machine is available only now and then, for minutes, so everything is done by one command
(``tools/gpu-check``, ``make gpu-check``) that fits in about three minutes on 16 cores:

1. says which Python, torch and GPU it runs on;
2. runs the ``cuda``-marked tests (``pytest -m cuda``), among them one test per released hidden
   check that asserts the check handed CUDA tensors to the reference solution and passed;
3. grades a class through the real path (``python -m labkit grade``: workers, fork server,
   sandboxed notebooks) twice at once: with the GPU visible, and hidden from the grader
   (``CUDA_VISIBLE_DEVICES=``); the class is the demo class, the three solution notebooks, and the
   solutions with answers that only a GPU can catch (the ``GPU_ONLY`` answers of each answer bank) put in;
4. compares the two gradebooks: a grade that differs fails the run, except that those GPU-only
   answers must lose points with the GPU (else the GPU pass never judged on CUDA) and keep full
   marks without it.

Without a GPU the same run works and says plainly that the CUDA checks were skipped. It runs from a
checkout (it reads ``tests/`` and the releases).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass, field
from pathlib import Path

from . import paths
from .course import labs
from .course.questions import column_key

#: The census test in tests/test_gpu.py: one case per released hidden check, run on CUDA.
CENSUS_TEST = "test_every_hidden_check_runs_on_cuda_and_passes_the_reference_solution"
#: Entries of the graded class that gpu-check adds to the demo class.
SOLUTION_PREFIX = "solution-"
GPU_ONLY_PREFIX = "gpu-only-"

_DEVICE_PROBE = """
import json, platform, torch
info = {"python": platform.python_version(), "torch": torch.__version__,
        "cuda_build": torch.version.cuda, "cuda": torch.cuda.is_available()}
if info["cuda"]:
    props = torch.cuda.get_device_properties(0)
    info.update(gpu=props.name, memory_gib=props.total_memory / 2**30,
                gpus=torch.cuda.device_count(), capability=list(torch.cuda.get_device_capability(0)))
print(json.dumps(info))
"""


def device_info() -> dict:
    """Python, torch and GPU, asked in a separate process (this one never initialises CUDA)."""
    result = subprocess.run([sys.executable, "-c", _DEVICE_PROBE], capture_output=True, text=True,
                            timeout=120)
    if result.returncode != 0:
        raise SystemExit(f"gpu-check: torch cannot be imported:\n{result.stderr[-2000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def gpu_only_answers(stems: list[str] | None = None) -> dict[str, dict[str, str]]:
    """stem -> question -> the source of one answer that only a GPU can catch (the ``GPU_ONLY``
    answers of each assignment's answer bank, ``assignments/<lab>/<stem>/answers.py``)."""
    found = {}
    for stem in stems if stems is not None else labs.stems():
        questions = labs.assignment(stem).answer_bank().get("GPU_ONLY", {})
        if questions:
            found[stem] = {question: next(iter(variants.values()))
                           for question, variants in questions.items()}
    return found


def _with_cell(notebook: Path, source: str, target: Path) -> None:
    """A copy of ``notebook`` with one more code cell at the end (its definitions win)."""
    nb = json.loads(notebook.read_text("utf-8"))
    nb["cells"].append({"cell_type": "code", "execution_count": None, "id": "gpu-only-answers",
                        "metadata": {}, "outputs": [], "source": source})
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(nb, indent=1), "utf-8")


#: What the answers of the answer banks may assume (a notebook need not import math or F itself).
_ANSWER_IMPORTS = "import math\n\nimport torch\nimport torch.nn.functional as F\n"


def build_class(folder: Path, stems: list[str], *, demo: bool) -> dict[str, dict[str, str]]:
    """Write the class to grade into ``folder``: the demo class (when ``demo``), and per
    assignment its solution and the solution with the GPU-only answers put in; returns those
    answers (stem -> question -> source)."""
    if demo:
        shutil.copytree(paths.demo_submissions(paths.lab_of(stems[0])), folder)
    folder.mkdir(parents=True, exist_ok=True)
    answers = gpu_only_answers(stems)
    for stem in stems:
        solution = paths.solution_notebook(stem)
        # One entry per notebook: students are graded in parallel, a student's notebooks in turn.
        shutil.copytree(solution.parent, folder / f"{SOLUTION_PREFIX}{stem}")
        if stem in answers:
            _with_cell(solution, "\n\n".join([_ANSWER_IMPORTS, *answers[stem].values()]),
                       folder / f"{GPU_ONLY_PREFIX}{stem}" / solution.name)
    return answers


@dataclass
class Gradebook:
    #: student -> column ("<stem>/<question>", "total") -> points ("" for ungraded written ones)
    points: dict[str, dict[str, str]] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)


def read_grades(path: Path) -> Gradebook:
    book = Gradebook()
    with open(path, newline="", encoding="utf-8") as stream:
        for row in csv.DictReader(stream):
            student = row.pop("student")
            book.notes[student] = row.pop("notes", "")
            book.points[student] = row
    return book


def read_points(path: Path) -> dict[str, float]:
    """"<stem>/<question>" -> points, for the autograded questions of ``questions.csv``."""
    with open(path, newline="", encoding="utf-8") as stream:
        return {column_key(r["assignment"], r["question"]): float(r["points"])
                for r in csv.DictReader(stream) if r["manual"] != "true"}


@dataclass
class TestRun:
    returncode: int
    passed: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)


def read_junit(path: Path, returncode: int) -> TestRun:
    run = TestRun(returncode)
    if not path.is_file():
        return run
    for case in ElementTree.parse(path).getroot().iter("testcase"):
        name = case.get("name", "")
        outcome = next((c for c in case if c.tag in ("failure", "error", "skipped")), None)
        if outcome is None:
            run.passed.append(name)
        elif outcome.tag == "skipped":
            run.skipped.append((name, outcome.get("message", "")))
        else:
            run.failed.append((name, (outcome.get("message") or outcome.text or "").strip()))
    return run


def _census_id(name: str) -> str | None:
    """'1_1/test_pinv_svd_values' from the census test's name, or None for other tests."""
    if not name.startswith(CENSUS_TEST + "["):
        return None
    return name[len(CENSUS_TEST) + 1:-1]


def _grade_command(submissions: Path, out: Path, args: argparse.Namespace, workers: int,
                   confined: bool) -> list[str]:
    return [sys.executable, "-m", "labkit", "grade", "--lab", args.lab,
            "--submissions", str(submissions),
            "--out", str(out), "--workers", str(workers), "--timeout", str(args.timeout),
            "--cell-timeout", str(args.cell_timeout), *([] if confined else ["--unconfined"])]


def confinement() -> bool:
    """Say whether notebooks can be confined here; grading goes on unconfined where they cannot
    (this check is about devices; the confinement has its own tests)."""
    from .sandbox import confine

    reason = confine.probe()
    if reason is None:
        print("gpu-check: notebooks are confined (user, pid, mount, network namespaces)")
        return True
    print(f"gpu-check: notebooks cannot be confined here, grading --unconfined: {reason}")
    return False


@dataclass
class Job:
    """A command run in the background, in a process group of its own, its output in a log."""

    name: str
    process: subprocess.Popen
    log: Path
    started: float
    seconds: float = 0.0
    #: the exit status; None while it runs, and for a job stopped at the deadline
    code: int | None = None
    stopped: bool = False

    @property
    def done(self) -> bool:
        return self.code is not None or self.stopped


def _start(name: str, command: list[str], log: Path, env: dict[str, str] | None = None) -> Job:
    with open(log, "w", encoding="utf-8") as stream:
        process = subprocess.Popen(command, cwd=paths.ROOT, stdout=stream,
                                   stderr=subprocess.STDOUT, env=env, stdin=subprocess.DEVNULL,
                                   start_new_session=True)
    return Job(name, process, log, time.monotonic())


def _wait(jobs: list[Job], deadline: float) -> None:
    """Wait for every job; at the deadline, stop those still running (their whole group: the
    grader's workers and fork servers; the notebooks die with their fork server)."""
    while not all(job.done for job in jobs):
        now = time.monotonic()
        for job in jobs:
            if job.done:
                continue
            code = job.process.poll()
            if code is not None:
                job.code, job.seconds = code, now - job.started
            elif now >= deadline:
                try:
                    os.killpg(job.process.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                job.process.wait()
                job.stopped, job.seconds = True, now - job.started
        time.sleep(0.2)


def _tail(path: Path, lines: int = 15) -> str:
    text = path.read_text("utf-8", errors="replace").splitlines() if path.is_file() else []
    if not any(line.strip() for line in text):
        return f"    (nothing printed yet in {path.name})"
    return "\n".join("    " + line for line in text[-lines:])


def compare(cpu: Gradebook, gpu: Gradebook, points: dict[str, float],
            answers: dict[str, dict[str, str]], cuda: bool) -> tuple[list[str], list[str]]:
    """(problems, expected GPU-only losses) between the two gradebooks."""
    problems, losses = [], []
    for student in sorted(set(cpu.points) | set(gpu.points)):
        if student not in cpu.points or student not in gpu.points:
            problems.append(f"{student}: graded in one pass only")
            continue
        canary = {column_key(student[len(GPU_ONLY_PREFIX):], question)
                  for question in answers.get(student[len(GPU_ONLY_PREFIX):], {})} \
            if student.startswith(GPU_ONLY_PREFIX) else set()
        for column, on_cpu in cpu.points[student].items():
            on_gpu = gpu.points[student].get(column)
            if column in canary:
                full = points[column]
                if float(on_cpu) != full:
                    problems.append(f"{student} {column}: an answer only a GPU can catch got "
                                    f"{on_cpu}/{full:g} without the GPU (a CPU grader must not deduct)")
                if cuda and float(on_gpu) >= full:
                    problems.append(f"{student} {column}: an answer only a GPU can catch kept "
                                    f"{on_gpu}/{full:g} with the GPU: the GPU pass did not judge on cuda")
                elif cuda:
                    losses.append(f"{column}: {on_cpu} without the GPU, {on_gpu} with it")
            elif column == "total" and canary:
                continue
            elif on_cpu != on_gpu:
                problems.append(f"{student} {column}: {on_cpu} without the GPU, {on_gpu} with it")
        if student.startswith(SOLUTION_PREFIX):
            stem = student[len(SOLUTION_PREFIX):]
            for column, full in points.items():
                if column.startswith(stem + "/"):
                    for label, book in (("without", cpu), ("with", gpu)):
                        got = book.points[student].get(column, "")
                        if got == "" or float(got) != full:
                            problems.append(f"the solution of {column} got {got}/{full:g} {label} "
                                            "the GPU")
    return problems, losses


def _report_tests(run: TestRun, job: Job, cuda: bool) -> list[str]:
    """Print what the cuda tests showed (per hidden check, whether it ran on cuda); return the
    problems."""
    census = [check for name in run.passed if (check := _census_id(name))]
    census_failed = [(check, message) for name, message in run.failed
                     if (check := _census_id(name))]
    problems = []
    if not job.stopped and job.code not in (0, 5) and not run.failed:
        problems.append(f"pytest -m cuda exited with {job.code}:\n" + _tail(job.log))
    problems += [f"cuda test failed: {name}: {_first_line(message)}"
                 for name, message in run.failed if not _census_id(name)]
    problems += [f"hidden check {check} on cuda: {_first_line(message)}"
                 for check, message in census_failed]

    print(f"\ncuda tests (pytest -m cuda, {job.seconds:.0f} s): {len(run.passed)} passed, "
          f"{len(run.failed)} failed, {len(run.skipped)} skipped")
    if not cuda:
        print("  CUDA checks skipped: this machine has no CUDA GPU")
        return problems
    print(f"  hidden checks that ran on cuda and passed the reference solution: "
          f"{len(census)} of {len(census) + len(census_failed)}")
    by_stem: dict[str, list[str]] = {}
    for check in sorted(census):
        stem, name = check.split("/", 1)
        by_stem.setdefault(stem, []).append(name.removeprefix("test_"))
    for stem, names in by_stem.items():
        print(f"    {stem}: {', '.join(names)}")
    for check, message in census_failed:
        print(f"    NOT on cuda, or failed: {check}: {_first_line(message)}")
    return problems


def _first_line(message: str) -> str:
    return message.splitlines()[0] if message else "failed"


def _report_grades(out: Path, passes: list[Job], answers: dict[str, dict[str, str]],
                   cuda: bool) -> list[str]:
    """Print how the two grading passes compare; return the problems."""
    gpu, cpu = (read_grades(out / job.name / "grades.csv") for job in passes)
    points = read_points(out / "gpu" / "questions.csv")
    problems, losses = compare(cpu, gpu, points, answers, cuda)
    print(f"\ngrades ({passes[0].seconds:.0f} s with the GPU visible, {passes[1].seconds:.0f} s "
          f"hidden): {len(gpu.points)} submissions, {len(problems)} problem(s)")
    for job in passes:
        summary = [line for line in job.log.read_text("utf-8").splitlines()
                   if line.startswith("graded ")]
        label = "with the GPU   " if job.name == "gpu" else "without the GPU"
        print(f"  {label}: {summary[-1].split('; results')[0] if summary else '(no summary)'}")
    if cuda:
        print("  answers only a GPU can catch: full marks without the GPU, fewer with it:")
        for loss in losses:
            print(f"    {loss}")
    for student in sorted(s for s in cpu.notes if cpu.notes[s] != gpu.notes.get(s)):
        print(f"  notes differ for {student}:\n    without the GPU: {cpu.notes[student]}\n"
              f"    with the GPU: {gpu.notes.get(student)}")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="gpu-check", description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=None,
                        help="folder for the gradebooks and logs (default: a new temporary folder)")
    parser.add_argument("--quick", action="store_true",
                        help="grade only the solutions and the GPU-only answers, not the demo class")
    parser.add_argument("--lab", default=None, choices=paths.released_labs() or None,
                        help="the lab to check (default: the course's first)")
    parser.add_argument("--assignment", action="append", choices=paths.assignment_stems(),
                        help="grade the solution and GPU-only answers of this assignment only "
                             "(repeatable; default: every assignment of the lab)")
    parser.add_argument("--workers", type=int, default=None,
                        help="workers per grading pass (default: half the cores, the two passes "
                             "run at once)")
    parser.add_argument("--cell-timeout", type=int, default=20,
                        help="seconds a cell may run (the demo has a cell that hangs; default 20)")
    parser.add_argument("--timeout", type=int, default=180,
                        help="seconds a notebook may run in all (default 180)")
    parser.add_argument("--deadline", type=int, default=270,
                        help="seconds the whole check may take; what still runs then is stopped "
                             "and reported (default 270: a GPU machine is lent for minutes)")
    args = parser.parse_args(argv)
    args.lab = args.lab or (paths.lab_of(args.assignment[0]) if args.assignment
                            else paths.default_lab())
    if args.assignment and {paths.lab_of(stem) for stem in args.assignment} != {args.lab}:
        parser.error(f"--assignment: name assignments of {args.lab} only (one lab at a time)")
    started = time.monotonic()

    info = device_info()
    cuda = bool(info["cuda"])
    print(f"gpu-check: Python {info['python']}, torch {info['torch']} "
          f"(built for CUDA {info['cuda_build'] or 'none: a CPU build'})")
    if cuda:
        print(f"gpu-check: GPU {info['gpu']}, {info['memory_gib']:.1f} GiB, compute capability "
              f"{'.'.join(map(str, info['capability']))} ({info['gpus']} visible)")
    else:
        print("gpu-check: no CUDA GPU (torch.cuda.is_available() is False): the CUDA checks will "
              "be skipped; both grading passes run on the CPU")

    confined = confinement()
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="labkit-gpu-check-"))
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    submissions = out / "submissions"
    answers = build_class(submissions, args.assignment or paths.assignment_stems(args.lab),
                          demo=not args.quick)
    entries = len(list(submissions.iterdir()))
    workers = args.workers or max(1, min(entries, (os.cpu_count() or 2) // 2))

    print(f"gpu-check: grading {entries} submissions twice at once ({workers} workers each), and "
          "running the cuda tests ...", flush=True)
    no_gpu = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    junit = out / "cuda-tests.xml"
    tests = _start("cuda tests", [sys.executable, "-m", "pytest", "-m", "cuda", "-q",
                                  "-p", "no:cacheprovider", "-rfE", f"--junitxml={junit}", "tests"],
                   out / "cuda-tests.log")
    passes = [_start("gpu", _grade_command(submissions, out / "gpu", args, workers, confined),
                     out / "gpu.log"),
              _start("cpu", _grade_command(submissions, out / "cpu", args, workers, confined),
                     out / "cpu.log", env=no_gpu)]
    _wait([tests, *passes], started + args.deadline)

    problems: list[str] = []
    for job in (tests, *passes):
        if job.stopped:
            problems.append(f"{job.name}: stopped after {job.seconds:.0f} s, at the deadline "
                            f"(--deadline {args.deadline}):\n" + _tail(job.log))
    problems += _report_tests(read_junit(junit, tests.code or 0), tests, cuda)
    for job in passes:
        if job.code not in (0, None):
            problems.append(f"the {job.name} grading pass exited with {job.code}:\n" +
                            _tail(job.log))
    if all(job.code == 0 for job in passes):
        problems += _report_grades(out, passes, answers, cuda)

    print(f"\ngpu-check: {time.monotonic() - started:.0f} s in all; gradebooks and logs in {out}")
    if problems:
        print(f"gpu-check: FAILED ({len(problems)} problem(s)):")
        for problem in problems:
            print(f"  - {problem}")
        return 1
    print("gpu-check: OK" + ("" if cuda else " (CPU only: the CUDA checks were skipped)"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
