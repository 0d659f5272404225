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
from labkit.outputs import manual_scores, overrides, written_pages
from labkit.outputs.pages import write_feedback_and_report

from . import handin_times


def _inside(path: Path, folder: Path) -> bool:
    path, folder = path.resolve(), folder.resolve()
    return path == folder or folder in path.parents


def unanswered_zeros(answers: list[written.StudentAnswers], questions: list[Question],
                     recorded: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
    """The scores given by hand, with 0 for each written question a student left unanswered
    (no notebook, the question not in it, or nothing written under it) and no score recorded:
    there is nothing to grade, so no TA is asked to, and the gradebook does not say "not graded
    yet" forever. A score a TA records for it still wins (an answer written in another cell)."""
    scores = {student: dict(points) for student, points in recorded.items()}
    for student in answers:
        for question in questions:
            answer = student.answers.get(question.column)
            if answer is None or answer.status != written.ANSWERED:
                scores.setdefault(student.student, {}).setdefault(question.column, 0.0)
    return scores


def write_class_files(out: Path, assignments: list[autograders.Assignment],
                      rows: list[gradebook.StudentRow], answers: list[written.StudentAnswers],
                      sheet: manual_scores.ScoreSheet, questions: list[Question],
                      students: list[str], scores_path: Path,
                      deadlines: Deadlines | None = None,
                      times: handin_times.HandInTimes | None = None,
                      ) -> lateness.ClassLateness | None:
    """The gradebook, the question list, each student's notes, the written answers' pages, the
    feedback and the report, from the rows graded so far: written whatever stopped the grading.

    The TAs' overrides of autograded scores (``sheet.overrides``) replace those scores first, on
    copies of the rows (the records stay as graded). With ``deadlines``, each assignment's late
    penalty (hand-in times from ``times``, else from the rows) is then taken from its points
    before the total; returns the assessments (None without deadlines), for the summary."""
    rows, applied = overrides.apply(gradebook.one_row_per_student(rows), sheet.overrides)
    late = handin_times.assess_class(deadlines, times, rows, [a.stem for a in assignments]) \
        if deadlines is not None else None
    scores = unanswered_zeros(answers, questions, sheet.points)
    gradebook.write_grades(out / "grades.csv", assignments, rows, scores,
                           late.students if late is not None else None)
    overrides.write_overrides(out, applied)
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
    written_pages.write_pages(out, questions, answers, sheet.points, scores_file=shown,
                              other_rows=sheet.other_rows)
    # Pages are remade whole, so a student no longer in the class keeps no page.
    shutil.rmtree(out / "feedback", ignore_errors=True)
    write_feedback_and_report(out)
    return late


def autograded_questions(assignments: list[autograders.Assignment]) -> list[Question]:
    """The questions whose autograded score a row of the scores file may override."""
    return [q for assignment in assignments for q in assignment.graded]


def manual_summary(sheet: manual_scores.ScoreSheet, template: bool, problems: Path | None,
                   questions: list[Question], students: list[str], out: Path,
                   again: str = "make grade", unanswered: int = 0) -> str:
    """The summary's lines about the written questions; ``again`` names the command that merges
    the scores once they are filled in; ``unanswered`` counts the answers given 0 without
    grading (``unanswered_zeros``)."""
    if not questions and problems is None:
        return ""
    expected = len(questions) * len(set(students))
    zeros = f"; {unanswered} left unanswered got 0 without grading" if unanswered else ""
    lines = [f"written questions: pages in {out}/manual/; "
             + (f"wrote a template for their scores at {sheet.path} (fill in points, then run "
                f"{again} again){zeros}" if template else
                f"merged {sheet.recorded} of {expected} scores from {sheet.path}{zeros}"
                + ("" if sheet.recorded + unanswered == expected
                   else "; the others are not graded yet"))
             ] if questions else []
    if problems is not None:
        lines.append(f"{len(sheet.problems)} row(s) of {sheet.path.name} skipped, listed in "
                     f"{problems}:")
        lines.extend(f"  {problem}" for problem in sheet.problems[:20])
        if len(sheet.problems) > 20:
            lines.append(f"  ... and {len(sheet.problems) - 20} more")
    return "\n" + "\n".join(lines)


def scores_summary(sheet: manual_scores.ScoreSheet, questions: list[Question],
                   students: list[str], out: Path, scores_path: Path,
                   again: str = "make grade",
                   answers: list[written.StudentAnswers] | None = None) -> str:
    """Everything the summary says about the scores file, once the class files are written."""
    template = bool(questions) and not sheet.exists
    problems = out / manual_scores.PROBLEMS_FILE if sheet.problems else None
    zeros = unanswered_zeros(answers or [], questions, sheet.points)
    unanswered = sum(len(columns) for columns in zeros.values()) - sheet.recorded
    overridden = sum(len(columns) for columns in sheet.overrides.values())
    return manual_summary(sheet, template, problems, questions, students, out, again,
                          unanswered) + (
        f"\nadded empty rows to {scores_path} for {sheet.added} score(s) of students new to it"
        if sheet.added else "") + (
        f"\n{overridden} autograded score(s) changed by hand, listed with their reasons in "
        f"{out / overrides.OVERRIDES_FILE}" if overridden else "")
