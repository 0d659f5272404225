"""Scoring written answers in the browser, for real: grade a small class, fill in the manual
pages in headless Chromium (points and comments, on two pages, kept across a reload), download
the scores, merge them with a second ``grade_class``, and find the comment on the feedback page.
Also: one count of "submissions with problems", and "—" for written questions nobody scored."""

from __future__ import annotations

import csv
import re
import shutil
from pathlib import Path

import pytest

from labkit import paths
from labkit.grading import classrun
from labkit.outputs import page_files

pytestmark = pytest.mark.slow

CHROMIUM = Path("/usr/bin/chromium")
LINEAR, LOGISTIC = "1_1_linear_regression", "1_2_logistic_regression"
TRAINING = f"{LOGISTIC}/training_observations"
DERIVATION = f"{LINEAR}/gradient_derivation"
COMMENT = 'Clear, but say why the weights grow: "separable" data.'
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def graded(tmp_path_factory) -> tuple[Path, Path, str]:
    root = tmp_path_factory.mktemp("class")
    submissions, out = root / "submissions", root / "out"
    submissions.mkdir()
    # ada answers the written questions of 1.1 and 1.2, bo those of 1.2 (an unanswered
    # question gets 0 without a score box).
    (submissions / "ada").mkdir()
    for stem in (LINEAR, LOGISTIC):
        shutil.copy(paths.solution_notebook(stem), submissions / "ada" / f"{stem}.ipynb")
    # Both answer the training question (an unanswered one gets 0 without a score box).
    shutil.copy(paths.solution_notebook(LOGISTIC), submissions / "bo.ipynb")
    summary = classrun.grade_class(submissions, out, workers=2)
    return submissions, out, summary


def test_summary_and_report_count_the_same_submissions_with_problems(graded) -> None:
    _, out, summary = graded
    counted = int(re.search(r"(\d+) with problems", summary).group(1))
    report = (out / "report.html").read_text("utf-8")
    shown = int(re.search(r"<strong>(\d+)</strong>with problems", report).group(1))
    assert counted == shown == 2  # neither handed in every notebook


def test_written_questions_nobody_scored_show_a_dash_in_the_report(graded) -> None:
    report = (graded[1] / "report.html").read_text("utf-8")
    (row,) = [r for r in report.split("<tr>") if "training_observations" in r]
    assert "(0 of 2 graded)" in row and row.count("&mdash;") == 3
    assert "0.00" not in row and "0 of 0" not in row


@pytest.mark.skipif(not CHROMIUM.exists(), reason="/usr/bin/chromium is absent (tools/ensure-chromium)")
def test_scores_typed_in_the_browser_download_merge_and_reach_the_feedback(graded, tmp_path) -> None:
    from playwright.sync_api import sync_playwright

    submissions, out, _ = graded
    training = (out / "manual" / f"{LOGISTIC}-training_observations.html").as_uri()
    derivation = (out / "manual" / f"{LINEAR}-gradient_derivation.html").as_uri()
    with sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        context = browser.new_context(accept_downloads=True)
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.on("console", lambda m: errors.append(m.text) if m.type == "error"
                and "Content Security Policy" in m.text else None)
        page.goto(training)
        ada, bo = page.locator('section[data-student="ada"]'), page.locator('section[data-student="bo"]')
        ada.locator("input.points").fill("1.5")
        ada.locator("textarea.comment").fill(COMMENT)
        bo.locator("input.points").fill("5")  # above the question's 2 points: flagged
        assert "invalid" in bo.locator("input.points").get_attribute("class")
        bo.locator("input.points").fill("1,5")  # a decimal comma, which make grade reads too
        assert "invalid" not in bo.locator("input.points").get_attribute("class")
        bo.locator("input.points").fill("0")
        assert "invalid" not in bo.locator("input.points").get_attribute("class")
        other = context.new_page()  # another question's page, in the same browser
        other.goto(derivation)
        other.locator('section[data-student="ada"] input.points').fill("2")
        other.locator('section[data-student="ada"] textarea.comment').fill("=1+1")  # a formula
        other.close()
        page.reload()  # kept while the TA works
        assert ada.locator("input.points").input_value() == "1.5"
        assert ada.locator("textarea.comment").input_value() == COMMENT
        with page.expect_download() as info:
            page.click("#download")
        download = info.value
        assert download.suggested_filename == "manual_scores.csv"
        saved = tmp_path / "manual_scores.csv"
        download.save_as(saved)
        assert f"put it at {out / 'manual_scores.csv'} and run make grade" in page.locator(
            "#saved").inner_text()
        browser.close()
    assert errors == []

    with open(saved, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == ["student", "assignment", "question", "points", "comment"]
    got = {(r["student"], f"{r['assignment']}/{r['question']}"): (r["points"], r["comment"])
           for r in rows}
    assert len(rows) == len(got) == 2 * 3  # every student, every written question
    assert got[("ada", TRAINING)] == ("1.5", COMMENT)
    assert got[("bo", TRAINING)] == ("0", "")
    # Typed on the other page; a comment that a spreadsheet would run as a formula is written
    # as text (a leading apostrophe, as the kit's own CSV files do).
    assert got[("ada", DERIVATION)] == ("2", "'=1+1")
    assert not any(cell.startswith("=") for row in rows for cell in row.values())
    assert got[("bo", DERIVATION)] == ("", "")

    shutil.copy(saved, out / "manual_scores.csv")  # as the page says
    summary = classrun.grade_class(submissions, out, workers=2)
    assert "0 new or changed" in summary and "merged 3 of 6 scores" in summary
    assert "skipped" not in summary
    with open(out / "grades.csv", newline="") as handle:
        grades = {r["student"]: r for r in csv.DictReader(handle)}
    assert grades["ada"][TRAINING] == "1.5" and grades["bo"][TRAINING] == "0"
    assert grades["ada"][DERIVATION] == "2"
    names = dict(zip(["ada", "bo"], page_files.page_names(["ada", "bo"])))
    page = (out / "feedback" / names["ada"]).read_text("utf-8")
    assert ("Clear, but say why the weights grow: &#34;separable&#34; data." in page
            or "Clear, but say why the weights grow: &quot;separable&quot; data." in page)
    assert "Comment from the teaching team" not in (out / "feedback" / names["bo"]).read_text("utf-8")
    manual_page = (out / "manual" / f"{LOGISTIC}-training_observations.html").read_text("utf-8")
    assert "recorded: 1.5" in manual_page
