"""One question, released once: the autograder's manifest holds every question of an assignment
as the master gives it, grading reads that file and no master, and the column key
``<assignment>/<question>`` is built in one place."""

from __future__ import annotations

import csv
import os
import re
import shutil
import subprocess
import sys

import pytest

from labkit import paths
from labkit.course import autograders, masters, release, written
from labkit.course.questions import Question, column_key
from labkit.outputs import page_files

MASTERS = release.master_paths()
LOGISTIC = "1_2_logistic_regression"


@pytest.mark.parametrize("master", MASTERS, ids=lambda p: p.stem)
def test_the_manifest_lists_the_masters_questions_in_order_with_points_and_kind(master) -> None:
    released = autograders.load(master.stem)
    expected = [(q.name, q.points, q.written) for q in masters.parse(master).questions]
    assert [(q.name, q.points, q.written) for q in released.questions] == expected
    assert all(q.assignment == master.stem for q in released.questions)
    # The grades.csv order: the autograded questions, then the written ones.
    assert [q.name for q in released.columns] == (
        [name for name, _, written_ in expected if not written_]
        + [name for name, _, written_ in expected if written_])


@pytest.mark.parametrize("master", MASTERS, ids=lambda p: p.stem)
def test_written_questions_carry_their_prompt_and_solution_and_others_none(master) -> None:
    released = autograders.load(master.stem)
    student = written.read_cells(paths.student_notebook(master.stem))
    for question, (begin, _) in zip(released.written, written.regions(student)):
        assert question.prompt and question.prompt in "".join(student[begin]["source"])
        assert question.solution.startswith("**SOLUTION:**")
    assert all(not q.prompt and not q.solution for q in released.graded)


@pytest.mark.parametrize("master", MASTERS, ids=lambda p: p.stem)
def test_the_committed_manifest_is_what_the_release_makes_of_it(master) -> None:
    """A stale manifest (a master's points or prompt changed without `make release`) fails
    here in a second; test_release's fresh release checks the whole tree byte for byte."""
    made = autograders.manifest_text(master.stem,
                                     release.released_questions(masters.parse(master)))
    assert paths.release_manifest(master.stem).read_text("utf-8") == made, (
        f"{paths.release_manifest(master.stem)} is stale: run `make release` and commit it")


def test_a_question_knows_its_column() -> None:
    question = Question("1_2_logistic_regression", "training_observations", 2.0, written=True)
    assert question.column == "1_2_logistic_regression/training_observations"
    assert column_key("a", "b") == "a/b"


#: f-strings that are two fields joined by "/" and are not a question's key.
NOT_COLUMN_KEYS = {
    ("grading/shards.py", 'f"{self.k}/{self.n}"'),             # a shard, "K/N"
    ("outputs/markdown.py", 'f"{ATTACHMENTS_FOLDER}/{name}"'),  # a file's path
    ("outputs/markdown.py", 'f"{ATTACHMENTS_FOLDER}/{path.name}"'),
}
_TWO_FIELDS = re.compile(r"""f(["'])\{[^{}"']+\}/\{[^{}"']+\}\1""")


def test_the_column_key_is_built_in_one_place() -> None:
    package = paths.ROOT / "labkit"
    found = set()
    for path in package.rglob("*.py"):
        name = str(path.relative_to(package))
        text = path.read_text("utf-8")
        found.update((name, match.group(0)) for match in _TWO_FIELDS.finditer(text))
        assert '"/".join(' not in text, name
    assert found - NOT_COLUMN_KEYS == {("course/questions.py", 'f"{assignment}/{name}"')}


@pytest.mark.slow
def test_grading_reads_the_manifest_and_no_master_or_released_notebook(tmp_path) -> None:
    """Graded from a copy of the kit holding only the package and autograder/: no master, no
    student or solutions notebook to parse questions from, and the class files are as usual."""
    root = tmp_path / "kit"
    shutil.copytree(paths.ROOT / "labkit", root / "labkit",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(paths.AUTOGRADER, root / "autograder")
    submissions = tmp_path / "submissions"
    submissions.mkdir()
    shutil.copy(paths.solution_notebook(LOGISTIC), submissions / "ada.ipynb")
    out = tmp_path / "out"
    environment = {**os.environ, "LABKIT_GRADING_SECRET": "manifest"}
    done = subprocess.run([sys.executable, "-m", "labkit", "grade", "--submissions",
                           str(submissions), "--out", str(out), "--workers", "1"],
                          cwd=root, env=environment, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert not (root / "assignments").exists() and not (root / "student").exists()

    released = autograders.load(LOGISTIC)
    with open(out / "questions.csv", newline="", encoding="utf-8") as handle:
        listed = [(r["assignment"], r["question"], float(r["points"]), r["manual"])
                  for r in csv.DictReader(handle) if r["assignment"] == LOGISTIC]
    assert listed == [(LOGISTIC, q.name, q.points, "true" if q.written else "false")
                      for q in released.columns]
    with open(out / "grades.csv", newline="", encoding="utf-8") as handle:
        (ada,) = csv.DictReader(handle)
    assert all(float(ada[q.column]) == q.points for q in released.graded)
    (question,) = released.written
    page = (out / "manual" / page_files.written_page(LOGISTIC, question.name)).read_text("utf-8")
    assert '<div class="prompt"><h3>Exercise 2 (written) — what do you observe? (2 points)</h3>' in page
    assert ('<summary>Reference solution</summary><p><strong>SOLUTION:</strong> The random start '
            'has only positive weights') in page
