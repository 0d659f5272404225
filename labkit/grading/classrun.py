"""Grade a whole class: every entry under SUBMISSIONS gets exactly one row, whatever it holds.

Grading is resumable: each student's row is recorded in OUT as soon as it is graded, keyed by a
fingerprint of the student's files, the released autograders and the limits; a later run on the
same OUT reuses every record whose fingerprint still matches, so an interrupted run loses nothing
already graded and a re-run grades only new or changed submissions. ``grades.csv`` and the other
class files are written once, from the rows, when the run ends (however it ends, short of being
killed: then the next run writes them, from the records).

The written questions are graded by hand (``labkit.outputs.manual_scores``): their scores are read
from a CSV file the teaching team fills in and applied on top of the recorded rows, as are the
TAs' overrides of autograded scores (``labkit.outputs.overrides``), so recording a score never
makes a notebook run again and a record always holds what the grader found.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import multiprocessing
import multiprocessing.util
import os
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

from tqdm import tqdm

from typing import TYPE_CHECKING

from labkit import paths
from labkit.course import autograders, labs
from labkit.course.questions import column_key
from labkit.sandbox import cgroups, forkserver, confine
from . import class_outputs, handin_times, intake, keys, shards
from labkit.outputs import gradebook, results
from labkit.grading import written_answers
from labkit.outputs.manual_scores import DEFAULT_SCORES_FILE, read_scores
from labkit.sandbox.confine import Limits

if TYPE_CHECKING:  # the grader's own process never grades: torch and otter load in workers only
    from labkit.sandbox.session import ForkServerClient

#: Bump when the meaning of a recorded row changes, so that old records are not reused (4: the
#: results files hold each case's outcome as data, ``outputs.results``).
RECORD_VERSION = 4
#: On every row graded with ``--unconfined``.
UNCONFINED_NOTE = ("graded unconfined (--unconfined): this notebook's code could read and change "
                   "what the grading user can")


def _grade_student(
    entry: intake.Entry, assignments: list[autograders.Assignment], workdir: Path, out: Path,
    server: ForkServerClient, limits: Limits, hidden: list[Path],
) -> gradebook.StudentRow:
    from . import judge

    by_stem = {a.stem: a for a in assignments}
    submission = intake.discover(entry, list(by_stem), workdir)
    row = gradebook.StudentRow(
        student=submission.student, notes=list(submission.notes),
        handed_in=submission.handed_in.isoformat() if submission.handed_in is not None else None,
        marked_late=submission.marked_late)
    if submission.display_name:
        results.write_name(out, submission.student, submission.display_name)
    if not limits.confine:
        row.notes.append(UNCONFINED_NOTE)
    for stem in by_stem:
        notebook = submission.notebooks.get(stem)
        if notebook is None:
            row.notes.append(f"{stem}: no notebook submitted")
            continue
        result = judge.grade_notebook(notebook, by_stem[stem], server=server, limits=limits,
                                    hidden=hidden)
        if result.problem:
            row.notes.append(f"{stem}: {result.problem}")
        row.notes.extend(f"{stem}: {note}" for note in result.notes)
        for question, points in result.scores.items():
            row.points[column_key(stem, question)] = points
        results.write_assignment(out, submission.student, stem, result.scores, result.problem,
                                 result.notes, result.cases)
    return row


def _grade_student_safely(entry: intake.Entry, *args) -> gradebook.StudentRow:
    """A failure of the kit on one submission becomes a note on that row, not a stopped batch."""
    try:
        return _grade_student(entry, *args)
    except Exception as error:
        return gradebook.StudentRow(
            student=intake.student_id(entry),
            notes=[f"the grader failed on this submission ({type(error).__name__}: {error}); "
                   "please report it"])


#: Per worker process: its own grading interpreter and what every grading needs.
_WORKER: dict = {}


#: What every worker imports, loaded once per run by the process the workers are forked from;
#: the lab's own modules and checks are added (``worker_preload``).
WORKER_PRELOAD = ["torch", "labkit.grading.judge", "labkit.sandbox.session", "labkit.sandbox.zygote"]


def worker_preload(lab: str) -> list[str]:
    return [*WORKER_PRELOAD, *labs.preload(lab)]


def notebook_preload(lab: str) -> forkserver.Preload:
    """What the notebooks of ``lab`` import, for the server they are forked from (``lab.toml``)."""
    described = labs.lab(lab)
    return forkserver.Preload(described.preload, described.warm_up)


def _worker_context(preload: list[str]) -> multiprocessing.context.BaseContext:
    """Workers are forked from one process that has imported what they need (multiprocessing's
    fork server, started on first use and kept for the life of this process), rather than each
    importing torch, the lab's modules and otter anew: that is paid once per run, not once per
    worker. The fork server runs no torch operation, so nothing it forks inherits a broken
    thread pool."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(preload)
    return context


def _start_worker(grader: int, environment: dict[str, str], cwd: str,
                  assignments: list[autograders.Assignment], limits: Limits,
                  hidden: list[Path], server_address: str | None = None,
                  preload: forkserver.Preload = forkserver.Preload()) -> None:
    """Runs once in each worker process. Workers are processes, not threads, because judging
    (calls, comparisons, references) is Python work that one interpreter's lock would serialise;
    each worker forks its notebooks from the run's shared pre-started interpreter
    (``server_address``, see ``forkserver``), or from one of its own when that cannot be reached.
    One thread each: the workers and their notebooks already fill the cores, and judging runs
    small operations that extra threads only slow down."""
    import torch

    from labkit.sandbox.session import ForkServerClient

    # A worker whose grader was killed would otherwise wait for work forever (its parent, the
    # process it was forked from, waits for it in turn).
    confine.die_with(grader)
    confine.die_with_parent(os.getppid())
    # That process was started earlier, maybe elsewhere: take the grader's place and variables
    # (the grading secret, the GPUs to use) as they are now.
    os.chdir(cwd)
    os.environ.clear()
    os.environ.update(environment)
    torch.set_num_threads(1)
    server = ForkServerClient(server_address, preload)
    multiprocessing.util.Finalize(server, server.close, exitpriority=10)
    _WORKER.update(server=server, assignments=assignments, limits=limits, hidden=hidden)


def _grade_in_worker(entry: intake.Entry, workdir: Path, out: Path, mark: Path) -> gradebook.StudentRow:
    """Grade one entry, marking it as held by this worker while it is graded (so that the
    grader knows whom to suspect if the worker dies)."""
    mark.touch()
    row = _grade_student_safely(entry, _WORKER["assignments"], workdir, out, _WORKER["server"],
                                _WORKER["limits"], _WORKER["hidden"])
    mark.unlink(missing_ok=True)
    return row


def _digest_file(digest: "hashlib._Hash", path: Path) -> None:
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)


def grading_fingerprint(assignments: list[autograders.Assignment], limits: Limits) -> str:
    """What every row depends on besides the student's own files: the released autograders,
    the limits and the grading secret."""
    digest = hashlib.sha256(f"v{RECORD_VERSION} {sorted(vars(limits).items())}".encode())
    # The hidden inputs depend on the secret: rows graded under another one are not reused.
    digest.update(hashlib.sha256(keys.grading_secret()).digest())
    for assignment in assignments:
        digest.update(assignment.stem.encode())
        _digest_file(digest, assignment.zip_path)
    return digest.hexdigest()


def release_fingerprint(assignments: list[autograders.Assignment]) -> str:
    """What the class files depend on besides the rows and the answers: the released
    assignments (their autograders, and their manifests: the questions, their points, the written
    questions' prompts and solutions). A merge checks it, so that shards are merged by the kit
    that graded them; it holds no secret, so the merging machine needs none."""
    digest = hashlib.sha256(f"v{RECORD_VERSION}".encode())
    for assignment in assignments:
        digest.update(assignment.stem.encode() + b"\0")
        for path in (assignment.zip_path, paths.release_manifest(assignment.stem)):
            digest.update(path.name.encode() + b"\0")
            if path.is_file():
                _digest_file(digest, path)
    return digest.hexdigest()


def entry_fingerprint(entry: Path | intake.Entry, grading: str) -> str:
    entry = intake.as_entry(entry)
    digest = hashlib.sha256(grading.encode())
    # The files discovery reads (links and fifos are never opened), and any entry that shares
    # the id: its arrival or removal changes whether this one is graded.
    files, _ = intake.entry_files(entry)
    digest.update("\0".join(entry.same_id).encode())
    if entry.layout:  # what an LMS download says of the student besides the files
        digest.update(f"{entry.layout}\0{entry.student}\0{entry.marked_late}\0"
                      f"{entry.handed_in}\0".encode())
    for path in files:
        digest.update(str(path.relative_to(entry.parent)).encode() + b"\0")
        try:
            _digest_file(digest, path)
        except OSError as error:
            digest.update(str(error).encode())
    return digest.hexdigest()


def record_path(out: Path, entry: str) -> Path:
    """Where the row of the entry named ``entry`` is recorded."""
    name = hashlib.sha256(entry.encode()).hexdigest()[:24]
    return out / "records" / f"{name}.json"


def load_record(out: Path, entry: str, fingerprint: str) -> gradebook.StudentRow | None:
    """The recorded row of the entry named ``entry``, if it was graded as ``fingerprint`` says."""
    try:
        record = json.loads(record_path(out, entry).read_text("utf-8"))
    except (OSError, ValueError):
        return None
    if record.get("fingerprint") != fingerprint or record.get("entry") != entry:
        return None
    row = record["row"]
    return gradebook.StudentRow(student=row["student"], points=dict(row["points"]),
                                notes=list(row["notes"]),
                                handed_in=row.get("handed_in") or None,
                                marked_late=bool(row.get("marked_late")))


def _save_record(out: Path, entry: intake.Entry, fingerprint: str, row: gradebook.StudentRow) -> None:
    gradebook.write_atomically(record_path(out, entry.name), json.dumps(
        {"entry": entry.name, "fingerprint": fingerprint, "row": dataclasses.asdict(row)}))


#: A submission whose grading has ended this many worker processes gets a row with a note.
MAX_WORKER_DEATHS = 2


def _grade_in_pools(todo: list[intake.Entry], tmp: Path, out: Path, workers: int,
                    worker_args: tuple, modules: list[str],
                    record: Callable[[intake.Entry, gradebook.StudentRow], None]) -> None:
    """Grade ``todo`` in worker processes; a worker that dies costs nothing but a retry.

    When a worker dies (killed, out of memory, a crash of the kit), the pool breaks and every
    unfinished submission is lost to it: a fresh pool takes them again. The ones that were
    being graded when it broke (each worker marks what it holds) are suspects; a suspect that
    breaks a second pool gets its row with a note instead of a third try.
    """
    index = {entry: i for i, entry in enumerate(todo)}
    marks = tmp / "grading"
    marks.mkdir()
    deaths: dict[intake.Entry, int] = {}
    pending = list(todo)
    while pending:
        done: set[intake.Entry] = set()
        with ProcessPoolExecutor(
                max_workers=max(1, min(workers, len(pending))),
                mp_context=_worker_context(modules),
                initializer=_start_worker, initargs=worker_args) as pool:
            # Each entry extracts into its own folder: two entries may share a student id.
            futures = {pool.submit(_grade_in_worker, entry, tmp / str(index[entry]), out,
                                   marks / str(index[entry])): entry for entry in pending}
            for future in as_completed(futures):
                entry = futures[future]
                try:
                    row = future.result()
                except BrokenProcessPool:
                    continue
                record(entry, row)
                done.add(entry)
        for entry in pending:
            mark = marks / str(index[entry])
            if entry in done or not mark.exists():
                continue
            mark.unlink()
            deaths[entry] = deaths.get(entry, 0) + 1
            if deaths[entry] >= MAX_WORKER_DEATHS:
                record(entry, gradebook.StudentRow(
                    student=intake.student_id(entry),
                    notes=[f"grading this submission ended the grader's worker process "
                           f"{deaths[entry]} times; it was not graded (please report it)"]))
                done.add(entry)
        pending = [entry for entry in pending if entry not in done]


def grade_class(
    submissions: Path, out: Path, *, workers: int | None = None, limits: Limits | None = None,
    progress: bool = False, manual_scores: Path | None = None, shard: shards.Shard | None = None,
    lab: str | None = None,
    deadlines: Path | None = None, times: Path | None = None, worksheet: Path | None = None,
) -> str:
    """Grade every entry of ``submissions`` into ``out``; returns a summary (one line, and a few
    more about the written questions).

    ``manual_scores`` is the CSV file of scores given by hand to written questions (default
    ``OUT/manual_scores.csv``): merged into ``grades.csv`` when it exists, written as a template
    when it does not.

    ``lab`` names the lab whose assignments are graded (default: the course's first); notebooks of
    other labs in a student's folder are not this grading's business.

    ``shard`` grades only the students of that shard (``shards.shard_of``), and leaves in OUT what
    ``merge`` needs besides their records: their written answers and which entries the shard owns.

    ``deadlines`` (a TOML file, ``course.deadlines``) and ``times`` (the hand-in times,
    ``handin_times``) apply the late policy to the class files; both are read, and refused with
    the reason, before anything is graded. Neither is part of a row's record, so changing them
    grades nothing again.

    ``worksheet`` is Moodle's grading worksheet, read for the submission times when
    ``submissions`` is a Moodle download (``lms_downloads``).
    """
    started = time.monotonic()
    if submissions.is_file() and submissions.suffix.lower() == ".zip":
        raise SystemExit(f"SUBMISSIONS is a zip file, {submissions}: unzip it into a folder of its "
                         f"own (unzip '{submissions}' -d '{submissions.with_suffix('')}') and "
                         f"grade that folder")
    if not submissions.is_dir():
        raise SystemExit(f"SUBMISSIONS is not a folder: {submissions}")
    try:
        lab = lab or paths.default_lab()
        assignments = autograders.load_released(lab)
    except (autograders.ManifestError, KeyError) as error:
        raise SystemExit(str(error.args[0] if isinstance(error, KeyError) else error)) from None
    try:
        late_files = handin_times.read_late_files(deadlines, times, [a.stem for a in assignments])
    except handin_times.LateFilesError as error:
        raise SystemExit(f"refused before grading: {error}") from None
    found = intake.class_entries(submissions, worksheet)
    entries = found.students
    if shard is not None:
        entries = [entry for entry in entries
                   if shards.shard_of(intake.student_id(entry), shard.n) == shard.k]
    workers = workers or os.cpu_count() or 1
    limits = limits or Limits()
    if limits.confine and (reason := confine.probe()) is not None:
        raise SystemExit(f"cannot confine student code on this machine: {reason}")
    if (reason := cgroups.probe()) is not None:
        print(f"note: notebooks get no cgroups of their own here: {reason}.", file=sys.stderr)
    out.mkdir(parents=True, exist_ok=True)
    shards.remove_manifest(out)
    # The scores given by hand, merged into the class files when the run ends.
    questions = autograders.written_questions(assignments)
    students = [intake.student_id(entry) for entry in entries]
    scores_path = manual_scores or out / DEFAULT_SCORES_FILE
    sheet = read_scores(scores_path, students, questions,
                        class_outputs.autograded_questions(assignments))
    grading = grading_fingerprint(assignments, limits)
    fingerprints = {entry: entry_fingerprint(entry, grading) for entry in entries}
    rows: dict[intake.Entry, gradebook.StudentRow] = {}
    for entry in entries:
        if (row := load_record(out, entry.name, fingerprints[entry])) is not None:
            rows[entry] = row
    reused = len(rows)
    todo = [entry for entry in entries if entry not in rows]
    # Nothing of these is ever bound into a notebook's sandbox, nor any folder holding one of
    # them (see confine.interpreter_folders): the class's submissions, its results, the scores
    # given by hand and the LMS's worksheet (names, e-mail addresses), wherever they live.
    hidden = [submissions.resolve(), out.resolve(), scores_path.resolve(),
              *([worksheet.resolve()] if worksheet is not None else [])]
    # On a terminal only (disable=None): a log file gets the summary line, not a bar.
    bar = tqdm(total=len(entries), initial=reused, unit="student", file=sys.stderr,
               disable=None if progress else True, dynamic_ncols=True)

    def record(entry: intake.Entry, row: gradebook.StudentRow) -> None:
        rows[entry] = row
        _save_record(out, entry, fingerprints[entry], row)
        bar.update(1)

    try:
        with contextlib.ExitStack() as stack:
            tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="labkit-submissions-")))
            address = None
            if todo:  # started first: its imports run while the workers start
                shared = forkserver.SharedForkServer(notebook_preload(lab))
                address = stack.enter_context(shared)
                # The sockets of both fork servers (the notebooks' and the workers', whose
                # folder multiprocessing keeps here) must be out of every sandbox's reach: each
                # forks whatever process it is asked for.
                hidden = [*hidden, shared.folder.resolve(),
                          Path(multiprocessing.util.get_temp_dir()).resolve()]
            _grade_in_pools(todo, tmp, out, workers,
                            (os.getpid(), dict(os.environ), os.getcwd(), assignments, limits,
                             hidden, address, notebook_preload(lab)), worker_preload(lab),
                            record)
    finally:
        bar.close()
        answers = written_answers.collect(entries, [a.stem for a in assignments], questions)
        # In the order of SUBMISSIONS, not of completion: the same class gives the same files.
        late = class_outputs.write_class_files(
            out, assignments, [rows[entry] for entry in entries if entry in rows], answers, sheet,
            questions, students, scores_path, *late_files)
    if shard is not None:
        shards.write_manifest(out, shards.Manifest(
            shard, grading, release_fingerprint(assignments),
            {entry.name: fingerprints[entry] for entry in entries}, answers, lab))
    with_problems = sum(1 for row in rows.values() if gradebook.has_problems(row.notes))
    elapsed = time.monotonic() - started
    return (f"shard {shard} of {submissions}: " if shard is not None else "") + (
        f"graded {len(rows)} submissions ({len(todo)} new or changed, {reused} unchanged; "
        f"{with_problems} with problems) in {elapsed:.0f} s; results in {out}/grades.csv, "
        f"report in {out}/report.html, feedback in {out}/feedback/"
    ) + "".join(f"; {note}" for note in found.notes) \
        + intake.others_summary(found.others, found.layout) \
        + class_outputs.scores_summary(sheet, questions, students, out, scores_path,
                                       answers=answers) \
        + handin_times.summary(late, *late_files,
                               [intake.student_id(entry) for entry in found.students])
