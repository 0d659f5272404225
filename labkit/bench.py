"""``make bench``: what grading costs, next to what the notebooks' own code costs and ``otter run``.

Every figure comes from one run on this machine:

- **Marginal cost per notebook**: the kit (``python -m labkit grade``, a fresh process each time, as
  a TA runs it) grades a small and a large class of copies of the reference submission (the three
  solution notebooks); the difference in time, times the workers, over the difference in
  notebooks, is what one more notebook costs in worker-seconds.
- **The notebooks' own cost**: the same cells run a second time in an interpreter that already
  holds torch and has run them once (one thread), averaged over the notebooks: what the students'
  code costs, without any grading.
- **Fixed start**: what the kit's time would be with no notebook at all (the line through the two
  class sizes, at zero).
- **Peak memory per worker**: the proportional set size (PSS: shared pages counted once, split
  between their processes) of the grader and everything it started, at its peak, over the workers,
  sampled in a run of its own on the large class (sampling slows what it samples).
- **otter run**: the large class graded by ``otter run`` with the kit's own autograder zips, as
  many at a time as the kit has workers.
- **Similarity**: ``make similarity`` on a synthetic class of 500 (``labkit.similarity.bench``):
  every question's 124,750 pairs, nearly all sharing fingerprints.
- **A slow class**: copies of the reference with its gradients and loss rewritten as Python loops
  over the rows (correct, as slow as a student's first try): its marginal cost beyond its own cells'
  time, against the reference's marginal cost.

The goals are printed next to the figures; they are measured here, never asserted in a test.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import nbformat
import psutil

from . import paths
from .course import autograders, labs
from .sandbox.confine import process_tree

#: Goals (see the module's docstring).
MARGINAL_GOAL = 2.0
FIXED_START_GOAL_SECONDS = 2.0
MEMORY_GOAL_BYTES = 1 << 30
OTTER_GOAL = 8.0
SLOW_GOAL = 10.0


class PeakMemory(threading.Thread):
    """Samples the PSS of a process and all its descendants; keeps the peak of their sum."""

    def __init__(self, root: int, interval: float = 0.25):
        super().__init__(daemon=True)
        self.root, self.interval, self.peak, self._done = root, interval, 0, threading.Event()

    def _total(self) -> int:
        total = 0
        for process in process_tree(self.root):
            try:
                total += process.memory_full_info().pss
            except psutil.Error:
                pass
        return total

    def run(self) -> None:
        while not self._done.is_set():
            self.peak = max(self.peak, self._total())
            self._done.wait(self.interval)

    def stop(self) -> int:
        self._done.set()
        self.join()
        return self.peak


@dataclass
class Grading:
    notebooks: int
    seconds: float
    peak_bytes: int


def _slow_notebook(stem: str) -> nbformat.NotebookNode:
    """The solution with correct, loop-based versions of the assignment's heaviest functions
    (its ``grading.toml``: ``[bench.slow]``), each added as a cell right after the cell that
    defines the function, so the notebook's own code and the hidden checks use it. Loops over
    rows are what students most often write first."""
    nb = nbformat.read(paths.solution_notebook(stem), 4)
    slow = labs.assignment(stem).slow_answers
    cells = []
    for cell in nb.cells:
        cells.append(cell)
        if cell.cell_type != "code":
            continue
        for name, source in slow.items():
            if f"def {name}(" in cell.source:
                cells.append(nbformat.v4.new_code_cell(source.strip()))
    nb.cells = cells
    return nb


def _write_class(folder: Path, copies: int, slow: bool) -> Path:
    for index in range(copies):
        student = folder / f"student{index:03d}"
        student.mkdir(parents=True)
        for stem in paths.assignment_stems(paths.default_lab()):
            nb = _slow_notebook(stem) if slow else nbformat.read(paths.solution_notebook(stem), 4)
            nbformat.write(nb, student / f"{stem}.ipynb")
    return folder


def _environment() -> dict[str, str]:
    # Hidden inputs need a grading secret; the bench's own keeps the kit's .grading-secret as it is.
    return {**os.environ, "LABKIT_GRADING_SECRET": "labkit-bench"}


def _grade(submissions: Path, out: Path, workers: int, sample_memory: bool = False) -> Grading:
    """One ``python -m labkit grade`` run, timed, or sampled for memory. Not both: reading every
    process's PSS (its smaps) takes each process's memory lock and a good part of a core, which
    would slow the run it measures."""
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "labkit", "grade", "--submissions", str(submissions),
         "--out", str(out), "--workers", str(workers)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_environment())
    sampler = PeakMemory(process.pid) if sample_memory else None
    if sampler is not None:
        sampler.start()
    stdout, stderr = process.communicate()
    seconds = time.perf_counter() - started
    peak = sampler.stop() if sampler is not None else 0
    if process.returncode != 0:
        raise RuntimeError(f"make grade failed:\n{stdout[-2000:]}{stderr[-2000:]}")
    notebooks = sum(1 for _ in submissions.rglob("*.ipynb"))
    return Grading(notebooks, seconds, peak)


#: Runs a notebook's cells twice in one interpreter (one thread) and prints the second run's time.
_OWN_COST = r"""
import sys, time, os
import torch
torch.set_num_threads(1)
from IPython.core.interactiveshell import InteractiveShell
from labkit import notebooks
cells = notebooks.code_cell_sources(open(sys.argv[1], "rb").read())
cells = [c for c in cells if not notebooks.is_export_source(c)]
shell = InteractiveShell.instance(colors="NoColor")
shell.history_manager.enabled = False
for run in range(2):
    started = time.perf_counter()
    for source in cells:
        shell.run_cell(source, store_history=False, silent=True)
    seconds = time.perf_counter() - started
print(seconds)
"""


def _own_seconds(notebook: Path, scratch: Path) -> float:
    """The notebook's cells, run a second time in a warm interpreter."""
    folder = Path(tempfile.mkdtemp(dir=scratch))
    shutil.copy(notebook, folder / notebook.name)
    result = subprocess.run(
        [sys.executable, "-c", _OWN_COST, str(folder / notebook.name)], cwd=folder,
        capture_output=True, text=True, check=True,
        env={**_environment(), "MPLBACKEND": "Agg", "PYTHONPATH": str(paths.ROOT)})
    return float(result.stdout.strip().splitlines()[-1])


def _own_cost(submissions: Path, scratch: Path) -> float:
    """Mean own cost of one copy's notebooks."""
    first = sorted(p for p in submissions.iterdir())[0]
    costs = [_own_seconds(nb, scratch) for nb in sorted(first.glob("*.ipynb"))]
    return sum(costs) / len(costs)


def _otter(submissions: Path, scratch: Path, workers: int) -> float:
    zips = {a.stem: a.zip_path for a in autograders.load_released()}

    def job(notebook: Path) -> None:
        folder = Path(tempfile.mkdtemp(dir=scratch))
        subprocess.run([sys.executable, "-m", "otter", "run", "--no-logo", "-a",
                        str(zips[notebook.stem]), "-o", str(folder), str(notebook)],
                       check=True, capture_output=True)
        if not (folder / "results.json").is_file():
            raise RuntimeError(f"otter run wrote no results for {notebook}")

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for future in [pool.submit(job, nb) for nb in sorted(submissions.rglob("*.ipynb"))]:
            future.result()
    return time.perf_counter() - started


def _verdict(met: bool) -> str:
    return "met" if met else "NOT met"


def run(small: int, large: int, workers: int, otter: bool = True) -> str:
    with tempfile.TemporaryDirectory(prefix="labkit-bench-") as tmp:
        root = Path(tmp)
        scratch = root / "scratch"
        scratch.mkdir()
        small_class = _write_class(root / "small", small, slow=False)
        large_class = _write_class(root / "large", large, slow=False)
        slow_class = _write_class(root / "slow", small, slow=True)

        g_small = _grade(small_class, root / "out-small", workers)
        g_large = _grade(large_class, root / "out-large", workers)
        g_slow = _grade(slow_class, root / "out-slow", workers)
        g_memory = _grade(large_class, root / "out-memory", workers, sample_memory=True)
        own = _own_cost(large_class, scratch)
        own_slow = _own_cost(slow_class, scratch)
        otter_seconds = _otter(large_class, scratch, workers) if otter else None

    extra = g_large.notebooks - g_small.notebooks
    marginal = (g_large.seconds - g_small.seconds) * workers / extra
    fixed = g_small.seconds - g_small.notebooks * marginal / workers
    slow_marginal = marginal + (g_slow.seconds - g_small.seconds) * workers / g_slow.notebooks
    slow_beyond_own = slow_marginal - own_slow
    peak_per_worker = g_memory.peak_bytes / workers
    machine = (f"{platform.machine()}, {os.cpu_count()} cores, "
               f"{psutil.virtual_memory().total / 2**30:.0f} GiB, Python {platform.python_version()}")
    lines = [
        f"{machine}; {workers} workers",
        f"  kit, {small} copies ({g_small.notebooks} notebooks): {g_small.seconds:6.1f} s",
        f"  kit, {large} copies ({g_large.notebooks} notebooks): {g_large.seconds:6.1f} s",
        f"  marginal cost per notebook:      {marginal:5.2f} worker-seconds",
        f"  notebooks' own cost per notebook: {own:5.2f} s (warm interpreter, one thread)",
        f"  marginal / own = {marginal / own:.2f}   (goal <= {MARGINAL_GOAL:.0f}: "
        f"{_verdict(marginal <= MARGINAL_GOAL * own)})",
        f"  fixed start: {fixed:.1f} s in all, {fixed / workers:.1f} s per worker   "
        f"(goal <= {FIXED_START_GOAL_SECONDS:.0f} s per worker: "
        f"{_verdict(fixed / workers <= FIXED_START_GOAL_SECONDS)})",
        f"  peak memory (PSS): {peak_per_worker / 2**20:.0f} MB per worker   (goal <= "
        f"{MEMORY_GOAL_BYTES >> 20} MB: {_verdict(peak_per_worker <= MEMORY_GOAL_BYTES)})",
    ]
    if otter_seconds is not None:
        ratio = otter_seconds / g_large.seconds
        lines.append(f"  otter run, {large} copies: {otter_seconds:.1f} s; otter / kit = {ratio:.2f}"
                     f"   (goal >= {OTTER_GOAL:.0f}: {_verdict(ratio >= OTTER_GOAL)})")
    lines += [
        f"  slow class (loops over rows), {small} copies: {g_slow.seconds:.1f} s; marginal cost "
        f"{slow_marginal:.2f} worker-seconds a notebook, its own cells {own_slow:.2f} s",
        f"  slow beyond its own cells / reference marginal = {slow_beyond_own / marginal:.2f}   "
        f"(goal <= {SLOW_GOAL:.0f}: {_verdict(slow_beyond_own <= SLOW_GOAL * marginal)})",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="labkit bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--small", type=int, default=2, help="copies in the small class (2)")
    parser.add_argument("--copies", type=int, default=10,
                        help="copies in the large class (10: the bench takes about 5 minutes on "
                             "2 cores)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--no-otter", action="store_true", help="skip otter run (the slowest part)")
    parser.add_argument("--similarity-only", action="store_true",
                        help="only the similarity page's cost, on a synthetic class of 500")
    args = parser.parse_args(argv)
    from .similarity import bench

    if args.similarity_only:
        print(bench.run(), flush=True)
        return 0
    if args.copies <= args.small:
        parser.error("--copies must be larger than --small")
    print(run(args.small, args.copies, args.workers, otter=not args.no_otter), flush=True)
    print(f"  {bench.run()}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
