"""Late work: due times, extensions, hand-in times and the late policy (``course.deadlines``,
``outputs.lateness``, ``grading.handin_times``).

The arithmetic is checked on exact values (days late, grace, cap, cutoff); the whole path on a
small real class graded in shards and merged, then graded again under each policy from the
recorded rows, with grades.csv, the LMS export and the feedback page (in headless Chromium) read
back.
"""

from __future__ import annotations

import csv
import datetime
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from labkit import paths
from labkit.cli import build_parser
from labkit.course.deadlines import Deadlines, DeadlinesError, Policy, parse_deadlines
from labkit.grading import classrun, handin_times, shards
from labkit.grading.merge import MergeError, merge_shards
from labkit.outputs import gradebook, lateness, lms, page_files

from .test_report import CHROMIUM, _dom, _screenshot

LINEAR, LOGISTIC, SOFTMAX = ("1_1_linear_regression", "1_2_logistic_regression",
                             "1_3_softmax_regression")
STEMS = [LINEAR, LOGISTIC, SOFTMAX]
PLUS2 = datetime.timezone(datetime.timedelta(hours=2))
DUE = datetime.datetime(2026, 10, 16, 23, 59, tzinfo=PLUS2)
MINUTE, HOUR, DAY = (datetime.timedelta(minutes=1), datetime.timedelta(hours=1),
                     datetime.timedelta(days=1))


# --- the arithmetic --------------------------------------------------------------------------

@pytest.mark.parametrize("after, grace, days", [
    (-DAY, 0, 0), (datetime.timedelta(0), 0, 0), (datetime.timedelta(seconds=1), 0, 1),
    (DAY, 0, 1), (DAY + datetime.timedelta(seconds=1), 0, 2), (3 * DAY + 4 * HOUR, 0, 4),
    (15 * MINUTE, 15, 0), (15 * MINUTE + datetime.timedelta(seconds=1), 15, 1),
    # past the grace, days count from the due time, grace not deducted
    (DAY + 10 * MINUTE, 15, 2), (DAY, 15, 1)])
def test_days_late_counts_started_days_after_the_grace(after, grace, days) -> None:
    assert lateness.days_late(DUE + after, DUE, grace) == days


def test_days_late_compares_instants_across_time_zones() -> None:
    # 22:30 UTC is 00:30 the next day at +02:00: 31 minutes after a 23:59 (+02:00) due time.
    assert lateness.days_late(datetime.datetime(2026, 10, 16, 22, 30, tzinfo=datetime.UTC),
                              DUE) == 1
    assert lateness.days_late(datetime.datetime(2026, 10, 16, 21, 59, tzinfo=datetime.UTC),
                              DUE) == 0


def _assess(policy: Policy, handed_in: datetime.datetime | None, *,
            source: str = lateness.FROM_TIMES, cutoff: datetime.datetime | None = None,
            extensions: dict | None = None, student: str = "ada") -> lateness.Assessment:
    deadlines = Deadlines({LOGISTIC: DUE}, extensions or {},
                          {LOGISTIC: cutoff} if cutoff else {}, policy)
    found = lateness.assess(deadlines, student, LOGISTIC, handed_in, source)
    assert found is not None
    return found


def test_per_day_takes_a_fraction_of_the_points_per_day_up_to_the_cap() -> None:
    policy = Policy("per_day", per_day=0.1, cap=0.3)
    taken = [_assess(policy, DUE + days * DAY - MINUTE).penalty(25.0, 30.0) for days in range(6)]
    assert taken == [0.0, 3.0, 6.0, 9.0, 9.0, 9.0]
    assert [lateness.late_fraction(d, policy) for d in range(5)] == [0.0, 0.1, 0.2, 0.3, 0.3]
    # Never more than was earned: a score does not go below 0.
    assert _assess(policy, DUE + 2 * DAY).penalty(2.0, 30.0) == 2.0
    assert _assess(policy, DUE + HOUR).penalty(0.0, 30.0) == 0.0
    # 3 x 0.1 is 0.30000000000000004 in floating point; the points come out exact.
    assert _assess(Policy("per_day", per_day=0.1), DUE + 3 * DAY - HOUR).penalty(10, 10) == 3.0


def test_cutoff_takes_everything_after_it_and_nothing_before() -> None:
    policy = Policy("cutoff", grace_minutes=10)
    cutoff = DUE + 2 * DAY
    before = _assess(policy, cutoff - MINUTE, cutoff=cutoff)
    assert before.days_late == 2 and not before.zero and before.penalty(7.0, 10.0) == 0.0
    assert not _assess(policy, cutoff + 10 * MINUTE, cutoff=cutoff).zero   # within the grace
    after = _assess(policy, cutoff + 11 * MINUTE, cutoff=cutoff)
    assert after.zero and after.penalty(7.0, 10.0) == 7.0
    # Without a cutoff of its own, an assignment is cut off at its due time.
    assert _assess(policy, DUE + 11 * MINUTE).penalty(7.0, 10.0) == 7.0
    assert _assess(policy, DUE + 10 * MINUTE).penalty(7.0, 10.0) == 0.0


def test_an_extension_moves_the_due_time_and_the_cutoff_alike() -> None:
    policy = Policy("cutoff")
    extended = {"bo": {LOGISTIC: DUE + 2 * DAY}}
    bo = _assess(policy, DUE + 3 * DAY, cutoff=DUE + 2 * DAY, extensions=extended, student="bo")
    assert bo.due == (DUE + 2 * DAY).isoformat() and bo.extended_from == DUE.isoformat()
    assert bo.cutoff == (DUE + 4 * DAY).isoformat() and bo.days_late == 1 and not bo.zero
    ada = _assess(policy, DUE + 3 * DAY, cutoff=DUE + 2 * DAY, extensions=extended)
    assert ada.extended_from == "" and ada.days_late == 3 and ada.zero


def test_marked_late_without_a_time_counts_one_day_and_unknown_counts_on_time() -> None:
    flagged = _assess(Policy("per_day", per_day=0.2), None, source=lateness.FROM_LMS_FLAG)
    assert flagged.days_late == 1 and flagged.handed_in == "" and flagged.penalty(8, 10) == 2.0
    assert _assess(Policy("cutoff"), None, source=lateness.FROM_LMS_FLAG).zero
    assert not _assess(Policy("cutoff"), None, source=lateness.FROM_LMS_FLAG,
                       cutoff=DUE + DAY).zero
    unknown = _assess(Policy("per_day", per_day=0.2), None, source=lateness.FROM_NONE)
    assert unknown.days_late == 0 and unknown.penalty(8, 10) == 0.0


def test_the_hand_in_time_comes_from_the_times_file_then_the_lms_then_nowhere() -> None:
    times = handin_times.HandInTimes({("ada", LOGISTIC): DUE, ("ada", None): DUE - DAY})
    lms_time = gradebook.StudentRow("ada", handed_in=(DUE + DAY).isoformat(), marked_late=True)
    assert handin_times.hand_in(lms_time, LOGISTIC, times) == (DUE, lateness.FROM_TIMES)
    assert handin_times.hand_in(lms_time, LINEAR, times) == (DUE - DAY, lateness.FROM_TIMES)
    assert handin_times.hand_in(lms_time, LINEAR, None) == (DUE + DAY, lateness.FROM_LMS)
    flagged = gradebook.StudentRow("ada", marked_late=True)
    assert handin_times.hand_in(flagged, LINEAR, None) == (None, lateness.FROM_LMS_FLAG)
    assert handin_times.hand_in(gradebook.StudentRow("ada"), LINEAR, None) == \
        (None, lateness.FROM_NONE)


# --- the files the teaching team writes ------------------------------------------------------

GOOD = f"""
[due]
{LINEAR} = 2026-10-09T23:59:00+02:00
{LOGISTIC} = "2026-10-16T23:59:00+02:00"

[extensions."ada"]
{LINEAR} = 2026-10-11T12:00:00Z
[extensions."bo"]
{LOGISTIC} = {{ days = 2 }}
[extensions."cy"]
days = 1

[policy]
kind = "per_day"
per_day = 0.1
cap = 0.5
grace_minutes = 15
"""


def test_a_deadlines_file_is_read_with_extensions_and_policy() -> None:
    deadlines = parse_deadlines(GOOD, STEMS)
    assert deadlines.policy == Policy("per_day", 0.1, 0.5, 15.0)
    assert deadlines.due_for("zoe", LOGISTIC) == DUE and deadlines.due_for("zoe", SOFTMAX) is None
    assert deadlines.due_for("bo", LOGISTIC) == DUE + 2 * DAY
    assert deadlines.due_for("ada", LINEAR) == datetime.datetime(2026, 10, 11, 12,
                                                                 tzinfo=datetime.UTC)
    assert deadlines.due_for("cy", LINEAR) == datetime.datetime(2026, 10, 10, 23, 59, tzinfo=PLUS2)
    assert deadlines.due_for("cy", LOGISTIC) == DUE + DAY


@pytest.mark.parametrize("text, says", [
    (f"[due]\n{LOGISTIC} = 2026-10-16T23:59:00\n", f"[due] {LOGISTIC}: 2026-10-16T23:59:00 has "
     "no time zone; add its offset"),
    (f"[due]\n{LOGISTIC} = 2026-10-16\n", "a date alone has no hour"),
    (f"[due]\n{LOGISTIC} = \"next friday\"\n", "is not a date-time"),
    ("[due]\n1_9_nothing = 2026-10-16T23:59:00Z\n", "'1_9_nothing', which is not a released"),
    (f"[due]\n{LOGISTIC} = 2026-10-16T23:59:00Z\n[due]\n", "not valid TOML"),
    (f"[due]\n{LOGISTIC} = 2026-10-16T23:59:00Z\n{LINEAR} =\n", "(at line 3, column"),
    ("[policy]\nkind = \"weekly\"\n", "kind must be one of 'none', 'per_day', 'cutoff'"),
    ("[policy]\nkind = \"per_day\"\n", "needs per_day"),
    ("[policy]\nkind = \"per_day\"\nper_day = 10\n", "[policy] per_day must be a number above 0"),
    ("[policy]\nkind = \"per_day\"\nper_day = 0.1\ncap = 0\n", "[policy] cap must be"),
    ("[policy]\nkind = \"none\"\ngrace = 5\n", "unknown key(s) grace"),
    ("[deadline]\n", "unknown key(s) or table(s) deadline"),
    (f"[due]\n{LOGISTIC} = 2026-10-16T23:59:00Z\n[extensions.\"bo\"]\n{LOGISTIC} = "
     "2026-10-15T23:59:00Z\n", "is before the due time"),
    (f"[due]\n{LOGISTIC} = 2026-10-16T23:59:00Z\n[extensions.\"bo\"]\n{LINEAR} = {{ days = 1 }}\n",
     f"extends {LINEAR}, which has no due time"),
    (f"[due]\n{LOGISTIC} = 2026-10-16T23:59:00Z\n[extensions]\nbo = 3\n",
     "[extensions.'bo'] must be a table"),
    (f"[due]\n{LOGISTIC} = 2026-10-16T23:59:00Z\n[cutoff]\n{LOGISTIC} = 2026-10-18T23:59:00Z\n",
     "[cutoff] is given but [policy] kind is 'none'"),
    (f"[due]\n{LOGISTIC} = 2026-10-16T23:59:00Z\n[policy]\nkind = \"cutoff\"\n[cutoff]\n"
     f"{LOGISTIC} = 2026-10-15T23:59:00Z\n", "is before its due time"),
])
def test_a_bad_deadlines_file_is_refused_in_one_sentence_naming_the_key(text, says) -> None:
    with pytest.raises(DeadlinesError) as refused:
        parse_deadlines(text, STEMS)
    assert says in str(refused.value) and "\n" not in str(refused.value)


def _times(path: Path, *lines: str) -> Path:
    path.write_text("student,assignment,handed_in\n" + "".join(f"{line}\n" for line in lines),
                    encoding="utf-8")
    return path


def test_a_times_file_is_read_and_a_bad_line_refuses_it(tmp_path) -> None:
    path = tmp_path / "times.csv"
    path.write_text("\ufeffStudent;Assignment;Handed_in\r\nada;;2026-10-16T22:30:00Z\r\n"
                    f"ada;{LOGISTIC};2026-10-17T00:30:00+02:00\r\n", encoding="utf-8")
    times = handin_times.read_times(path, STEMS)
    assert times.of("ada", LOGISTIC) == DUE + 31 * MINUTE
    assert times.of("ada", LINEAR) == DUE + 31 * MINUTE and times.of("bo", LINEAR) is None
    for lines, says in [
            (["ada,,2026-10-16T22:30:00"], "line 2, handed_in: 2026-10-16T22:30:00 has no time "
                                           "zone"),
            (["bo,,2026-10-16T22:30:00Z", "ada,1_9,2026-10-16T22:30:00Z"],
             "line 3: assignment '1_9' is not a released assignment"),
            (["ada,,2026-10-16T22:30:00Z", "ada,,2026-10-16T22:31:00Z"],
             "line 3: a second time for 'ada'"),
            ([",,2026-10-16T22:30:00Z"], "line 2: no student")]:
        with pytest.raises(handin_times.TimesError) as refused:
            handin_times.read_times(_times(path, *lines), STEMS)
        assert says in str(refused.value) and "\n" not in str(refused.value)
    path.write_text("name,time\nada,2026\n", encoding="utf-8")
    with pytest.raises(handin_times.TimesError, match="must start with a header line"):
        handin_times.read_times(path, STEMS)


def test_command_line_and_makefile_take_deadlines_and_times() -> None:
    for command in ("grade", "merge"):
        args = build_parser().parse_args([command, *(["x"] if command == "merge" else []),
                                          "--deadlines", "d.toml", "--times", "t.csv"])
        assert (args.deadlines, args.times) == ("d.toml", "t.csv")
    makefile = (paths.ROOT / "Makefile").read_text("utf-8")
    assert makefile.count('$(if $(DEADLINES),--deadlines "$(DEADLINES)")') == 2
    assert makefile.count('$(if $(TIMES),--times "$(TIMES)")') == 2


def test_make_grade_refuses_a_bad_deadlines_file_before_grading(tmp_path) -> None:
    submissions, out = tmp_path / "submissions", tmp_path / "out"
    submissions.mkdir()
    shutil.copy(paths.student_notebook(LOGISTIC), submissions / "ada.ipynb")
    bad = tmp_path / "deadlines.toml"
    bad.write_text(f"[due]\n{LOGISTIC} = 2026-10-16T23:59:00\n", encoding="utf-8")
    done = subprocess.run(["make", "--no-print-directory", "grade", f"SUBMISSIONS={submissions}",
                           f"OUT={out}", f"DEADLINES={bad}"], cwd=paths.ROOT,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode != 0
    assert (f"refused before grading: the deadlines file {bad}: [due] {LOGISTIC}: "
            "2026-10-16T23:59:00 has no time zone") in done.stderr
    assert not out.exists()
    with pytest.raises(SystemExit, match="TIMES file was given without DEADLINES"):
        classrun.grade_class(submissions, out, times=_times(tmp_path / "t.csv"))
    assert not out.exists()


# --- a real class ----------------------------------------------------------------------------

PER_DAY = f"""
[due]
{LINEAR} = 2026-10-09T23:59:00+02:00
{LOGISTIC} = 2026-10-16T23:59:00+02:00

[extensions."bo"]
{LOGISTIC} = {{ days = 2 }}

[policy]
kind = "per_day"
per_day = 0.25
cap = 0.5
grace_minutes = 10
"""
CUTOFF = PER_DAY.replace('kind = "per_day"\nper_day = 0.25\ncap = 0.5\n', 'kind = "cutoff"\n') \
    + f"\n[cutoff]\n{LOGISTIC} = 2026-10-18T23:59:00+02:00\n"
NONE = PER_DAY.replace('kind = "per_day"\nper_day = 0.25\ncap = 0.5\n', 'kind = "none"\n')
#: ada: 31 minutes late (1 day); bo: within his extension, though days after the course's due
#: time (and 9 days late on 1.1, which he did not hand in); di: 3 days 4 hours late (4 days).
TIMES = (f"ada,{LOGISTIC},2026-10-17T00:30:00+02:00", "bo,,2026-10-18T09:00:00Z",
         f"di,{LOGISTIC},2026-10-19T22:00:00-04:00")
#: ada and bo are in shard 0 of 2, di in shard 1 (tests/test_shards.py checks these names).
SHARD_OF = {"ada": 0, "bo": 0, "di": 1}


def _grades(out: Path) -> dict[str, dict[str, str]]:
    with open(out / "grades.csv", newline="", encoding="utf-8") as handle:
        return {row["student"]: row for row in csv.DictReader(handle)}


def _late(row: dict[str, str], stem: str = LOGISTIC) -> tuple[str, str, str]:
    return (row[lateness.handed_in_column(stem)], row[lateness.days_late_column(stem)],
            row[lateness.penalty_column(stem)])


@pytest.fixture(scope="module")
def late_class(tmp_path_factory) -> dict[str, Path]:
    """Three students who each hand in the 1.2 solution (8 autograded points of 10), graded in two
    shards under the per-day policy and merged into ``out``."""
    root = tmp_path_factory.mktemp("late")
    submissions = root / "submissions"
    submissions.mkdir()
    for student in SHARD_OF:
        shutil.copy(paths.solution_notebook(LOGISTIC), submissions / f"{student}.ipynb")
    assert {s: shards.shard_of(s, 2) for s in SHARD_OF} == SHARD_OF
    files = {"per_day": PER_DAY, "cutoff": CUTOFF, "none": NONE}
    found = {kind: root / f"{kind}.toml" for kind in files}
    for kind, text in files.items():
        found[kind].write_text(text, encoding="utf-8")
    times = _times(root / "times.csv", *TIMES)
    summaries = [classrun.grade_class(submissions, root / "shards" / str(k), workers=2,
                                      shard=shards.Shard(k, 2), deadlines=found["per_day"],
                                      times=times) for k in (0, 1)]
    assert all("late work:" in summary for summary in summaries)
    out = root / "out"
    merged = merge_shards([root / "shards" / "0", root / "shards" / "1"], out,
                          deadlines=found["per_day"], times=times)
    assert "late work: 3 of 6 submissions late" in merged, merged
    return {"submissions": submissions, "out": out, "times": times, **found}


@pytest.mark.slow
def test_per_day_penalties_come_off_the_assignment_before_the_total(late_class) -> None:
    grades = _grades(late_class["out"])
    header = next(csv.reader(open(late_class["out"] / "grades.csv", encoding="utf-8")))
    assert header[-1 - 9:] == ["notes", *lateness.columns(STEMS)]   # appended after the old ones
    ada, bo, di = grades["ada"], grades["bo"], grades["di"]
    assert ada[f"{LOGISTIC}/logistic_regression_loss_grad"] == "8"  # the points stay as graded
    assert _late(ada) == ("2026-10-17T00:30:00+02:00", "1", "2.5") and ada["total"] == "5.5"
    assert _late(bo) == ("2026-10-18T11:00:00+02:00", "", "") and bo["total"] == "8"
    assert _late(di) == ("2026-10-20T04:00:00+02:00", "4", "5") and di["total"] == "3"
    # bo handed 1.1 in nowhere, 9 days late: nothing earned, nothing taken.
    assert _late(bo, LINEAR) == ("2026-10-18T11:00:00+02:00", "9", "0")
    assert _late(ada, LINEAR) == ("", "", "") and _late(ada, SOFTMAX) == ("", "", "")


@pytest.mark.slow
def test_the_lms_export_carries_the_penalised_points(late_class, tmp_path) -> None:
    roster = tmp_path / "roster.csv"
    roster.write_text("submission,Student,ID\nada,Ada,1\nbo,Bo,2\ndi,Di,3\n", encoding="utf-8")
    lms.export(late_class["out"], "canvas", roster, tmp_path / "canvas.csv")
    with open(tmp_path / "canvas.csv", newline="", encoding="utf-8") as handle:
        rows = {row[0]: row[5:] for row in csv.reader(handle)}
    assert rows["Points Possible"] == ["30", "10", "21"]
    assert rows["Ada"] == ["0", "5.5", "0"] and rows["Bo"] == ["0", "8", "0"]
    assert rows["Di"] == ["0", "3", "0"]


@pytest.mark.slow
@pytest.mark.skipif(not CHROMIUM.exists(), reason="/usr/bin/chromium is absent")
def test_the_feedback_page_shows_due_hand_in_days_penalty_rule_and_both_scores(
        late_class, tmp_path) -> None:
    out = late_class["out"]
    names = dict(zip(sorted(SHARD_OF), page_files.page_names(sorted(SHARD_OF))))
    _screenshot(tmp_path, out / "feedback" / names["ada"], "ada")
    ada = _dom(tmp_path, out / "feedback" / names["ada"])
    section = ada[ada.index(f"<h2>{LOGISTIC}"):]
    assert f'<h2>{LOGISTIC} <span class="score">5.5 / 10 points</span></h2>' in section
    assert "<th>Due</th><td>2026-10-16 23:59 (UTC+02:00)</td>" in section
    assert ("<th>Handed in</th><td>2026-10-17 00:30 (UTC+02:00) (from the teaching team's times "
            "file)</td>") in section
    assert '<th>Days late</th><td class="days-late">1</td>' in section
    assert '<td class="late-penalty">2.5 points: 8 before, 5.5 after</td>' in section
    assert ("25% of the assignment's points per started day late, at most 50% in all; handing "
            "in up to 10 minutes after the due time counts as on time") in section
    assert re.search(r'class="total">Total: <strong>5.5 / \d+</strong>', ada)
    assert "This total is after late penalties of 2.5 points" in ada
    bo = _dom(tmp_path, out / "feedback" / names["bo"])
    assert ("<th>Due</th><td>2026-10-18 23:59 (UTC+02:00) (extended for you; the course's due "
            "time was 2026-10-16 23:59 (UTC+02:00))</td>") in bo
    report = _dom(tmp_path, out / "report.html")
    assert re.search(r'<h2 id="late">Late work</h2>\s*<p class="late-count"><strong>3</strong> '
                     r'of 6 submissions with a due time were late; the late policy took '
                     r'<strong>7.5</strong> points in all', report)
    assert report.count('<td class="student"><a href="feedback/') >= 3


@pytest.mark.slow
def test_each_policy_applies_to_the_recorded_rows_without_grading_again(late_class) -> None:
    submissions, out, times = late_class["submissions"], late_class["out"], late_class["times"]
    summary = classrun.grade_class(submissions, out, workers=1, deadlines=late_class["cutoff"],
                                   times=times)
    assert "0 new or changed, 3 unchanged" in summary
    grades = _grades(out)
    # cutoff at 18 Oct 23:59: ada, late, is before it; bo's extension moves his by two days; di
    # is after it and earns 0.
    assert [grades[s]["total"] for s in ("ada", "bo", "di")] == ["8", "8", "0"]
    assert _late(grades["ada"]) == ("2026-10-17T00:30:00+02:00", "1", "0")
    assert _late(grades["di"]) == ("2026-10-20T04:00:00+02:00", "4", "8")

    classrun.grade_class(submissions, out, workers=1, deadlines=late_class["none"], times=times)
    grades = _grades(out)
    assert [grades[s]["total"] for s in ("ada", "bo", "di")] == ["8", "8", "8"]
    assert _late(grades["di"]) == ("2026-10-20T04:00:00+02:00", "4", "0")

    # No time from anywhere: all on time, and the summary and the report say why.
    summary = classrun.grade_class(submissions, out, workers=1, deadlines=late_class["per_day"])
    assert "no hand-in times known" in summary and "0 of 6 submissions late" in summary
    assert [_grades(out)[s]["total"] for s in ("ada", "bo", "di")] == ["8", "8", "8"]
    assert "No hand-in time was known for anyone" in (out / "report.html").read_text("utf-8")

    # What the LMS download said, as recorded with each row: a time for ada, a mark for di.
    for student, fields in (("ada", {"handed_in": "2026-10-25T12:00:00+00:00"}),
                            ("di", {"marked_late": True})):
        record = classrun.record_path(out, f"{student}.ipynb")
        data = json.loads(record.read_text("utf-8"))
        data["row"].update(fields)
        record.write_text(json.dumps(data), encoding="utf-8")
    summary = classrun.grade_class(submissions, out, workers=1, deadlines=late_class["per_day"])
    assert "0 new or changed" in summary and "no hand-in times known" not in summary
    grades = _grades(out)
    assert _late(grades["ada"]) == ("2026-10-25T14:00:00+02:00", "9", "5")   # capped at 50%
    assert _late(grades["di"]) == ("", "1", "2.5")
    assert "marked late by the LMS, with no time: counted as 1 day late" in grades["di"]["notes"]
    assert [grades[s]["total"] for s in ("ada", "bo", "di")] == ["3", "8", "5.5"]
    # The times file still wins over the LMS's time.
    classrun.grade_class(submissions, out, workers=1, deadlines=late_class["per_day"], times=times)
    assert _late(_grades(out)["ada"]) == ("2026-10-17T00:30:00+02:00", "1", "2.5")

    # Without deadlines, grades.csv is as it always was, and no late-work file is left behind.
    classrun.grade_class(submissions, out, workers=1)
    assert lateness.handed_in_column(LOGISTIC) not in _grades(out)["ada"]
    assert not (out / lateness.LATENESS_FILE).exists()


@pytest.mark.slow
def test_a_merge_refuses_a_bad_times_file_before_writing(late_class, tmp_path) -> None:
    bad = _times(tmp_path / "times.csv", "ada,,yesterday")
    with pytest.raises(MergeError, match="line 2, handed_in: 'yesterday' is not a date-time"):
        merge_shards([late_class["out"].parent / "shards" / "0",
                      late_class["out"].parent / "shards" / "1"], tmp_path / "merged",
                     deadlines=late_class["per_day"], times=bad)
    assert not (tmp_path / "merged").exists()


def test_the_documented_deadlines_file_and_example_rules_hold() -> None:
    page = (paths.ROOT / "docs" / "ta-grading.md").read_text("utf-8")
    (example,) = re.findall(r"```toml\n(.*?)```", page, re.DOTALL)
    deadlines = parse_deadlines(example, STEMS)
    assert deadlines.policy == Policy("per_day", 0.1, 0.5, 15.0)
    assert deadlines.due_for("bo", LINEAR) == datetime.datetime(2026, 10, 11, 23, 59, tzinfo=PLUS2)
    # "an assignment worth 30 handed in 2 days late: 6 points off"; 24 h 10 min with 15 minutes'
    # grace is 2 days.
    due = deadlines.due[LINEAR]
    assert lateness.assess(deadlines, "zoe", LINEAR, due + 2 * DAY, lateness.FROM_TIMES) \
        .penalty(30, 30) == 6.0
    assert lateness.days_late(due + DAY + 10 * MINUTE, due, 15) == 2
