"""Merge the OUTs of a class graded in shards (``grade --shard K/N``) into one OUT, the same, file
for file, as one run over the whole class would have written.

Nothing is graded again and SUBMISSIONS is not read, so the merge can run where the submissions
are not: the rows come from the shards' records, each notebook's results from their
``results/``, the written answers from their manifests (``shards``), and the class files are
written by ``class_outputs``, as ``grade`` writes them. The records are copied too, so that a later
``grade`` of the whole class into the merged OUT reuses every one of them.

Every check runs before anything is written: shards graded differently (autograders, limits,
grading secret), graded by another release than this kit's, split differently, given twice,
owning the same entry, or missing (unless allowed) are refused with the reason.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path

from labkit.course import autograders
from . import classrun, class_outputs, handin_times, shards
from labkit.outputs import gradebook
from labkit.outputs.manual_scores import DEFAULT_SCORES_FILE, read_scores


class MergeError(Exception):
    """Shards that cannot be merged; the message says why, in one line."""


def _manifests(outs: Sequence[Path]) -> list[tuple[Path, shards.Manifest]]:
    found = []
    for out in outs:
        try:
            found.append((out, shards.read_manifest(out)))
        except shards.ManifestError as error:
            raise MergeError(str(error)) from None
    return found


def _check(found: list[tuple[Path, shards.Manifest]], release: str, allow_missing: bool) -> None:
    first_out, first = found[0]
    owner: dict[int, Path] = {}
    entries: dict[str, Path] = {}
    for out, manifest in found:
        if manifest.shard.n != first.shard.n:
            raise MergeError(f"the shards split the class differently: {first_out} is shard "
                             f"{first.shard}, {out} is shard {manifest.shard}")
        if manifest.grading != first.grading:
            raise MergeError(f"{first_out} and {out} were graded differently (other autograders, "
                             "limits or grading secret): grade every shard with the same kit, "
                             "the same flags and the same .grading-secret")
        if manifest.release != release:
            raise MergeError(f"{out} was graded with other released assignments than this "
                             "kit's: merge with the kit that graded it")
        if manifest.shard.k in owner:
            raise MergeError(f"shard {manifest.shard} is given twice: {owner[manifest.shard.k]} "
                             f"and {out}")
        owner[manifest.shard.k] = out
        for entry in manifest.entries:
            if entry in entries:
                raise MergeError(f"the shards overlap: entry {entry!r} is in {entries[entry]} "
                                 f"and in {out}")
            entries[entry] = out
    missing = sorted(set(range(first.shard.n)) - set(owner))
    if missing and not allow_missing:
        raise MergeError(f"shard(s) {', '.join(map(str, missing))} of {first.shard.n} missing: "
                         "give every shard's OUT (or --allow-missing to merge without their "
                         "students)")


def _rows(out: Path, manifest: shards.Manifest) -> dict[str, gradebook.StudentRow]:
    """Entry name -> row, each as its shard recorded it in the run its manifest describes."""
    rows = {}
    for entry, fingerprint in manifest.entries.items():
        row = classrun.load_record(out, entry, fingerprint)
        if row is None:
            raise MergeError(f"{out} lacks the record of entry {entry!r} that its {shards.MANIFEST_FILE}"
                             f" names: grade shard {manifest.shard} again")
        rows[entry] = row
    return rows


def _copy_results(source: Path, out: Path, students: set[str]) -> None:
    """Copy the shard's ``results/<student>/`` of its own students, replacing any older copy.
    Folders are taken from a listing, so an odd student id cannot point outside ``results``."""
    folder = source / "results"
    for path in sorted(folder.iterdir()) if folder.is_dir() else []:
        if path.name in students and path.is_dir() and not path.is_symlink():
            shutil.rmtree(out / "results" / path.name, ignore_errors=True)
            shutil.copytree(path, out / "results" / path.name)


def merge_shards(inputs: Sequence[Path], out: Path, *, manual_scores: Path | None = None,
                 allow_missing: bool = False, deadlines: Path | None = None,
                 times: Path | None = None) -> str:
    """Merge the shards' OUTs ``inputs`` into ``out``; returns a summary. ``manual_scores`` is read
    (or written as a template) as ``grade`` does, and so are ``deadlines`` and ``times`` (the late
    policy, applied to the recorded rows). Raises MergeError before writing anything when the
    shards or those files cannot be used."""
    if not inputs:
        raise MergeError("no shard given")
    if any(out.resolve() == source.resolve() for source in inputs):
        raise MergeError(f"{out} is one of the shards: merge into another folder")
    found = _manifests(inputs)
    labs = sorted({manifest.lab for _, manifest in found})
    if len(labs) > 1:
        raise MergeError(f"the shards graded different labs ({', '.join(labs)}): merge the shards "
                         "of one lab at a time")
    try:
        assignments = autograders.load_released(labs[0] or None)
    except autograders.ManifestError as error:
        raise MergeError(str(error)) from None
    try:
        late_files = handin_times.read_late_files(deadlines, times, [a.stem for a in assignments])
    except handin_times.LateFilesError as error:
        raise MergeError(f"refused before merging: {error}") from None
    _check(found, classrun.release_fingerprint(assignments), allow_missing)
    by_entry: dict[str, gradebook.StudentRow] = {}
    for source, manifest in found:
        by_entry.update(_rows(source, manifest))

    out.mkdir(parents=True, exist_ok=True)
    shards.remove_manifest(out)  # the merged OUT is the whole class, no shard
    for source, manifest in found:
        for entry in manifest.entries:
            target = classrun.record_path(out, entry)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(classrun.record_path(source, entry), target)
        _copy_results(source, out, {by_entry[entry].student for entry in manifest.entries})

    # Entries in name order, as grade lists SUBMISSIONS, so that the files come out the same.
    rows = [by_entry[entry] for entry in sorted(by_entry)]
    answers = [answer for _, manifest in found for answer in manifest.answers]
    answers.sort(key=lambda s: (s.student, s.entry))
    students = [row.student for row in rows]
    questions = autograders.written_questions(assignments)
    scores_path = manual_scores or out / DEFAULT_SCORES_FILE
    sheet = read_scores(scores_path, students, questions,
                        class_outputs.autograded_questions(assignments))
    late = class_outputs.write_class_files(out, assignments, rows, answers, sheet, questions,
                                           students, scores_path, *late_files)
    n = found[0][1].shard.n
    with_problems = sum(1 for row in rows if gradebook.has_problems(row.notes))
    return (
        f"merged {len(found)} of {n} shards: {len(rows)} submissions ({with_problems} with "
        f"problems), none graded again; results in {out}/grades.csv, report in "
        f"{out}/report.html, feedback in {out}/feedback/"
    ) + class_outputs.scores_summary(sheet, questions, students, out, scores_path,
                                  again="the merge", answers=answers) \
        + handin_times.summary(late, *late_files, students)
