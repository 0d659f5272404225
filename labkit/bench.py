"""``make bench``: how fast the kit grades, against plain execution and ``otter run``.

N copies of the reference submission (the three solution notebooks) are graded by the kit; in the
same run the same notebooks are executed plainly (nbclient, a fresh kernel each) and graded by
``otter run`` with the kit's own autograder zips, each way with the same number of parallel
workers. The figures are printed, not asserted: speed goals live here, not in the tests.
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
from pathlib import Path

import psutil

from . import notebooks, paths
from .grade import autograders, batch


class PeakMemory(threading.Thread):
    """Samples the resident memory of this process and all its descendants; keeps the peak."""

    def __init__(self, interval: float = 0.1):
        super().__init__(daemon=True)
        self.interval, self.peak, self._done = interval, 0, threading.Event()

    def run(self) -> None:
        me = psutil.Process()
        while not self._done.is_set():
            total = 0
            for process in [me, *me.children(recursive=True)]:
                try:
                    total += process.memory_info().rss
                except psutil.Error:
                    pass
            self.peak = max(self.peak, total)
            self._done.wait(self.interval)

    def stop(self) -> int:
        self._done.set()
        self.join()
        return self.peak


def _timed(work) -> tuple[float, int]:
    sampler = PeakMemory()
    sampler.start()
    started = time.perf_counter()
    work()
    return time.perf_counter() - started, sampler.stop()


def _class_of_copies(root: Path, stems: list[str], copies: int) -> Path:
    submissions = root / "submissions"
    for index in range(copies):
        folder = submissions / f"student{index:03d}"
        folder.mkdir(parents=True)
        for stem in stems:
            shutil.copy(paths.solution_notebook(stem), folder / f"{stem}.ipynb")
    return submissions


def _run_parallel(jobs: list, workers: int) -> None:
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for future in [pool.submit(job) for job in jobs]:
            future.result()


def _plain_job(notebook: Path, scratch: Path):
    def job() -> None:
        folder = Path(tempfile.mkdtemp(dir=scratch))
        shutil.copy(notebook, folder / notebook.name)
        subprocess.run(
            [sys.executable, "-c",
             "import sys; from pathlib import Path; from labkit import notebooks; "
             "p = Path(sys.argv[1]); nb = notebooks.read(p); "
             "notebooks.execute(nb, p.parent, skip=notebooks.is_export_cell)",
             str(folder / notebook.name)],
            check=True, capture_output=True)
    return job


def _otter_job(notebook: Path, zip_path: Path, scratch: Path):
    def job() -> None:
        folder = Path(tempfile.mkdtemp(dir=scratch))
        subprocess.run([sys.executable, "-m", "otter", "run", "--no-logo", "-a", str(zip_path),
                        "-o", str(folder), str(notebook)], check=True, capture_output=True)
        if not (folder / "results.json").is_file():
            raise RuntimeError(f"otter run wrote no results for {notebook}")
    return job


def run(copies: int, workers: int) -> str:
    stems = paths.assignment_stems()
    zips = {a.stem: a.zip_path for a in autograders.load_all()}
    with tempfile.TemporaryDirectory(prefix="labkit-bench-") as tmp:
        root = Path(tmp)
        submissions = _class_of_copies(root, stems, copies)
        notebooks_all = sorted(submissions.rglob("*.ipynb"))
        count = len(notebooks_all)
        scratch = root / "scratch"
        scratch.mkdir()

        kit_seconds, kit_peak = _timed(lambda: batch.grade_class(
            submissions, root / "out", workers=workers))
        serial_seconds, _ = _timed(lambda: batch.grade_class(
            submissions, root / "out-serial", workers=1)) if workers > 1 else (kit_seconds, 0)
        plain_seconds, plain_peak = _timed(lambda: _run_parallel(
            [_plain_job(nb, scratch) for nb in notebooks_all], workers))
        otter_seconds, otter_peak = _timed(lambda: _run_parallel(
            [_otter_job(nb, zips[nb.stem], scratch) for nb in notebooks_all], workers))

    machine = (f"{platform.machine()}, {os.cpu_count()} cores, "
               f"{psutil.virtual_memory().total / 2**30:.0f} GiB, Python {platform.python_version()}")
    rows = [
        ("kit (make grade)", kit_seconds, kit_peak),
        ("plain execution (nbclient, fresh kernel each)", plain_seconds, plain_peak),
        ("otter run (kit's autograder zips)", otter_seconds, otter_peak),
    ]
    lines = [f"{count} notebooks ({copies} copies of the 3 reference notebooks), {workers} workers; "
             f"{machine}"]
    for label, seconds, peak in rows:
        lines.append(f"  {label:<48} {seconds:7.1f} s  {seconds / count:6.2f} s/notebook  "
                     f"peak memory {peak / 2**20:6.0f} MB")
    lines.append(f"  kit / plain = {kit_seconds / plain_seconds:.2f}   (goal <= 1.0)")
    lines.append(f"  otter / kit = {otter_seconds / kit_seconds:.2f}   (goal >= 2.5)")
    if workers > 1:
        speedup = serial_seconds / kit_seconds
        lines.append(f"  kit with 1 worker: {serial_seconds:.1f} s; {workers} workers are "
                     f"{speedup:.2f} times faster ({speedup / workers:.0%} of linear scaling)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="labkit bench", description=__doc__)
    parser.add_argument("--copies", type=int, default=2,
                        help="copies of the reference submission (default 2: the whole benchmark "
                             "takes about two minutes on 2 cores)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args(argv)
    print(run(args.copies, args.workers), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
