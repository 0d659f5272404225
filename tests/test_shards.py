"""Sharded grading: which shard grades whom, and a merge of shards graded in separate processes
that writes the same OUT, file for file, as one run over the whole class.

One small class is graded three times at once (shard 0/2, shard 1/2 and the whole class, each its
own ``python -m labkit grade``); every other test of the merge works on copies of those OUTs.
"""

from __future__ import annotations

import csv
import json
import random
import shutil
import string
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from labkit import paths
from labkit.cli import build_parser
from labkit.grading import classrun, shards
from labkit.course import written
from labkit.grading.merge import MergeError, merge_shards
from .conftest import tree_digest

LINEAR, LOGISTIC = "1_1_linear_regression", "1_2_logistic_regression"
#: Student -> shard of two; the names are chosen so that each shard gets two students and a
#: notebook that runs (checked below, so that a change of the hashing cannot empty a shard).
SHARD_OF = {"ada": 0, "bo": 0, "broken": 1, "di": 1}


# --- which shard grades whom -----------------------------------------------------------------

def _names(count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return ["".join(rng.choices(string.ascii_lowercase + string.digits + "_-", k=rng.randint(3, 12)))
            for _ in range(count)]


def test_a_student_always_goes_to_the_same_shard_and_shards_are_balanced() -> None:
    names = sorted(set(_names(1000, seed=1)))
    assert [shards.shard_of(n, 4) for n in names] == [shards.shard_of(n, 4) for n in names]
    counts = [sum(1 for n in names if shards.shard_of(n, 4) == k) for k in range(4)]
    assert sum(counts) == len(names) and all(abs(c - len(names) / 4) < 60 for c in counts), counts
    assert all(shards.shard_of(n, 1) == 0 for n in names)
    assert {shards.shard_of(name, 2) for name in SHARD_OF} == {0, 1}
    assert {name: shards.shard_of(name, 2) for name in SHARD_OF} == SHARD_OF


def test_adding_students_moves_nobody_and_one_more_shard_moves_only_its_own() -> None:
    names = sorted(set(_names(1000, seed=2)))
    before = {n: shards.shard_of(n, 10) for n in names}
    # Who else is in the class never matters: a student's shard is a function of its id and N.
    assert {n: shards.shard_of(n, 10) for n in names + _names(500, seed=3)
            if n in before} == before
    after = {n: shards.shard_of(n, 11) for n in names}
    moved = [n for n in names if after[n] != before[n]]
    assert all(after[n] == 10 for n in moved)          # only to the new shard
    assert 40 < len(moved) < 140, len(moved)           # about 1 in 11, not nearly all


@pytest.mark.parametrize("text, k, n", [("0/1", 0, 1), ("3/10", 3, 10), (" 9 / 10 ", 9, 10)])
def test_shard_is_read_as_k_of_n_from_zero(text, k, n) -> None:
    assert shards.parse(text) == shards.Shard(k, n)
    assert build_parser().parse_args(["grade", "--shard", text]).shard == shards.Shard(k, n)


@pytest.mark.parametrize("text, why", [
    ("10/10", "K counts from 0"), ("1/0", "N must be at least 1"), ("3", "is not K/N"),
    ("-1/4", "is not K/N"), ("a/b", "is not K/N")])
def test_a_bad_shard_is_refused_with_the_reason(text, why, capsys) -> None:
    with pytest.raises(ValueError, match=why):
        shards.parse(text)
    with pytest.raises(SystemExit) as stopped:
        build_parser().parse_args(["grade", f"--shard={text}"])
    assert stopped.value.code == 2 and why in capsys.readouterr().err


def test_makefile_passes_the_shard_and_merges() -> None:
    makefile = (paths.ROOT / "Makefile").read_text("utf-8")
    assert "SHARD ?=" in makefile and "--shard $(SHARD)" in makefile
    assert "\nmerge:" in makefile and "-m labkit merge" in makefile


def test_a_shard_without_students_still_merges(tmp_path) -> None:
    """With more shards than students some shards own nobody; they must finish all the same."""
    submissions = tmp_path / "submissions"
    submissions.mkdir()
    shutil.copy(paths.student_notebook(LOGISTIC), submissions / "ada.ipynb")
    empty = shards.Shard(1 - SHARD_OF["ada"], 2)
    summary = classrun.grade_class(submissions, tmp_path / "shard", workers=1, shard=empty)
    assert summary.startswith(f"shard {empty} of {submissions}: graded 0 submissions")
    assert shards.read_manifest(tmp_path / "shard").entries == {}
    merge_shards([tmp_path / "shard"], tmp_path / "out", allow_missing=True)
    assert _students(tmp_path / "out") == [] and (tmp_path / "out" / "report.html").is_file()


# --- graded in shards, then merged -----------------------------------------------------------

@dataclass
class Sharded:
    root: Path
    submissions: Path
    shard_outs: list[Path]
    #: where the whole class was graded in one run, and where the shards are merged (see below)
    out: Path
    single: Path


def _command(*args: str) -> list[str]:
    return [sys.executable, "-m", "labkit", *args]


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(_command(*args), capture_output=True, text=True)


@pytest.fixture(scope="module")
def sharded(tmp_path_factory) -> Sharded:
    root = tmp_path_factory.mktemp("sharded")
    submissions = root / "submissions"
    (submissions / "di").mkdir(parents=True)
    shutil.copy(paths.solution_notebook(LOGISTIC), submissions / "ada.ipynb")   # written answers
    shutil.copy(paths.student_notebook(LOGISTIC), submissions / "bo.ipynb")     # none
    shutil.copy(paths.demo_submissions() / "broken.ipynb", submissions)
    shutil.copy(paths.solution_notebook(LINEAR), submissions / "di")
    shard_outs = [root / "shards" / "0", root / "shards" / "1"]
    out = root / "grades"
    common = ["--submissions", str(submissions), "--workers", "1"]
    runs = [subprocess.Popen(_command("grade", *common, "--out", str(shard_out),
                                      "--shard", f"{k}/2"),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for k, shard_out in enumerate(shard_outs)]
    runs.append(subprocess.Popen(_command("grade", *common, "--out", str(out)),
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    for process in runs:
        stdout, stderr = process.communicate(timeout=600)
        assert process.returncode == 0, stderr
    # The written questions' pages name their OUT (the browser keeps the TA's scores under a key
    # made from OUT's path, and the page says where to put the downloaded file), so the merge is
    # written to the very path the single run was: that run's OUT is moved aside first.
    single = root / "single"
    out.rename(single)
    return Sharded(root, submissions, shard_outs, out, single)


@pytest.fixture(scope="module")
def merged(sharded) -> subprocess.CompletedProcess:
    return _run("merge", *map(str, sharded.shard_outs), "--out", str(sharded.out))


def _students(out: Path) -> list[str]:
    with open(out / "grades.csv", newline="") as handle:
        return [row["student"] for row in csv.DictReader(handle)]


@pytest.mark.slow
def test_each_shard_grades_its_own_students_and_keeps_their_answers(sharded) -> None:
    for k, shard_out in enumerate(sharded.shard_outs):
        own = sorted(name for name, shard in SHARD_OF.items() if shard == k)
        assert _students(shard_out) == own
        manifest = shards.read_manifest(shard_out)
        assert manifest.shard == shards.Shard(k, 2)
        assert sorted(Path(entry).stem for entry in manifest.entries) == own
        assert sorted(a.student for a in manifest.answers) == own
    ada = next(a for a in shards.read_manifest(sharded.shard_outs[0]).answers if a.student == "ada")
    assert ada.answers[f"{LOGISTIC}/training_observations"].status == written.ANSWERED
    assert not (sharded.single / shards.MANIFEST_FILE).exists()


@pytest.mark.slow
def test_merged_shards_are_the_single_run_file_for_file(sharded, merged) -> None:
    assert merged.returncode == 0, merged.stderr
    assert "merged 2 of 2 shards: 4 submissions" in merged.stdout
    merged_files, single_files = tree_digest(sharded.out), tree_digest(sharded.single)
    # Everything: grades.csv, questions.csv, manual_scores.csv, results/, records/, feedback/,
    # report.html and the written questions' pages.
    for name in ["grades.csv", "questions.csv", "manual_scores.csv", "report.html",
                 "manual/index.html", f"results/ada/{LOGISTIC}.json", "feedback/di.html",
                 f"manual/{LOGISTIC}-training_observations.html"]:
        assert name in single_files
    assert merged_files == single_files
    assert _students(sharded.out) == sorted(SHARD_OF)


@pytest.mark.slow
def test_scores_given_by_hand_merge_as_grade_merges_them(sharded, merged, tmp_path) -> None:
    assert merged.returncode == 0, merged.stderr
    scores = tmp_path / "scores.csv"
    scores.write_text("student,assignment,question,points,comment\n"
                      f"ada,{LOGISTIC},training_observations,1.5,clear\n"
                      f"di,{LINEAR},gradient_derivation,2,\n", encoding="utf-8")
    again = _run("merge", *map(str, sharded.shard_outs), "--out", str(sharded.out),
                 "--manual-scores", str(scores))
    assert again.returncode == 0, again.stderr
    assert "merged 2 of 12 scores" in again.stdout
    remerged = sharded.root / "remerged"
    sharded.out.rename(remerged)
    sharded.single.rename(sharded.out)
    try:
        graded = _run("grade", "--submissions", str(sharded.submissions), "--out",
                      str(sharded.out), "--workers", "1", "--manual-scores", str(scores))
        assert graded.returncode == 0, graded.stderr
        assert "0 new or changed, 4 unchanged" in graded.stdout
        assert tree_digest(remerged) == tree_digest(sharded.out)
    finally:  # leave the fixture's folders as they were
        sharded.out.rename(sharded.single)
        remerged.rename(sharded.out)


# --- refusals --------------------------------------------------------------------------------

def _copy(sharded: Sharded, tmp_path: Path) -> list[Path]:
    copies = [tmp_path / f"shard{k}" for k in range(2)]
    for source, copy in zip(sharded.shard_outs, copies):
        shutil.copytree(source, copy)
    return copies


def _edit(shard_out: Path, **changes) -> None:
    path = shard_out / shards.MANIFEST_FILE
    data = json.loads(path.read_text("utf-8"))
    for key, change in changes.items():
        data[key] = change(data[key]) if callable(change) else change
    path.write_text(json.dumps(data), encoding="utf-8")


def _refused(inputs: list[Path], out: Path, match: str, **options) -> None:
    with pytest.raises(MergeError, match=match):
        merge_shards(inputs, out, **options)
    assert not out.exists(), "a refused merge wrote something"


@pytest.mark.slow
def test_a_missing_shard_is_named_unless_allowed(sharded, tmp_path) -> None:
    zero, one = _copy(sharded, tmp_path)
    _refused([one], tmp_path / "out", r"shard\(s\) 0 of 2 missing")
    summary = merge_shards([one], tmp_path / "out", allow_missing=True)
    assert "merged 1 of 2 shards: 2 submissions" in summary
    assert _students(tmp_path / "out") == ["broken", "di"]


@pytest.mark.slow
def test_shards_graded_differently_are_refused(sharded, tmp_path) -> None:
    zero, one = _copy(sharded, tmp_path)
    _edit(one, grading="0" * 64)
    _refused([zero, one], tmp_path / "out", "graded differently")


@pytest.mark.slow
def test_overlapping_or_repeated_shards_are_refused(sharded, tmp_path) -> None:
    zero, one = _copy(sharded, tmp_path)
    _refused([zero, zero], tmp_path / "out", "given twice")
    _edit(one, entries=lambda entries: {**entries, "ada.ipynb": "0" * 64})
    _refused([zero, one], tmp_path / "out", "overlap: entry 'ada.ipynb'")


@pytest.mark.slow
def test_other_splits_releases_and_lost_records_are_refused(sharded, tmp_path) -> None:
    zero, one = _copy(sharded, tmp_path)
    _edit(one, n=3)
    _refused([zero, one], tmp_path / "out", "split the class differently")
    _edit(one, n=2, release="0" * 64)
    _refused([zero, one], tmp_path / "out", "other released assignments")
    _edit(one, release=shards.read_manifest(zero).release)
    shutil.rmtree(one / "records")
    _refused([zero, one], tmp_path / "out", "lacks the record of entry 'broken.ipynb'")
    with pytest.raises(MergeError, match="is one of the shards"):
        merge_shards([zero, one], one)


@pytest.mark.slow
def test_a_folder_that_is_no_shard_is_refused_in_one_line(sharded, tmp_path) -> None:
    refused = _run("merge", str(sharded.shard_outs[0]), str(sharded.single),
                   "--out", str(tmp_path / "out"))
    assert refused.returncode == 1 and not (tmp_path / "out").exists()
    assert refused.stderr.count("\n") == 1
    assert refused.stderr.startswith(f"merge refused: {sharded.single} is not the OUT of a "
                                     "finished shard")
