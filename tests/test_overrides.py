"""A TA overrides an autograded score (a regrade), with a reason, in the scores file.

The reading of the rows is tested on its own (no kernel); the rest runs the real path: a small
class graded by ``grade_class`` (as a shard, so that ``merge`` can be run on it without grading
again), override rows written by hand, the class run again (no notebook runs again), and the
gradebook, ``overrides.csv``, ``manual_problems.txt``, the feedback page and the report read back,
the pages in headless Chromium.
"""

from __future__ import annotations

import csv
import re
import shutil
from pathlib import Path

import pytest

from labkit import paths
from labkit.course import autograders
from labkit.grading import classrun, merge, shards
from labkit.outputs import manual_scores, overrides, page_files

LINEAR = "1_1_linear_regression"
PINV = f"{LINEAR}/pinv_svd"
AS_COLUMN = f"{LINEAR}/as_column"
DERIVATION = f"{LINEAR}/gradient_derivation"
HEADER = ("student", "assignment", "question", "points", "comment", "reason")
#: Markdown, as a TA writes it, and markup that must reach the student as text.
REASON = "Regrade: your SVD is right, the **tolerance** was too tight <img src=x onerror=alert(1)>"
CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
needs_chromium = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="/usr/bin/chromium is absent (tools/ensure-chromium)")


def _scores(path: Path, rows: list[list[str]], header=HEADER) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
    return path


def _grades(out: Path) -> dict[str, dict[str, str]]:
    with open(out / "grades.csv", newline="", encoding="utf-8") as handle:
        return {row["student"]: row for row in csv.DictReader(handle)}


def _overrides(out: Path) -> list[dict[str, str]]:
    with open(out / overrides.OVERRIDES_FILE, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


# --- reading the rows ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def questions() -> tuple[list, list]:
    assignments = autograders.load_all()
    return (autograders.written_questions(assignments),
            [q for a in assignments for q in a.graded])


def test_an_autograded_row_needs_a_reason_and_points_within_the_question(tmp_path, questions) -> None:
    written, graded = questions
    path = _scores(tmp_path / "scores.csv", [
        ["zoe", LINEAR, "pinv_svd", "4.5", "", "Regrade: right up to the tolerance."],  # line 2
        ["mia", LINEAR, "pinv_svd", "3", "A comment is no reason.", ""],  # no reason: refused
        ["adam", LINEAR, "pinv_svd", "", "", "Half-filled."],  # a reason, no points: said so
        ["adam", LINEAR, "as_column", "", "", ""],              # empty: no override
        ["mia", LINEAR, "as_column", "9", "", "Too generous."],  # over the question's 4 points
        ["zoe", LINEAR, "pinv_svd", "5", "", "Changed my mind."],  # contradicts line 2
        ["zoe", LINEAR, "gradient_derivation", "1", "", "Sign error."],  # written: reason optional
        ["adam", LINEAR, "gradient_derivation", "2", "", ""],
    ])
    sheet = manual_scores.read_scores(path, ["adam", "mia", "zoe"], written, graded)
    assert sheet.overrides == {"zoe": {PINV: overrides.Override(4.5, "Regrade: right up to the tolerance.")}}
    assert sheet.points == {"zoe": {DERIVATION: 1.0}, "adam": {DERIVATION: 2.0}}
    # On a written question the reason is the TA's words to the student: shown as the comment.
    assert sheet.comments["zoe"][DERIVATION] == "Sign error."
    problems = sheet.problems
    assert len(problems) == 4, problems
    assert problems[0].startswith("line 3: points 3 for 'mia', 1_1_linear_regression/pinv_svd "
                                  "would override an autograded score but give no reason; add "
                                  "the reason in a 'reason' column")
    assert problems[1].startswith("line 4: a reason but no points for 'adam'")
    assert "exceed the question's 4" in problems[2]
    assert "a second score" in problems[3] and "line 2 gives 4.5" in problems[3]
    assert all(p.endswith("skipped") for p in problems)
    # Every row about an autograded question is kept as written, for the pages' download.
    assert [row[:4] for row in sheet.other_rows] == [
        ["zoe", LINEAR, "pinv_svd", "4.5"], ["mia", LINEAR, "pinv_svd", "3"],
        ["adam", LINEAR, "pinv_svd", ""], ["adam", LINEAR, "as_column", ""],
        ["mia", LINEAR, "as_column", "9"], ["zoe", LINEAR, "pinv_svd", "5"]]


def test_an_old_scores_file_without_a_reason_column_still_merges(tmp_path, questions) -> None:
    written, graded = questions
    path = _scores(tmp_path / "scores.csv", [
        ["zoe", LINEAR, "gradient_derivation", "1.5", "Good."],
        ["zoe", LINEAR, "pinv_svd", "5", "Regrade."],
    ], header=HEADER[:5])
    sheet = manual_scores.read_scores(path, ["zoe"], written, graded)
    assert sheet.points == {"zoe": {DERIVATION: 1.5}} and sheet.overrides == {}
    assert len(sheet.problems) == 1 and "add the reason in a 'reason' column" in sheet.problems[0]


def test_overrides_apply_on_copies_and_their_trail_reads_back_safely(tmp_path) -> None:
    from labkit.outputs.gradebook import StudentRow

    rows = [StudentRow("=2+5", {PINV: 0.0, AS_COLUMN: 4.0}), StudentRow("mia", {PINV: 5.0})]
    reason = '=HYPERLINK("x") a formula, a "quote",\nand a second line'
    changed, applied = overrides.apply(rows, {"=2+5": {PINV: overrides.Override(3.0, reason)}})
    assert rows[0].points[PINV] == 0.0  # the recorded rows stay as graded
    assert changed[0].points == {PINV: 3.0, AS_COLUMN: 4.0} and changed[0].total == 7.0
    assert changed[1] is rows[1]
    assert applied == [overrides.Applied("=2+5", LINEAR, "pinv_svd", 0.0, 3.0, reason)]
    overrides.write_overrides(tmp_path, applied)
    text = (tmp_path / overrides.OVERRIDES_FILE).read_text("utf-8")
    assert "\n'=2+5," in text and ',"\'=HYPERLINK' in text  # no cell a spreadsheet would run
    assert overrides.read_overrides(tmp_path) == {"=2+5": {PINV: applied[0]}}
    # A line edited into nonsense is left out; the others still read.
    with open(tmp_path / overrides.OVERRIDES_FILE, "a", encoding="utf-8") as handle:
        handle.write(f"mia,{LINEAR},as_column,nan,two,why\n")
    assert list(overrides.read_overrides(tmp_path)) == ["=2+5"]
    overrides.write_overrides(tmp_path, [])  # nothing overridden: no stale file
    assert not (tmp_path / overrides.OVERRIDES_FILE).exists()
    assert overrides.read_overrides(tmp_path) == {}


# --- through grade_class, merge and the pages ----------------------------------------------------

@pytest.fixture(scope="module")
def graded(tmp_path_factory) -> dict:
    """ada handed in the solution, bo the blank notebook; graded once, then again after the TA
    wrote an override of bo's pinv_svd with a reason and one of ada's without."""
    root = tmp_path_factory.mktemp("overrides")
    submissions, out = root / "submissions", root / "out"
    submissions.mkdir()
    shutil.copy(paths.solution_notebook(LINEAR), submissions / "ada.ipynb")
    shutil.copy(paths.student_notebook(LINEAR), submissions / "bo.ipynb")
    shard = shards.Shard(0, 1)
    classrun.grade_class(submissions, out, workers=2, shard=shard)
    before = _grades(out)
    scores = out / manual_scores.DEFAULT_SCORES_FILE
    _scores(scores, [["bo", LINEAR, "pinv_svd", "1.5", "", REASON],
                     ["ada", LINEAR, "pinv_svd", "1", "", ""]])
    summary = classrun.grade_class(submissions, out, workers=2, shard=shard)
    return {"root": root, "submissions": submissions, "out": out, "before": before,
            "summary": summary, "scores": scores}


def _page(out: Path, student: str) -> Path:
    names = dict(zip(["ada", "bo"], page_files.page_names(["ada", "bo"])))
    return out / "feedback" / names[student]


@pytest.mark.slow
def test_an_override_with_a_reason_counts_in_the_gradebook_and_leaves_a_trail(graded) -> None:
    out, before, summary = graded["out"], graded["before"], graded["summary"]
    assert "0 new or changed, 2 unchanged" in summary  # no notebook ran again
    assert f"1 autograded score(s) changed by hand, listed with their reasons in {out}/overrides.csv" in summary
    after = _grades(out)
    assert before["bo"][PINV] == "0" and after["bo"][PINV] == "1.5"
    assert float(after["bo"]["total"]) == float(before["bo"]["total"]) + 1.5
    assert after["ada"] == before["ada"]  # the override without a reason changed nothing
    assert _overrides(out) == [{"student": "bo", "assignment": LINEAR, "question": "pinv_svd",
                                "autograded": "0", "override": "1.5", "reason": REASON}]
    # The records stay what the grader found: the override is applied on top of them.
    record = classrun.load_record(out, "bo.ipynb", classrun.entry_fingerprint(
        graded["submissions"] / "bo.ipynb", classrun.grading_fingerprint(
            autograders.load_released(), classrun.Limits())))
    assert record is not None and record.points[PINV] == 0


@pytest.mark.slow
def test_an_override_without_a_reason_is_refused_saying_what_to_add(graded) -> None:
    out = graded["out"]
    problems = (out / manual_scores.PROBLEMS_FILE).read_text("utf-8").splitlines()
    assert problems[1:] == [
        "line 3: points 1 for 'ada', 1_1_linear_regression/pinv_svd would override an autograded "
        "score but give no reason; add the reason in a 'reason' column (the student reads it on "
        "the feedback page); skipped"]
    assert "1 row(s) of manual_scores.csv skipped" in graded["summary"]


@needs_chromium
@pytest.mark.slow
def test_the_feedback_page_shows_the_change_and_the_report_counts_it(graded) -> None:
    from playwright.sync_api import sync_playwright

    out = graded["out"]
    with sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        page = browser.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.on("dialog", lambda dialog: errors.append(dialog.message))
        page.goto(_page(out, "bo").as_uri())
        row = page.locator("tr.override")
        assert row.count() == 1
        text = row.inner_text()
        assert text.startswith("Changed by your TA from 0 to 1.5:")
        # The reason as the TA comments are shown: markdown, its markup as text.
        assert row.locator(".ta-comment strong").inner_text() == "tolerance"
        assert "<img src=x onerror=alert(1)>" in text and row.locator("img").count() == 0
        cells = page.locator("tr", has=page.locator("td", has_text=re.compile("^pinv_svd$")))
        assert cells.first.locator("td.points").inner_text() == "1.5 / 5"
        page.goto(_page(out, "ada").as_uri())
        assert page.locator("tr.override").count() == 0
        page.goto((out / "report.html").as_uri())
        assert page.locator("#overrides").inner_text().split() == [
            "1", "autograded", "score", "changed", "by", "a", "TA", "(overrides.csv)"]
        cell = page.locator("#questions-table td", has_text="pinv_svd")
        assert cell.inner_text().split() == ["pinv_svd", "(1", "changed", "by", "a", "TA)"]
        browser.close()
    assert errors == []


@pytest.mark.slow
def test_merging_applies_the_overrides_without_grading_again(graded) -> None:
    out = graded["out"]
    merged = graded["root"] / "merged"
    summary = merge.merge_shards([out], merged, manual_scores=graded["scores"])
    assert "none graded again" in summary and "1 autograded score(s) changed by hand" in summary
    assert (merged / "grades.csv").read_bytes() == (out / "grades.csv").read_bytes()
    assert (merged / "overrides.csv").read_bytes() == (out / "overrides.csv").read_bytes()
    assert "Changed by your TA from 0 to 1.5:" in _page(merged, "bo").read_text("utf-8")


@needs_chromium
@pytest.mark.slow
def test_the_written_pages_download_keeps_the_override_rows(graded, tmp_path) -> None:
    from playwright.sync_api import sync_playwright

    out = graded["out"]
    with sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        page = browser.new_context(accept_downloads=True).new_page()
        page.goto((out / "manual" / f"{LINEAR}-gradient_derivation.html").as_uri())
        page.locator('section[data-student="ada"] input.points').fill("2")
        with page.expect_download() as info:
            page.click("#download")
        saved = tmp_path / "manual_scores.csv"
        info.value.save_as(saved)
        browser.close()
    with open(saved, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == list(HEADER)
    got = {(r["student"], r["assignment"], r["question"]): (r["points"], r["reason"]) for r in rows}
    assert got[("bo", LINEAR, "pinv_svd")] == ("1.5", REASON)
    assert got[("ada", LINEAR, "pinv_svd")] == ("1", "")  # refused, but kept for the TA to fix
    assert got[("ada", LINEAR, "gradient_derivation")] == ("2", "")


@pytest.mark.slow
def test_a_regrade_under_an_override_keeps_the_override_and_shows_both_scores(graded, tmp_path) -> None:
    submissions, out = tmp_path / "submissions", tmp_path / "out"
    shutil.copytree(graded["submissions"], submissions)
    shutil.copytree(graded["out"], out)
    scores = out / manual_scores.DEFAULT_SCORES_FILE
    _scores(scores, [["bo", LINEAR, "pinv_svd", "1.5", "", REASON]])
    # bo hands in again (the solution this time): the autograder now gives full marks.
    shutil.copy(paths.solution_notebook(LINEAR), submissions / "bo.ipynb")
    summary = classrun.grade_class(submissions, out, workers=2)
    assert "1 new or changed, 1 unchanged" in summary
    assert _grades(out)["bo"][PINV] == "1.5"  # the override stands
    assert _overrides(out)[0]["autograded"] == "5" and _overrides(out)[0]["override"] == "1.5"
    assert "Changed by your TA from 5 to 1.5:" in _page(out, "bo").read_text("utf-8")
    # Emptying the row's points lets the autograded score count again, and leaves no trail.
    _scores(scores, [["bo", LINEAR, "pinv_svd", "", "", ""]])
    classrun.grade_class(submissions, out, workers=2)
    assert _grades(out)["bo"][PINV] == "5" and not (out / overrides.OVERRIDES_FILE).exists()
    assert "Changed by your TA" not in _page(out, "bo").read_text("utf-8")


@pytest.mark.slow
def test_a_late_penalty_comes_off_the_overridden_points(graded, tmp_path) -> None:
    """The regrade fixes a question's points; the late policy then takes from the assignment's
    sum: bo earned nothing by the autograder (so a penalty could take nothing), but 1.5 points
    after the override, and a day late at 10% of the assignment's points the penalty is capped
    at those 1.5."""
    from labkit.outputs import lateness

    out = tmp_path / "out"
    shutil.copytree(graded["out"], out)
    deadlines = tmp_path / "deadlines.toml"
    deadlines.write_text(f'[due]\n{LINEAR} = 2026-10-09T23:59:00+02:00\n\n'
                         '[policy]\nkind = "per_day"\nper_day = 0.1\ncap = 0.5\n', encoding="utf-8")
    times = tmp_path / "times.csv"
    times.write_text(f"student,assignment,handed_in\nbo,{LINEAR},2026-10-10T10:00:00+02:00\n",
                     encoding="utf-8")
    summary = classrun.grade_class(graded["submissions"], out, workers=1, deadlines=deadlines,
                                   times=times)
    assert "0 new or changed" in summary and "1 autograded score(s) changed by hand" in summary
    bo = _grades(out)["bo"]
    assert bo[PINV] == "1.5" and bo[lateness.penalty_column(LINEAR)] == "1.5"
    assert float(bo["total"]) == 0
    assert _overrides(out)[0]["override"] == "1.5"
