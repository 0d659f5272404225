"""What the grader reads from a submission is bounded and never misread: zip members within
budgets and streamed, links and special files never followed, one id per student, CSV cells no
spreadsheet runs, tensor buffers decoded once, and otter's export cell told apart by its
structure. Real files, real zips, real sockets throughout."""

from __future__ import annotations

import csv
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import threading
import warnings
import zipfile
from pathlib import Path

import nbformat
import pytest

from labkit import notebooks, paths
from labkit.grading import intake
from labkit.outputs import feedback, gradebook, lms
from labkit.course.questions import Question
from labkit.outputs import manual_scores
from labkit.sandbox import protocol

STEM = "1_1_linear_regression"


def _solution() -> Path:
    return paths.solution_notebook(STEM)


def _bomb(path: Path, members: int = 40, size: int = 49 << 20) -> Path:
    """A zip of ``members`` notebooks of ``size`` bytes each, a few MB compressed."""
    block = b" " * size
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for index in range(members):
            archive.writestr(f"{STEM}_{index}.ipynb", block)
    return path


# --- zips -------------------------------------------------------------------------------------

_DISCOVER_IN_1_GB = """
import json, resource, sys, tracemalloc
from pathlib import Path
resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))
from labkit.grading import intake
tracemalloc.start()
submission = intake.discover(Path(sys.argv[1]), [sys.argv[2]], Path(sys.argv[3]))
print(json.dumps({"notes": submission.notes, "notebooks": sorted(submission.notebooks),
                  "peak_mb": tracemalloc.get_traced_memory()[1] / (1 << 20)}))
"""


def _discover_in_1_gb(entry: Path, work: Path) -> dict:
    """Discovery run in a process of at most 1 GB of address space; ``peak_mb`` is the most
    memory it held at once while discovering (as Python allocated it)."""
    result = subprocess.run([sys.executable, "-c", _DISCOVER_IN_1_GB, str(entry), STEM, str(work)],
                            capture_output=True, text=True, timeout=300, cwd=paths.ROOT)
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout)


def test_a_zip_bomb_is_refused_unread_with_a_note_naming_the_budget(tmp_path):
    bomb = _bomb(tmp_path / "bomb.zip")
    assert bomb.stat().st_size < 3 << 20
    found = _discover_in_1_gb(bomb, tmp_path / "work")
    assert found["notebooks"] == []
    [note] = found["notes"]
    assert note.startswith("bomb.zip: its notebooks would unpack to 1960 MB")
    assert f"{intake.MAX_SUBMISSION_BYTES >> 20} MB" in note
    assert found["peak_mb"] < 5


def test_zip_members_are_streamed_one_at_a_time(tmp_path):
    """Three members of 45 MB each (within every budget) cost the memory of one: each is
    streamed to the work folder, and only the notebook being matched is read and parsed."""
    entry = tmp_path / "carol"
    entry.mkdir()
    solution = json.loads(_solution().read_text())
    solution["metadata"]["padding"] = " " * (45 << 20)
    padded = json.dumps(solution)
    with zipfile.ZipFile(entry / "export.zip", "w", zipfile.ZIP_DEFLATED) as archive:
        for index in range(3):
            archive.writestr(f"old_{index}/{STEM}.ipynb", padded)
    found = _discover_in_1_gb(entry, tmp_path / "work")
    assert found["notebooks"] == [STEM]
    assert sum("a second notebook" in note for note in found["notes"]) == 2
    # One member in memory at once, and of it at most its text and its parse.
    assert found["peak_mb"] < 2.5 * 45


def test_a_zip_of_too_many_members_is_refused_with_a_note(tmp_path):
    path = tmp_path / "many.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.write(_solution(), f"{STEM}.ipynb")
        for index in range(intake.MAX_ZIP_MEMBERS):
            archive.writestr(f"data/{index}.txt", b"")
    submission = intake.discover(path, [STEM], tmp_path / "work")
    assert submission.notebooks == {}
    [note] = submission.notes
    assert note.startswith("many.zip: holds 1001 files")
    assert f"budget of {intake.MAX_ZIP_MEMBERS} files in a zip" in note


def test_a_zip_whose_member_list_is_huge_is_refused_before_it_is_parsed(tmp_path):
    """The end record announces a member list of 64 MB: refused from the end record alone."""
    path = tmp_path / "directory.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.write(_solution(), f"{STEM}.ipynb")
    data = bytearray(path.read_bytes())
    end = data.rfind(b"PK\x05\x06")
    struct.pack_into("<L", data, end + 12, 64 << 20)
    path.write_bytes(bytes(data))
    submission = intake.discover(path, [STEM], tmp_path / "work")
    assert submission.notebooks == {}
    assert "its list of files takes 64 MB, over the budget of 1024 KB" in submission.notes[0]


def test_a_zip_within_budgets_is_graded_as_before(tmp_path):
    path = tmp_path / "dana.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.write(_solution(), f"{STEM}.ipynb")
        archive.writestr("notes.txt", "hello")
    submission = intake.discover(path, [STEM], tmp_path / "work")
    assert submission.notes == []
    assert submission.notebooks[STEM].read_bytes() == _solution().read_bytes()
    assert not any(p.name.startswith(".discover") for p in (tmp_path / "work").iterdir())


def test_a_folder_of_too_many_files_is_looked_at_only_up_to_the_budget(tmp_path):
    entry = tmp_path / "gina"
    (entry / "data").mkdir(parents=True)
    shutil.copy(_solution(), entry / f"{STEM}.ipynb")
    for index in range(intake.MAX_ENTRY_FILES + 10):
        (entry / "data" / f"{index}.txt").touch()
    submission = intake.discover(entry, [STEM], tmp_path / "work")
    assert f"gina: more than {intake.MAX_ENTRY_FILES} files and folders" in submission.notes[0]


# --- links and special files -----------------------------------------------------------------

def test_a_link_to_another_students_notebook_is_never_followed(tmp_path):
    submissions = tmp_path / "submissions"
    (submissions / "alice").mkdir(parents=True)
    shutil.copy(_solution(), submissions / "alice" / f"{STEM}.ipynb")
    (submissions / "bob").mkdir()
    (submissions / "bob" / f"{STEM}.ipynb").symlink_to(f"../alice/{STEM}.ipynb")
    (submissions / "eve.ipynb").symlink_to(submissions / "alice" / f"{STEM}.ipynb")
    (submissions / "mallory").symlink_to(submissions / "alice")
    for name in ("bob", "eve.ipynb", "mallory"):
        submission = intake.discover(submissions / name, [STEM], tmp_path / "work" / name)
        assert submission.notebooks == {}, name
        [note] = submission.notes
        assert "symbolic link or special file" in note and "not graded" in note, note
    alice = intake.discover(submissions / "alice", [STEM], tmp_path / "work" / "alice")
    assert list(alice.notebooks) == [STEM] and alice.notes == []


def test_fifos_and_sockets_are_never_opened(tmp_path):
    entry = tmp_path / "frank"
    entry.mkdir()
    os.mkfifo(entry / f"{STEM}.ipynb")
    os.mkfifo(entry / "export.zip")
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(entry / "lab.ipynb"))
    try:
        submission = intake.discover(entry, [STEM], tmp_path / "work")
    finally:
        server.close()
    assert submission.notebooks == {}
    [note] = submission.notes
    assert note.startswith(f"frank/{STEM}.ipynb, frank/export.zip, frank/lab.ipynb: a symbolic "
                           f"link or special file")


# --- one id per student ------------------------------------------------------------------------

def test_two_entries_with_one_id_are_both_refused_and_make_one_row(tmp_path, assignments):
    submissions = tmp_path / "submissions"
    (submissions / "dup").mkdir(parents=True)
    shutil.copy(_solution(), submissions / "dup" / f"{STEM}.ipynb")
    shutil.copy(_solution(), submissions / "dup.ipynb")
    shutil.copy(_solution(), submissions / "solo.ipynb")
    rows = []
    for entry in sorted(submissions.iterdir()):
        submission = intake.discover(entry, [STEM], tmp_path / "work" / entry.name)
        rows.append(gradebook.StudentRow(submission.student, notes=submission.notes))
        if entry.name != "solo.ipynb":
            assert submission.notebooks == {}
            assert submission.notes == ["dup and dup.ipynb: 2 submissions for the one student "
                                        "id 'dup'; none of them was graded (rename all but one, "
                                        "so that each student has one entry)"]
    gradebook.write_grades(tmp_path / "grades.csv", assignments, rows)
    with open(tmp_path / "grades.csv", newline="") as handle:
        students = [row["student"] for row in csv.DictReader(handle)]
    assert students == ["dup", "solo"]


# --- CSV cells ---------------------------------------------------------------------------------

HOSTILE_IDS = ["=2+5", "+cmd", "-1+1", "@SUM(A1)", "\tx", "\rx", "'quoted", "'=both", "plain"]


def _graded_out(tmp_path: Path, assignments) -> Path:
    out = tmp_path / "out"
    column = gradebook.columns(assignments)[0]
    rows = [gradebook.StudentRow(student, {column: 1.5}, [f"{student}.ipynb: a note"])
            for student in HOSTILE_IDS]
    rows.append(gradebook.StudentRow("neg", {column: -2.0}, []))
    gradebook.write_grades(out / "grades.csv", assignments, rows)
    gradebook.write_questions(out / "questions.csv", assignments)
    return out


def test_no_cell_of_grades_csv_starts_like_a_formula_and_numbers_stay_numbers(tmp_path, assignments):
    out = _graded_out(tmp_path, assignments)
    with open(out / "grades.csv", newline="") as handle:
        table = list(csv.reader(handle))
    for row in table:
        for cell in row:
            assert not cell.startswith(("=", "+", "@", "\t", "\r")), cell
            assert not cell.startswith("-") or float(cell) < 0, cell
    by_student = {row[0]: row for row in table[1:]}
    assert "'=2+5" in by_student and "''quoted" in by_student
    assert by_student["neg"][1] == "-2" and by_student["'=2+5"][1] == "1.5"


def test_feedback_and_lms_read_the_escaped_ids_back_to_the_same_students(tmp_path, assignments):
    out = _graded_out(tmp_path, assignments)
    loaded = {student.student: student for student in feedback.load_class(out).students}
    assert sorted(loaded) == sorted(HOSTILE_IDS + ["neg"])
    assert loaded["=2+5"].notes == ["=2+5.ipynb: a note"]
    assert loaded["neg"].total == -2
    roster = tmp_path / "roster.csv"
    roster.write_text("submission,Student,ID\n=2+5,=HYPERLINK(\"x\"),101\n'quoted,Q,102\n")
    result = lms.export(out, "canvas", roster)
    assert result.matched == 2
    with open(result.path, newline="") as handle:
        exported = list(csv.reader(handle))
    assert exported[2][:2] == ["'=HYPERLINK(\"x\")", "101"]
    assert exported[2][5] == "1.5"


def test_the_scores_template_names_each_student_safely_and_reads_back(tmp_path):
    question = Question(STEM, "q_written", 2.0, written=True)
    path = tmp_path / "manual_scores.csv"
    manual_scores.write_template(path, ["=2+5", "-x"], [question])
    text = path.read_text()
    assert "\n'=2+5," in text and "\n'-x," in text
    filled = text.replace(f"'=2+5,{STEM},q_written,,", f"'=2+5,{STEM},q_written,1.5,")
    filled += f"-x,{STEM},q_written,2,saved by a spreadsheet without the apostrophe\n"
    path.write_text(filled)
    sheet = manual_scores.read_scores(path, ["=2+5", "-x"], [question])
    assert sheet.problems == []
    assert sheet.points == {"=2+5": {question.column: 1.5}, "-x": {question.column: 2.0}}
    assert manual_scores.add_missing_rows(path, ["=2+5", "-x", "@new"], [question]) == 1
    assert path.read_text().endswith(f"'@new,{STEM},q_written,,\n")


def test_spreadsheet_safe_is_undone_exactly():
    for text in HOSTILE_IDS + ["", "'", "''", "-", "1e5", "-0.5", "a=b", "'a"]:
        assert gradebook.from_spreadsheet(gradebook.spreadsheet_safe(text)) == text
    assert gradebook.spreadsheet_safe("-0.5") == "-0.5"
    assert gradebook.spreadsheet_safe("-") == "'-"


# --- tensor buffers ----------------------------------------------------------------------------

def _raw_message(header: object, buffers: list[bytes]) -> bytes:
    encoded = json.dumps(header).encode()
    parts = [struct.pack("!Q", len(encoded)), encoded, struct.pack("!Q", len(buffers))]
    for buffer in buffers:
        parts += [struct.pack("!Q", len(buffer)), buffer]
    return b"".join(parts)


def test_a_buffer_referenced_twice_is_refused_not_copied():
    size = 1 << 20
    tensor = {"__buffer__": 0, "dtype": "torch.uint8", "shape": [size]}
    left, right = socket.socketpair()
    with left, right:
        sender = threading.Thread(
            target=left.sendall, args=(_raw_message({"x": [tensor] * 61}, [b"\1" * size]),))
        sender.start()
        with pytest.raises(protocol.BadMessage, match="referenced more than once"):
            protocol.receive(right, deadline=None)
        sender.join()


def test_a_message_still_round_trips_its_tensors():
    import torch

    message = {"a": torch.arange(6, dtype=torch.float32).reshape(2, 3),
               "b": [torch.tensor([True, False]), torch.empty(0, 4)], "c": "text"}
    left, right = socket.socketpair()
    with left, right:
        protocol.send(left, message)
        received = protocol.receive(right, deadline=None)
    assert torch.equal(received["a"], message["a"]) and received["c"] == "text"
    assert torch.equal(received["b"][0], message["b"][0]) and received["b"][1].shape == (0, 4)
    assert protocol.MAX_DECODED_BYTES == protocol.MAX_MESSAGE_BYTES


# --- otter's export cell -----------------------------------------------------------------------

@pytest.mark.parametrize("source, export", [
    ("# Save your notebook first, then run this cell to export your submission.\n"
     "grader.export(pdf=False, run_tests=True)", True),
    ("grader.export()", True),
    ('"""Export."""\nnb.export(pdf=False)\npass\n', True),
    ('print("call grader.export( when done")', False),
    ("w = train()  # then grader.export(", False),
    ("w = train()\ngrader.export(pdf=False)", False),
    ("grader.export()\ngrader.export()", False),
    ("otter.grader.export()", False),
    ("x = grader.export()", False),
    ("%time grader.export()", False),
    ("grader.export(", False),
])
def test_the_export_cell_is_told_by_its_structure(source, export):
    assert notebooks.is_export_source(source) is export
    assert notebooks.is_export_cell(nbformat.v4.new_code_cell(source)) is export
    assert not notebooks.is_export_cell(nbformat.v4.new_markdown_cell("grader.export()"))


def test_the_solutions_export_cell_is_the_only_one_found():
    for stem in paths.assignment_stems():
        cells = notebooks.code_cell_sources(paths.solution_notebook(stem).read_bytes())
        assert [notebooks.is_export_source(c) for c in cells].count(True) == 1, stem


def test_of_a_blank_download_and_a_renamed_copy_the_later_work_is_graded(tmp_path):
    # The student downloaded the notebook twice and worked in the second copy, "(1)": the first
    # copy, blank and older, must not win for being named as released.
    entry = tmp_path / "submissions" / "dana"
    entry.mkdir(parents=True)
    blank, work = entry / f"{STEM}.ipynb", entry / f"{STEM} (1).ipynb"
    shutil.copy(paths.student_notebook(STEM), blank)
    shutil.copy(_solution(), work)
    os.utime(blank, (1_700_000_000, 1_700_000_000))
    os.utime(work, (1_700_003_600, 1_700_003_600))
    found = intake.discover(entry, [STEM], tmp_path / "work")
    assert found.notebooks[STEM].read_bytes() == work.read_bytes()
    (note,) = found.notes
    assert note.startswith(f"dana/{STEM}.ipynb: a second notebook for {STEM}, ignored")
    assert f"dana/{STEM} (1).ipynb graded, the later work" in note
    # Saved at the same time, the copy named as released is taken.
    os.utime(blank, (1_700_003_600, 1_700_003_600))
    again = intake.discover(entry, [STEM], tmp_path / "again")
    assert again.notebooks[STEM].read_bytes() == blank.read_bytes()


def test_system_files_are_skipped_and_other_files_are_not_students(tmp_path):
    submissions = tmp_path / "submissions"
    for folder in ("alice", "__MACOSX", ".ipynb_checkpoints"):
        (submissions / folder).mkdir(parents=True)
    for name in ("bob.ipynb", "carol.zip", "README.txt", "grades.xlsx", "Thumbs.db",
                 "desktop.ini", ".DS_Store"):
        (submissions / name).write_bytes(b"x")
    (submissions / "dave.ipynb").symlink_to(submissions / "bob.ipynb")
    found = intake.class_entries(submissions)
    assert [p.name for p in found.students] == ["alice", "bob.ipynb", "carol.zip", "dave.ipynb"]
    assert found.others == ["README.txt", "grades.xlsx"]
    assert intake.others_summary(found.others) == (
        "; not graded, as not a notebook, zip or folder: README.txt, grades.xlsx (put a "
        "student's file in a folder of their own to grade it)")
    assert intake.others_summary([]) == ""


def test_a_notebook_nbformat_warns_about_is_read_without_a_word_to_the_ta(tmp_path):
    # Cells without ids (a notebook saved by another front end): nbformat warns, in the TA's
    # console, about a student's file; the kit reads it quietly.
    nb = json.loads(_solution().read_text("utf-8"))
    for cell in nb["cells"]:
        cell.pop("id", None)
    nb["nbformat_minor"] = 5
    path = tmp_path / f"{STEM}.ipynb"
    path.write_text(json.dumps(nb), "utf-8")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        read = notebooks.read(path)
    assert [str(w.message) for w in caught] == []
    assert len(read.cells) == len(nb["cells"])
