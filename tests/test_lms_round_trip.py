"""The LMS round trip through the real path: Canvas's "Download Submissions" and Moodle's
"Download all submissions", unzipped as they come, graded by ``make grade`` (released zips,
confined notebook processes) into rows keyed by the LMS's own ids; then ``make export`` fills the
LMS's own gradebook export (Canvas) or grading worksheet (Moodle) in its existing columns, checked
against each system's documented import rules (``labkit.outputs.lms_gradebook``)."""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from labkit import paths
from labkit.course import autograders
from labkit.grading import intake
from labkit.outputs import gradebook, lateness, lms

LINEAR, LOGISTIC, SOFTMAX = ("1_1_linear_regression", "1_2_logistic_regression",
                             "1_3_softmax_regression")
STEMS = [LINEAR, LOGISTIC, SOFTMAX]
#: One time for every file, as unzipping a download gives them.
UNZIPPED = 1_700_000_000


def _autograded(stem: str) -> float:
    """What a full-mark notebook scores before anyone scores its written answers."""
    (assignment,) = [a for a in autograders.load_all() if a.stem == stem]
    return sum(q.points for q in assignment.columns if not q.written)


def _worth(stem: str) -> float:
    (assignment,) = [a for a in autograders.load_all() if a.stem == stem]
    return sum(q.points for q in assignment.columns)


def _make(*args: str) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if k != "MAKEFLAGS"}
    environment["COLUMNS"] = "80"  # as a terminal exports it: never taken for COLUMNS=
    environment["TZ"] = "UTC"  # the zone Moodle's worksheet times are read in
    return subprocess.run(["make", "--no-print-directory", *args], cwd=paths.ROOT, env=environment,
                          capture_output=True, text=True, timeout=900)


def _place(source: Path, target: Path) -> None:
    shutil.copy(source, target)
    os.utime(target, (UNZIPPED, UNZIPPED))


def _rows(path: Path) -> list[list[str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.reader(handle))


def _totals(out: Path) -> dict[str, dict[str, float]]:
    """Per student, per assignment, the points grades.csv gives."""
    totals: dict[str, dict[str, float]] = {}
    for row in gradebook.read_csv(out / "grades.csv"):
        per = totals.setdefault(row["student"], {stem: 0.0 for stem in STEMS})
        for column, value in row.items():
            stem = column.split("/")[0]
            if stem in per and value.strip():
                per[stem] += float(value)
    return totals


# --- Canvas ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def canvas(tmp_path_factory) -> tuple[Path, Path, subprocess.CompletedProcess]:
    """Canvas's download: Ada (1001) handed in 1.1 and 1.3; Alan (1002), late, uploaded 1.2
    twice, the blank first and his work again under the same name (Canvas's ``-1``); Grace
    (1003) a PDF only; beside them a stray notebook and the TA's notes."""
    folder = tmp_path_factory.mktemp("canvas") / "submissions"
    folder.mkdir()
    _place(paths.solution_notebook(LINEAR), folder / f"lovelaceada_1001_5001_{LINEAR}.ipynb")
    _place(paths.solution_notebook(SOFTMAX), folder / f"lovelaceada_1001_5001_{SOFTMAX}.ipynb")
    _place(paths.student_notebook(LOGISTIC), folder / f"turingalan_LATE_1002_5002_{LOGISTIC}.ipynb")
    _place(paths.solution_notebook(LOGISTIC),
           folder / f"turingalan_LATE_1002_5002_{LOGISTIC}-1.ipynb")
    (folder / "hoppergrace_1003_5003_report.pdf").write_bytes(b"%PDF-1.4\n")
    _place(paths.student_notebook(LINEAR), folder / "stray.ipynb")
    (folder / "notes.txt").write_text("grade these by Friday\n")
    out = folder.parent / "out"
    done = _make("grade", f"SUBMISSIONS={folder}", f"OUT={out}", "WORKERS=2")
    assert done.returncode == 0, done.stderr[-3000:]
    return folder, out, done


def test_a_canvas_download_is_graded_by_canvas_user_id(canvas) -> None:
    folder, out, done = canvas
    totals = _totals(out)
    # One row per Canvas user, keyed by the id Canvas's gradebook knows; the stray notebook and
    # the notes are no student.
    assert sorted(totals) == ["1001", "1002", "1003"]
    assert totals["1001"] == {LINEAR: _autograded(LINEAR), LOGISTIC: 0.0,
                              SOFTMAX: _autograded(SOFTMAX)}
    # The later upload of one name ("-1") is graded, not the blank one beside it.
    assert totals["1002"][LOGISTIC] == _autograded(LOGISTIC) > 0
    assert totals["1003"] == {stem: 0.0 for stem in STEMS}
    notes = {row["student"]: row["notes"] for row in gradebook.read_csv(out / "grades.csv")}
    assert "no notebook found" in notes["1003"]
    assert f"turingalan_LATE_1002_5002_{LOGISTIC}.ipynb: a second notebook" in notes["1002"]
    summary = done.stdout
    assert "read as a Canvas download: 3 students by Canvas user id, 1 marked LATE" in summary
    assert "not graded, as not named as Canvas names a student's files" in summary
    assert "notes.txt, stray.ipynb" in summary
    # Each submission says what Canvas says of it, for the late penalties; the name is kept.
    found = intake.class_entries(folder)
    by_id = {entry.student: entry for entry in found.students}
    alan = intake.discover(by_id["1002"], STEMS, folder.parent / "work")
    ada = intake.discover(by_id["1001"], STEMS, folder.parent / "work")
    assert (alan.marked_late, ada.marked_late) == (True, False)
    assert (alan.display_name, ada.display_name) == ("turingalan", "lovelaceada")
    assert alan.handed_in is None  # Canvas's names give no time
    # The pages name the student as Canvas does, beside the id.
    page = (out / "feedback" / "1002.html").read_text(encoding="utf-8")
    assert '<h1>Feedback for <span class="name">turingalan</span> <span class="id">1002</span>' \
        in page


def test_canvas_export_fills_the_existing_columns_by_canvas_s_import_rules(canvas) -> None:
    _, out, _ = canvas
    roster = out.parent / "gradebook.csv"
    linear, logistic, softmax = ("Lab 1.1 Linear regression (48211)",
                                 "Lab 1.2 Logistic regression (48212)",
                                 "Lab 1.3 Softmax regression (48213)")
    # Canvas's "Export Entire Gradebook": identity columns, assignments as "name (id)", a quiz
    # the kit does not grade, then the read-only totals; 1.2 is worth twice the kit's points.
    roster.write_text(
        f"Student,ID,SIS User ID,SIS Login ID,Section,{linear},{logistic},{softmax},Quiz 1 (48300),"
        "Current Score,Final Score,Final Grade\n"
        f"    Points Possible,,,,,{_worth(LINEAR):g},{2 * _worth(LOGISTIC):g},{_worth(SOFTMAX):g},"
        "10.00,(read only),(read only),(read only)\n"
        "\"Lovelace, Ada\",1001,S1001,ada@uni.edu,Lab A,,,,9.00,90.00,90.00,A\n"
        "\"Turing, Alan\",1002,S1002,alan@uni.edu,Lab A,,,,7.00,70.00,70.00,C\n"
        "\"Hopper, Grace\",1003,S1003,grace@uni.edu,Lab B,,,,8.00,80.00,80.00,B\n"
        "\"Noether, Emmy\",1004,S1004,emmy@uni.edu,Lab B,12.50,,EX,6.00,60.00,60.00,D\n"
        "\"Student, Test\",9999,,,Lab A,,,,,,,\n", encoding="utf-8")
    done = _make("export", "LMS=canvas", f"ROSTER={roster}", f"OUT={out}")
    assert done.returncode == 0, done.stderr
    rows = _rows(out / "canvas_import.csv")
    # The identity columns Canvas needs kept, then the existing assignment columns only: no new
    # column (which would create an assignment), no quiz (left as it is), no read-only total.
    assert rows[0] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section",
                       linear, logistic, softmax]
    assert rows[1] == ["    Points Possible", "", "", "", "", f"{_worth(LINEAR):g}",
                       f"{2 * _worth(LOGISTIC):g}", f"{_worth(SOFTMAX):g}"]
    assert rows[2] == ["Lovelace, Ada", "1001", "S1001", "ada@uni.edu", "Lab A",
                       f"{_autograded(LINEAR):g}", "0", f"{_autograded(SOFTMAX):g}"]
    # Scaled to the points Canvas gives the assignment.
    assert rows[3] == ["Turing, Alan", "1002", "S1002", "alan@uni.edu", "Lab A", "0",
                       f"{2 * _autograded(LOGISTIC):g}", "0"]
    assert rows[4] == ["Hopper, Grace", "1003", "S1003", "grace@uni.edu", "Lab B", "0", "0", "0"]
    # Not graded by the kit: exactly as Canvas exported it, so the import changes nothing.
    assert rows[5] == ["Noether, Emmy", "1004", "S1004", "emmy@uni.edu", "Lab B", "12.50", "", "EX"]
    assert rows[6] == ["Student, Test", "9999", "", "", "Lab A", "", "", ""]
    assert len(rows) == 7
    assert "5 roster students, 3 with grades, 2 without a graded submission (left as the LMS " \
           "exported it)" in done.stdout
    assert f"{LOGISTIC} -> {logistic!r}" in done.stdout
    assert "points scaled to Canvas's" in done.stdout
    assert not (out / "canvas_unmatched.txt").exists()


def test_canvas_columns_come_from_a_mapping_file_or_are_refused_when_unclear(canvas) -> None:
    _, out, _ = canvas
    roster = out.parent / "ambiguous.csv"
    roster.write_text(
        "Student,ID,SIS User ID,SIS Login ID,Section,Lab 1.1 Linear regression (1),"
        "Lab 1.1 Linear regression resubmission (2),Lab 1.2 (3),Softmax regression (4),"
        "Final Score\n"
        "    Points Possible,,,,,30,30,10,21,(read only)\n"
        "\"Lovelace, Ada\",1001,,ada@uni.edu,Lab A,,,,,90\n", encoding="utf-8")
    refused = _make("export", "LMS=canvas", f"ROSTER={roster}", f"OUT={out}")
    assert refused.returncode != 0
    (message,) = [line for line in refused.stderr.splitlines() if line.startswith("export failed")]
    assert f"assignment {LINEAR} matches several of" in message
    assert "'Lab 1.1 Linear regression (1)', 'Lab 1.1 Linear regression resubmission (2)'" in message
    assert "COLUMNS=columns.toml" in message
    mapping = out.parent / "columns.toml"
    mapping.write_text(f'{LINEAR} = "Lab 1.1 Linear regression resubmission (2)"\n'
                       f'{SOFTMAX} = "Softmax regression (4)"\n', encoding="utf-8")
    done = _make("export", "LMS=canvas", f"ROSTER={roster}", f"OUT={out}", f"COLUMNS={mapping}")
    assert done.returncode == 0, done.stderr
    rows = _rows(out / "canvas_import.csv")
    assert rows[0][5:] == ["Lab 1.1 Linear regression resubmission (2)", "Softmax regression (4)"]
    assert rows[2][5:] == [f"{_autograded(LINEAR):g}", f"{_autograded(SOFTMAX):g}"]
    assert f"not exported (no column mapped): {LOGISTIC}" in done.stdout
    # A read-only column or one that is not there: refused, naming the columns there are.
    mapping.write_text(f'{LINEAR} = "Final Score"\n', encoding="utf-8")
    with pytest.raises(lms.ExportError, match="Canvas marks it read only, so its import would "
                                              "ignore it; its assignment columns are 'Lab 1.1"):
        lms.export(out, "canvas", roster, columns=mapping)
    mapping.write_text(f'{LINEAR} = "Section"\n', encoding="utf-8")
    with pytest.raises(lms.ExportError, match="it is not an assignment's column"):
        lms.export(out, "canvas", roster, columns=mapping)
    mapping.write_text(f'{LINEAR} = "Lab 9 (9)"\n', encoding="utf-8")
    with pytest.raises(lms.ExportError, match="which is not a column of the LMS's file"):
        lms.export(out, "canvas", roster, columns=mapping)


# --- Moodle ------------------------------------------------------------------------------------

WORKSHEET_HEADER = ('Identifier,"Full name","Email address",Status,Grade,"Maximum Grade",'
                    '"Grade can be changed","Last modified (submission)","Last modified (grade)",'
                    '"Feedback comments"\n')


@pytest.fixture(scope="module")
def moodle(tmp_path_factory) -> tuple[Path, Path, Path, subprocess.CompletedProcess]:
    """Moodle's download in folders: Ada (participant 2001) uploaded 1.1 and wrote an online
    text; Alan (2002) uploaded 1.2; the grading worksheet dates both and lists Grace (2003), who
    handed in nothing, and Emmy (2004), whose grade is locked."""
    base = tmp_path_factory.mktemp("moodle")
    folder = base / "submissions"
    ada = folder / "Ada Lovelace_2001_assignsubmission_file_"
    alan = folder / "Alan Turing_2002_assignsubmission_file_"
    text = folder / "Ada Lovelace_2001_assignsubmission_onlinetext_"
    for made in (ada, alan, text):
        made.mkdir(parents=True)
    _place(paths.solution_notebook(LINEAR), ada / f"{LINEAR}.ipynb")
    _place(paths.solution_notebook(LOGISTIC), alan / f"{LOGISTIC}.ipynb")
    (text / "onlinetext.html").write_text("<p>See my notebook.</p>", encoding="utf-8")
    worksheet = base / "Grades-Lab 1-42.csv"
    worksheet.write_text(
        WORKSHEET_HEADER
        + '"Participant 2001","Ada Lovelace",ada@uni.edu,"Submitted for grading",,100.00,Yes,'
          '"Tuesday, 14 November 2023, 3:04 PM",-,\n'
          '"Participant 2002","Alan Turing",alan@uni.edu,"Submitted for grading",,100.00,Yes,'
          '"Wednesday, 15 November 2023, 11:30 PM",-,\n'
          '"Participant 2003","Grace Hopper",grace@uni.edu,"No submission",,100.00,Yes,-,-,\n'
          '"Participant 2004","Emmy Noether",emmy@uni.edu,"No submission",55.00,100.00,No,-,'
          '"Monday, 13 November 2023, 9:00 AM",Seen\n', encoding="utf-8")
    out = base / "out"
    done = _make("grade", f"SUBMISSIONS={folder}", f"OUT={out}", "WORKERS=2",
                 f"WORKSHEET={worksheet}")
    assert done.returncode == 0, done.stderr[-3000:]
    return folder, worksheet, out, done


def test_a_moodle_download_is_graded_by_participant_id_with_its_submission_times(moodle) -> None:
    folder, worksheet, out, done = moodle
    totals = _totals(out)
    assert sorted(totals) == ["2001", "2002"]
    assert totals["2001"][LINEAR] == _autograded(LINEAR)
    assert totals["2002"][LOGISTIC] == _autograded(LOGISTIC)
    assert "read as a Moodle download: 2 students by participant id, submission times from " \
           "Grades-Lab 1-42.csv" in done.stdout
    assert "skipped 1 Moodle folder(s) or file(s) that are not uploaded files (online text or " \
           "feedback, no notebook in them): Ada Lovelace_2001_assignsubmission_onlinetext_" \
           in done.stdout
    found = intake.class_entries(folder, worksheet)
    (ada,) = [entry for entry in found.students if entry.student == "2001"]
    submission = intake.discover(ada, STEMS, out.parent / "work")
    assert submission.handed_in is not None and submission.handed_in.tzinfo is not None
    assert submission.handed_in.replace(tzinfo=None).isoformat() == "2023-11-14T15:04:00"
    assert (submission.marked_late, submission.display_name) == (False, "Ada Lovelace")
    assert "<title>Feedback for Ada Lovelace (2001)" in (out / "feedback" / "2001.html").read_text(
        encoding="utf-8")
    # Without the worksheet, no time, and the summary says how to get them.
    (bare,) = [e for e in intake.class_entries(folder).students if e.student == "2001"]
    assert intake.discover(bare, STEMS, out.parent / "work2").handed_in is None


def test_moodle_export_fills_the_worksheet_s_grade_and_feedback_and_nothing_else(moodle) -> None:
    _, worksheet, out, _ = moodle
    done = _make("export", "LMS=moodle", f"ROSTER={worksheet}", f"OUT={out}")
    assert done.returncode == 0, done.stderr
    rows = _rows(out / "moodle_import.csv")
    original = _rows(worksheet)
    # The worksheet's own layout, every line, every cell Moodle wrote kept ("-" included).
    assert rows[0] == original[0] and len(rows) == len(original)
    grade, feedback = rows[0].index("Grade"), rows[0].index("Feedback comments")
    lab = sum(_worth(stem) for stem in STEMS)
    for line, points in ((1, _autograded(LINEAR)), (2, _autograded(LOGISTIC))):
        assert [c for i, c in enumerate(rows[line]) if i not in (grade, feedback)] == \
               [c for i, c in enumerate(original[line]) if i not in (grade, feedback)]
        # The whole lab's points, scaled to the Maximum Grade of 100.
        assert rows[line][grade] == f"{round(points * 100 / lab, 2):g}"
        assert rows[line][feedback].startswith(f"Autograded: {points:g} of {lab:g} points (")
        assert "feedback page" in rows[line][feedback]
    assert f"{LINEAR} {_autograded(LINEAR):g} of {_worth(LINEAR):g}" in rows[1][feedback]
    assert rows[3] == original[3]  # Grace: nothing handed in, untouched
    assert rows[4] == original[4]  # Emmy: locked in Moodle, untouched
    assert "scaled to Moodle's" in done.stdout
    assert "4 roster students, 2 with grades, 2 without a graded submission" in done.stdout
    # One Moodle assignment per notebook: the columns file says which goes into its Grade.
    mapping = out.parent / "columns.toml"
    mapping.write_text(f'{LINEAR} = "Grade"\n', encoding="utf-8")
    result = lms.export(out, "moodle", worksheet, columns=mapping)
    rows = _rows(result.path)
    assert rows[1][grade] == f"{round(_autograded(LINEAR) * 100 / _worth(LINEAR), 2):g}"
    assert rows[2][grade] == "0"


# --- what does not fit the layouts ------------------------------------------------------------

def test_two_entries_for_one_lms_id_are_both_refused_and_a_plain_class_stays_plain(tmp_path) -> None:
    # Moodle: a participant's files twice (renamed by hand); Canvas: a folder named as a user id
    # beside that user's files. As in the kit's own layout, neither is graded, with one note.
    moodle = tmp_path / "moodle"
    for name in ("Ada Lovelace_2001_assignsubmission_file_", "Ada L_2001_assignsubmission_file_",
                 "Alan Turing_2002_assignsubmission_file_"):
        (moodle / name).mkdir(parents=True)
        _place(paths.solution_notebook(LINEAR), moodle / name / f"{LINEAR}.ipynb")
    found = intake.class_entries(moodle)
    assert found.layout == "moodle"
    (first, second) = [e for e in found.students if e.student == "2001"]
    note = intake.discover(first, STEMS, tmp_path / "w1").notes
    assert note == [intake.discover(second, STEMS, tmp_path / "w2").notes[0]]
    assert "2 submissions for the one student id '2001'; none of them was graded" in note[0]
    canvas = tmp_path / "canvas"
    canvas.mkdir()
    for name in (f"lovelaceada_1001_5001_{LINEAR}.ipynb", f"turingalan_1002_5002_{LINEAR}.ipynb"):
        _place(paths.solution_notebook(LINEAR), canvas / name)
    (canvas / "1001").mkdir()
    found = intake.class_entries(canvas)
    assert found.layout == "canvas"
    assert sorted(e.name for e in found.students) == ["1001", "lovelaceada_1001", "turingalan_1002"]
    assert [e.same_id for e in found.students if e.student == "1001"] == [
        ("lovelaceada_1001",), ("1001",)]
    # A class in the kit's own layout whose one file happens to look like Canvas's: still plain.
    plain = tmp_path / "plain"
    for name in ("ada", "bob", "carol"):
        (plain / name).mkdir(parents=True)
    _place(paths.solution_notebook(LINEAR), plain / "dee_2024_1_lab.ipynb")
    found = intake.class_entries(plain)
    assert found.layout == "" and [e.student for e in found.students] == [
        "ada", "bob", "carol", "dee_2024_1_lab"]


def test_a_zip_download_or_a_broken_worksheet_is_refused_in_one_sentence(tmp_path) -> None:
    from labkit.grading import classrun

    download = tmp_path / "submissions.zip"
    download.write_bytes(b"PK\x05\x06" + bytes(18))
    with pytest.raises(SystemExit, match=r"SUBMISSIONS is a zip file, .*: unzip it into a folder "
                                         r"of its own \(unzip '.*submissions.zip' -d "):
        classrun.grade_class(download, tmp_path / "out")
    folder = tmp_path / "moodle"
    (folder / "Ada Lovelace_2001_assignsubmission_file_").mkdir(parents=True)
    sheet = tmp_path / "worksheet.csv"
    sheet.write_text("Name,Mark\nAda,3\n", encoding="utf-8")
    found = intake.class_entries(folder, sheet)
    assert found.students[0].handed_in is None
    assert any(note.startswith("no submission times: ") and "is not a Moodle grading worksheet"
               in note for note in found.notes)
    out = _graded(tmp_path)
    with pytest.raises(lms.ExportError, match="the roster .* is not one: give Canvas's gradebook "
                                              "export or Moodle's grading worksheet as ROSTER"):
        lms.export(out, "moodle", sheet, columns=sheet)
    # A worksheet's header, then a line the csv reader refuses (a field over its limit).
    sheet.write_text(WORKSHEET_HEADER + '"Participant 2001","' + "x" * 200_000 + '"\n',
                     encoding="utf-8")
    with pytest.raises(lms.ExportError, match="is not a readable CSV file .*download it again"):
        lms.export(out, "moodle", sheet)


def _graded(tmp_path: Path) -> Path:
    """An OUT with one graded student, written by the kit's gradebook writers."""
    out = tmp_path / "graded"
    out.mkdir()
    assignments = autograders.load_all(paths.lab_of(LINEAR))
    gradebook.write_grades(out / "grades.csv", assignments,
                           [gradebook.StudentRow("2001", {})], {})
    gradebook.write_questions(out / "questions.csv", assignments)
    return out


def test_moodle_s_flat_download_is_grouped_by_participant(tmp_path) -> None:
    # "Download submissions in folders" off: every file in one folder, named per participant.
    folder = tmp_path / "flat"
    folder.mkdir()
    _place(paths.solution_notebook(LINEAR),
           folder / f"Ada Lovelace_2001_assignsubmission_file_{LINEAR}.ipynb")
    _place(paths.solution_notebook(SOFTMAX),
           folder / f"Ada Lovelace_2001_assignsubmission_file_{SOFTMAX}-2.ipynb")
    (folder / "Ada Lovelace_2001_assignsubmission_onlinetext_onlinetext.html").write_text("hi")
    _place(paths.student_notebook(LOGISTIC),
           folder / f"Alan Turing_2002_assignsubmission_file_{LOGISTIC}.ipynb")
    found = intake.class_entries(folder)
    assert found.layout == "moodle" and found.others == []
    assert [(e.student, e.display_name, len(e.paths)) for e in found.students] == [
        ("2001", "Ada Lovelace", 2), ("2002", "Alan Turing", 1)]
    assert any("Ada Lovelace_2001_assignsubmission_onlinetext_onlinetext.html" in note
               for note in found.notes)
    ada = intake.discover(found.students[0], STEMS, tmp_path / "work")
    assert sorted(ada.notebooks) == [LINEAR, SOFTMAX] and ada.notes == []


def test_the_lms_s_late_mark_and_times_feed_the_late_policy(canvas, moodle, tmp_path) -> None:
    # The classes graded above, graded again with deadlines: rows are reused (no notebook runs),
    # and the late policy goes by what each LMS said: Canvas's LATE (a day, no time), Moodle's
    # worksheet time.
    deadlines = tmp_path / "deadlines.toml"
    deadlines.write_text(f"[due]\n{LOGISTIC} = 2023-11-01T23:59:00Z\n{LINEAR} = 2023-11-14T12:00:00Z\n"
                         "[policy]\nkind = \"per_day\"\nper_day = 0.1\n", encoding="utf-8")
    canvas_folder, canvas_out, _ = canvas
    moodle_folder, worksheet, moodle_out, _ = moodle
    for folder, out, extra in ((canvas_folder, canvas_out, []),
                               (moodle_folder, moodle_out, [f"WORKSHEET={worksheet}"])):
        again = tmp_path / out.parent.name
        shutil.copytree(out, again)
        done = _make("grade", f"SUBMISSIONS={folder}", f"OUT={again}", "WORKERS=2",
                     f"DEADLINES={deadlines}", *extra)
        assert done.returncode == 0, done.stderr[-3000:]
        assert "0 new or changed" in done.stdout
        rows = {row["student"]: row for row in gradebook.read_csv(again / "grades.csv")}
        if folder == canvas_folder:
            alan, ada = rows["1002"], rows["1001"]
            assert alan[lateness.days_late_column(LOGISTIC)] == "1"
            assert float(alan[lateness.penalty_column(LOGISTIC)]) > 0
            assert not ada[lateness.penalty_column(LINEAR)].strip(" 0")
        else:
            ada = rows["2001"]
            assert ada[lateness.handed_in_column(LINEAR)].startswith("2023-11-14T15:04")
            assert ada[lateness.days_late_column(LINEAR)] == "1"
            assert float(ada[lateness.penalty_column(LINEAR)]) > 0


def test_a_tas_round_trip_deadlines_an_extension_an_override_and_the_export(canvas, tmp_path):
    """What a TA does with a Canvas download, no file edited by hand but the TA's own three:
    grade it with due dates, an extension for one student (and the times Canvas's submission
    page shows for him), change one autograded score after a regrade request, then export into
    the gradebook's existing columns. Nothing is graded again."""
    folder, graded, _ = canvas
    out = tmp_path / "out"
    shutil.copytree(graded, out)
    deadlines = tmp_path / "deadlines.toml"
    deadlines.write_text(
        f'[due]\n{LINEAR} = 2023-11-14T12:00:00Z\n{LOGISTIC} = 2023-11-01T23:59:00Z\n'
        f'[extensions."1002"]\n{LOGISTIC} = {{ days = 3 }}\n'
        '[policy]\nkind = "per_day"\nper_day = 0.1\ncap = 0.5\n', encoding="utf-8")
    times = tmp_path / "times.csv"  # Alan handed in two days after the course's due time
    times.write_text(f"student,assignment,handed_in\n1002,{LOGISTIC},2023-11-03T20:00:00Z\n",
                     encoding="utf-8")
    scores = out / "manual_scores.csv"
    with open(scores, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    rows.append({"student": "1001", "assignment": LINEAR, "question": "pinv_svd", "points": "1",
                 "comment": "", "reason": "Regrade: the SVD was copied from a classmate."})
    with open(scores, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, ["student", "assignment", "question", "points", "comment",
                                         "reason"])
        writer.writeheader()
        writer.writerows(rows)
    done = _make("grade", f"SUBMISSIONS={folder}", f"OUT={out}", "WORKERS=2",
                 f"DEADLINES={deadlines}", f"TIMES={times}")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "0 new or changed" in done.stdout  # the records are reused: nothing runs again
    grades = {row["student"]: row for row in gradebook.read_csv(out / "grades.csv")}
    (linear,) = [a for a in autograders.load_all() if a.stem == LINEAR]
    pinv = next(q for q in linear.graded if q.name == "pinv_svd")
    assert float(grades["1001"][pinv.column]) == 1.0
    assert float(grades["1001"]["total"]) == _autograded(LINEAR) - (pinv.points - 1) \
        + _autograded(SOFTMAX)
    # Two days after the course's due time, one day inside his extension: on time.
    assert grades["1002"][lateness.days_late_column(LOGISTIC)].strip(" 0") == ""
    assert float(grades["1002"]["total"]) == _autograded(LOGISTIC)
    overrides = gradebook.read_csv(out / "overrides.csv")
    assert [(r["student"], r["question"], r["override"], r["reason"]) for r in overrides] == [
        ("1001", "pinv_svd", "1", "Regrade: the SVD was copied from a classmate.")]
    ada = (out / "feedback" / "1001.html").read_text(encoding="utf-8")
    assert "Regrade: the SVD was copied from a classmate." in ada
    alan = (out / "feedback" / "1002.html").read_text(encoding="utf-8")
    assert "2023-11-04" in alan  # the extended due time is shown

    roster = tmp_path / "gradebook.csv"
    columns = ("Lab 1.1 Linear regression (48211)", "Lab 1.2 Logistic regression (48212)",
               "Lab 1.3 Softmax regression (48213)")
    roster.write_text(
        f"Student,ID,SIS User ID,SIS Login ID,Section,{','.join(columns)}\n"
        f"    Points Possible,,,,,{_worth(LINEAR):g},{_worth(LOGISTIC):g},{_worth(SOFTMAX):g}\n"
        "\"Lovelace, Ada\",1001,S1001,ada@uni.edu,Lab A,,,\n"
        "\"Turing, Alan\",1002,S1002,alan@uni.edu,Lab A,,,\n"
        "\"Hopper, Grace\",1003,S1003,grace@uni.edu,Lab B,,,\n", encoding="utf-8")
    exported = _make("export", "LMS=canvas", f"ROSTER={roster}", f"OUT={out}")
    assert exported.returncode == 0, exported.stderr
    rows = _rows(out / "canvas_import.csv")
    assert rows[0] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", *columns]
    assert rows[2][5:] == [f"{_autograded(LINEAR) - (pinv.points - 1):g}", "0",
                           f"{_autograded(SOFTMAX):g}"]
    assert rows[3][5:] == ["0", f"{_autograded(LOGISTIC):g}", "0"]
