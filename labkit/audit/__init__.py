"""``make audit``: how many wrong versions of each reference answer the hidden tests catch.

Each graded question's reference answer (``mutants``) is changed by one student-like mistake at a
time (``operators``); each mutant becomes a submission, the released solution notebook with that
one answer replaced, and the mutants are graded as one class through the real grading path
(``labkit.grading.classrun.grade_class``: the released autograders, the sandbox, the workers, the usual
limits). A mutant is **killed** when its own question loses at least one point. One that keeps
full marks is compared with the reference on many inputs (``equivalence``): **equivalent** when
no input tells them apart (no test could catch it), else a **survivor**, listed with its diff so
that an instructor sees which hidden case is missing. The released solution of each assignment
is graded beside the mutants, as a control: it must keep full marks.

The class of mutants lies in OUT like any graded class (``grades.csv``, ``feedback/``,
``report.html``), so a mutant's feedback can be read as a student would; the table is written
beside them as ``audit.md`` and ``audit.json``. A rerun on the same OUT regrades only mutants
whose notebook or autograder changed (the class run's records).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from labkit import paths
from labkit.course import autograders
from labkit.grading import classrun
from labkit.outputs import gradebook
from labkit.sandbox.confine import Limits
from . import equivalence, mutants, operators

#: The folder of OUT the mutants are written to, one notebook each.
SUBMISSIONS = "mutants"
#: The name of each assignment's control entry (the released solution, unchanged).
CONTROL = "reference"


@dataclass
class Outcome:
    mutant: mutants.Mutant
    #: killed, survived or equivalent
    status: str
    #: the question's points earned, of its points possible
    points: float
    #: why it is equivalent or what tells it apart (empty for a killed mutant)
    reason: str = ""


@dataclass
class QuestionRow:
    stem: str
    question: str
    generated: int = 0
    killed: int = 0
    survived: int = 0
    equivalent: int = 0

    @property
    def kill_rate(self) -> float | None:
        """Killed of the non-equivalent mutants (None when there are none)."""
        judged = self.killed + self.survived
        return self.killed / judged if judged else None


@dataclass
class Audit:
    rows: list[QuestionRow]
    outcomes: list[Outcome]
    #: assignment -> the control's problem, if the released solution lost points
    controls: dict[str, str] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def survivors(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.status == "survived"]


def select(every: list[mutants.Mutant], per_question: int | None) -> list[mutants.Mutant]:
    """``per_question`` mutants of one question, spread over its operators (the first of each
    operator, then the second of each, ...), or all of them."""
    if per_question is None:
        return every
    by_operator: dict[str, list[mutants.Mutant]] = {}
    for mutant in every:
        by_operator.setdefault(mutant.operator, []).append(mutant)
    chosen: list[mutants.Mutant] = []
    depth = 0
    while len(chosen) < min(per_question, len(every)):
        for group in by_operator.values():
            if depth < len(group) and len(chosen) < per_question:
                chosen.append(group[depth])
        depth += 1
    return sorted(chosen, key=lambda m: m.number)


def prepare(out: Path, stems: list[str], per_question: int | None = None,
            chosen: tuple[operators.Operator, ...] = operators.OPERATORS
            ) -> tuple[list[mutants.Mutant], dict[str, mutants.Answer]]:
    """Write every mutant, and each assignment's control, as a submission under OUT/mutants;
    a submission of an earlier audit that is no longer asked for is removed."""
    folder = out / SUBMISSIONS
    every: list[mutants.Mutant] = []
    controls: dict[str, mutants.Answer] = {}
    wanted: set[str] = set()
    for stem in stems:
        answers = mutants.answers(stem)
        if not answers:
            continue
        controls[stem] = answers[0]
        name = f"{stem}--{CONTROL}"
        mutants.write_submission(mutants.submission(None, answers[0]), folder / f"{name}.ipynb")
        wanted.add(name)
        for answer in answers:
            for mutant in select(mutants.mutants_of(answer, chosen), per_question):
                mutants.write_submission(mutants.submission(mutant, answer),
                                         folder / f"{mutant.id}.ipynb")
                wanted.add(mutant.id)
                every.append(mutant)
    for stale in folder.glob("*.ipynb"):
        if stale.stem not in wanted:
            stale.unlink()
    return every, controls


def _scores(out: Path, entry: str, stem: str) -> tuple[dict[str, float], str | None]:
    """The scores the class run recorded for one entry, and its problem if any."""
    try:
        record = json.loads((out / "results" / entry / f"{stem}.json").read_text("utf-8"))
    except (OSError, ValueError):
        return {}, "not graded (no result recorded; see grades.csv's notes)"
    return record.get("scores", {}), record.get("problem")


def run_audit(out: Path, stems: list[str] | None = None, *, per_question: int | None = None,
              workers: int | None = None, limits: Limits | None = None,
              chosen: tuple[operators.Operator, ...] = operators.OPERATORS,
              progress: bool = False, log: Callable[[str], None] = lambda line: None) -> Audit:
    """Generate, grade and judge the mutants of ``stems`` (default: every released assignment)
    into ``out``, and write ``audit.md`` and ``audit.json`` there."""
    if (out / "grades.csv").exists() and not (out / SUBMISSIONS).is_dir():
        raise SystemExit(f"{out} holds a graded class, not an audit: give make audit another OUT "
                         "(its grades.csv would be replaced by the mutants')")
    stems = stems or paths.assignment_stems(paths.default_lab())
    started = time.monotonic()
    every, controls = prepare(out, stems, per_question, chosen)
    log(f"{len(every)} mutants of {len(stems)} assignment(s) written to {out / SUBMISSIONS}")
    prepared = time.monotonic()
    summary = classrun.grade_class(out / SUBMISSIONS, out, workers=workers, limits=limits,
                                progress=progress)
    log(summary.splitlines()[0])
    graded = time.monotonic()
    audit = Audit(rows=[], outcomes=[])
    for stem, answer in controls.items():
        scores, problem = _scores(out, f"{stem}--{CONTROL}", stem)
        lost = [q.name for q in autograders.load(stem).graded if scores.get(q.name, 0.0) < q.points]
        if problem or lost:
            audit.controls[stem] = problem or f"the released solution lost points in {lost}"
    pending = []
    for mutant in every:
        scores, _ = _scores(out, mutant.id, mutant.answer.stem)
        earned = scores.get(mutant.answer.question, 0.0)
        outcome = Outcome(mutant, "killed" if earned < mutant.answer.points else "survived",
                          earned)
        audit.outcomes.append(outcome)
        if outcome.status == "survived":
            pending.append(outcome)
    log(f"judging {len(pending)} mutant(s) that kept full marks against the reference")
    with ThreadPoolExecutor(max_workers=max(1, workers or os.cpu_count() or 1)) as pool:
        verdicts = pool.map(lambda o: equivalence.judge(
            o.mutant.answer.stem, o.mutant.answer.question, o.mutant.answer.function,
            o.mutant.source), pending)
        for outcome, verdict in zip(pending, verdicts):
            outcome.reason = verdict.reason
            if verdict.equivalent:
                outcome.status = "equivalent"
    audit.rows = _rows(audit.outcomes)
    audit.seconds = {"prepare": prepared - started, "grade": graded - prepared,
                     "judge": time.monotonic() - graded, "total": time.monotonic() - started}
    write(out, audit)
    return audit


def _rows(outcomes: list[Outcome]) -> list[QuestionRow]:
    rows: dict[tuple[str, str], QuestionRow] = {}
    for outcome in outcomes:
        answer = outcome.mutant.answer
        row = rows.setdefault((answer.stem, answer.question), QuestionRow(answer.stem,
                                                                          answer.question))
        row.generated += 1
        setattr(row, outcome.status, getattr(row, outcome.status) + 1)
    return list(rows.values())


def _rate(row: QuestionRow) -> str:
    return "—" if row.kill_rate is None else f"{100 * row.kill_rate:.0f}%"


def table(audit: Audit) -> str:
    """The per-question table, as markdown (also what is printed)."""
    lines = ["| assignment | question | mutants | killed | survived | equivalent | kill rate |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for row in audit.rows:
        lines.append(f"| {row.stem} | {row.question} | {row.generated} | {row.killed} | "
                     f"{row.survived} | {row.equivalent} | {_rate(row)} |")
    total = QuestionRow("all", "")
    for row in audit.rows:
        for name in ("generated", "killed", "survived", "equivalent"):
            setattr(total, name, getattr(total, name) + getattr(row, name))
    lines.append(f"| **all** | | {total.generated} | {total.killed} | {total.survived} | "
                 f"{total.equivalent} | {_rate(total)} |")
    return "\n".join(lines)


def report(audit: Audit) -> str:
    """``audit.md``: the table, the controls, the survivors with their diffs, the equivalents."""
    parts = ["# Mutation audit of the hidden tests", "",
             "A mutant is the reference answer with one student-like mistake; it is **killed** "
             "when its question loses a point, **equivalent** when it gives the reference's "
             "outputs on every input tried (no test could catch it). Kill rate: killed of the "
             "non-equivalent mutants.", "", table(audit), ""]
    for stem, problem in audit.controls.items():
        parts += [f"**Control failed** for {stem}: {problem}. The audit of this assignment "
                  "means nothing until the released solution keeps full marks.", ""]
    if audit.seconds:
        parts += [f"Took {audit.seconds['total']:.0f} s: grading {audit.seconds['grade']:.0f} s, "
                  f"judging survivors {audit.seconds['judge']:.0f} s.", ""]
    for title, status in (("Survivors", "survived"), ("Judged equivalent", "equivalent")):
        chosen = [o for o in audit.outcomes if o.status == status]
        parts += [f"## {title} ({len(chosen)})", ""]
        for outcome in chosen:
            parts += [f"### {outcome.mutant.id}", "",
                      f"{operators.BY_NAME[outcome.mutant.operator].description}; "
                      f"{outcome.points:g} of {outcome.mutant.answer.points:g} points; "
                      f"{outcome.reason}", "", "```diff", outcome.mutant.diff().rstrip(), "```",
                      ""]
    return "\n".join(parts)


def write(out: Path, audit: Audit) -> None:
    """``audit.md`` and ``audit.json`` in OUT."""
    gradebook.write_atomically(out / "audit.md", report(audit) + "\n")
    data = {
        "questions": [{"assignment": r.stem, "question": r.question, "mutants": r.generated,
                       "killed": r.killed, "survived": r.survived, "equivalent": r.equivalent,
                       "kill_rate": r.kill_rate} for r in audit.rows],
        "mutants": [{"id": o.mutant.id, "assignment": o.mutant.answer.stem,
                     "question": o.mutant.answer.question, "operator": o.mutant.operator,
                     "status": o.status, "points": o.points,
                     "points_possible": o.mutant.answer.points, "reason": o.reason,
                     "diff": o.mutant.diff()} for o in audit.outcomes],
        "controls_failed": audit.controls,
        "seconds": {k: round(v, 1) for k, v in audit.seconds.items()},
    }
    gradebook.write_atomically(out / "audit.json", json.dumps(data, indent=1) + "\n")
