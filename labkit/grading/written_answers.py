"""Every student's answers to the written questions, read from the notebooks each entry holds,
for the written questions' pages (``labkit.outputs.written_pages``)."""

from __future__ import annotations

import tempfile
from pathlib import Path

from labkit.course.questions import Question
from labkit.course.written import NO_NOTEBOOK, NOT_FOUND, Answer, StudentAnswers, read_answers, read_cells
from labkit.grading import intake

def collect(entries: list[intake.Entry], stems: list[str], questions: list[Question],
            ) -> list[StudentAnswers]:
    """Every entry's answers to the written questions, sorted by student id (then entry)."""
    by_assignment: dict[str, list[Question]] = {}
    for question in questions:
        by_assignment.setdefault(question.assignment, []).append(question)
    collected = []
    with tempfile.TemporaryDirectory(prefix="labkit-answers-") as tmp:
        for index, entry in enumerate(entries):
            student = StudentAnswers(intake.student_id(entry), entry.name)
            try:
                submission = intake.discover(entry, stems, Path(tmp) / str(index))
                notebooks = submission.notebooks
            except Exception:  # an entry the grader could not read has no answers either
                notebooks = {}
            for stem, asked in by_assignment.items():
                notebook = notebooks.get(stem)
                if notebook is None:
                    student.answers.update((q.column, Answer(NO_NOTEBOOK)) for q in asked)
                    continue
                try:
                    student.answers.update(read_answers(read_cells(notebook), asked))
                except Exception as error:  # one odd notebook must not cost the class its pages
                    student.answers.update((q.column, Answer(NOT_FOUND, notes=[
                        f"the answers could not be read ({type(error).__name__}: {error})"]))
                        for q in asked)
            collected.append(student)
    collected.sort(key=lambda s: (s.student, s.entry))
    # Entries sharing an id are refused by discovery (no notebook): one set of answers per id.
    unique: dict[str, StudentAnswers] = {}
    for answers in collected:
        unique.setdefault(answers.student, answers)
    return list(unique.values())

