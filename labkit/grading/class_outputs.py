"""The class's files in OUT, written from its rows and its students' written answers.

``grade`` and ``merge`` both end here: grading gets the answers from the students' notebooks,
merging from what the shards kept, and from then on one function writes the gradebook, the
written questions' pages, the feedback and the report, so that a merged OUT cannot drift from an
OUT graded in one run.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from labkit.course import autograders
from labkit.course.deadlines import Deadlines
from labkit.course.questions import Question
from labkit.outputs import gradebook, lateness, results
from labkit.course import written
from labkit.outputs import manual_scores, written_pages
from labkit.outputs.pages import write_feedback_and_report

from . import handin_times


def _inside(path: Path, folder: Path) -> bool:
    path, folder = path.resolve(), folder.resolve()
    return path == folder or folder in path.parents


def write_class_files(out: Path, assignments: list[autograders.Assignment],
                      rows: list[gradebook.StudentRow], answers: list[written.StudentAnswers],
                      sheet: manual_scores.ScoreSheet, questions: list[Question],
                      students: list[str], scores_path: Path,
                      deadlines: Deadlines | None = None,
                      times: handin_times.HandInTimes | None = None,
                      ) -> lateness.ClassLateness | None:
    """The gradebook, the question list, each student's notes, the written answers' pages, the
    feedback and the report, from the rows graded so far: written whatever stopped the grading.

    With ``deadlines``, each assignment's late penalty (hand-in times from ``times``, else from
    the rows) is taken from its points before the total; returns the assessments (None without
    deadlines), for the summary."""
    late = handin_times.assess_class(deadlines, times, rows, [a.stem for a in assignments]) \
        if deadlines is not None else None
    gradebook.write_grades(out / "grades.csv", assignments, rows, sheet.points,
                           late.students if late is not None else None)
    lateness.write_lateness(out, late)
    # The notes as a list, for the pages: grades.csv's "; "-joined column is for reading only.
    for row in gradebook.one_row_per_student(rows):
        results.write_notes(out, row.student, row.notes)
    gradebook.write_questions(out / "questions.csv", assignments)
    manual_scores.prepare_scores_file(scores_path, students, questions, sheet)
    gradebook.write_comments(out, sheet.comments)
    manual_scores.write_problems(out, sheet)
    shown = str(scores_path) if not _inside(scores_path, out) else \
        str(scores_path.resolve().relative_to(out.resolve()))
    written_pages.write_pages(out, questions, answers, sheet.points, scores_file=shown)
    # Pages are remade whole, so a student no longer in the class keeps no page.
    shutil.rmtree(out / "feedback", ignore_errors=True)
    write_feedback_and_report(out)
    return late


def manual_summary(sheet: manual_scores.ScoreSheet, template: bool, problems: Path | None,
                   questions: list[Question], students: list[str], out: Path,
                   again: str = "make grade") -> str:
    """The summary's lines about the written questions; ``again`` names the command that merges
    the scores once they are filled in."""
    if not questions:
        return ""
    expected = len(questions) * len(set(students))
    lines = [f"written questions: pages in {out}/manual/; "
             + (f"wrote a template for their scores at {sheet.path} (fill in points, then run "
                f"{again} again)" if template else
                f"merged {sheet.recorded} of {expected} scores from {sheet.path}"
                + ("" if sheet.recorded == expected else "; the others are not graded yet"))]
    if problems is not None:
        lines.append(f"{len(sheet.problems)} row(s) of {sheet.path.name} skipped, listed in "
                     f"{problems}:")
        lines.extend(f"  {problem}" for problem in sheet.problems[:20])
        if len(sheet.problems) > 20:
            lines.append(f"  ... and {len(sheet.problems) - 20} more")
    return "\n" + "\n".join(lines)


def scores_summary(sheet: manual_scores.ScoreSheet, questions: list[Question],
                   students: list[str], out: Path, scores_path: Path,
                   again: str = "make grade") -> str:
    """Everything the summary says about the scores file, once the class files are written."""
    template = bool(questions) and not sheet.exists
    problems = out / manual_scores.PROBLEMS_FILE if sheet.problems else None
    return manual_summary(sheet, template, problems, questions, students, out, again) + (
        f"\nadded empty rows to {scores_path} for {sheet.added} score(s) of students new to it"
        if sheet.added else "")
