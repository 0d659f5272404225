"""``OUT/similarity.html`` and ``OUT/similarity.csv``: the most similar pairs of a class's answers,
question by question, for a person to read.

The page holds students' work, so it is written into OUT only, under the kit's page policy
(``page_policy``: its own style sheet, no script, nothing loaded from anywhere else). Student code
and text are shown as text (escaped, in ``<pre>``), the matching parts in ``<mark>``. Each pair
links to both students' feedback pages when OUT holds them. It changes no grade and no file of
grading. The page is ``labkit/outputs/templates/similarity.html.j2`` with ``static/similarity.css``
(the pages' files live together, with their one Jinja environment, ``outputs.templating``).
"""

from __future__ import annotations

import sys
from pathlib import Path

import markupsafe
import numpy as np

from labkit.course import autograders
from labkit.outputs.gradebook import read_csv, write_atomically, write_csv
from labkit.outputs.page_files import page_names
from labkit.outputs.page_policy import content_security_policy
from labkit.outputs.templating import embedded, template
from .compare import (Pair, Result, answer_kind, boilerplate, compare_class, highlights, read_class,
                      release)

#: Pairs shown side by side on the page (the best first); enough for a TA's sitting.
MAX_SHOWN_PAIRS = 100
#: One answer shown on the page up to this many characters (the rest is in the notebook).
MAX_SHOWN_CHARS = 6000

STYLE = embedded("similarity.css")
CSP = content_security_policy(styles=[STYLE])

PAGE = template("similarity.html.j2")


def marked(text: str, spans: list[tuple[int, int]]) -> markupsafe.Markup:
    """``text`` escaped, with each span in ``<mark>``; cut at ``MAX_SHOWN_CHARS``."""
    shown = text[:MAX_SHOWN_CHARS]
    out, at = [], 0
    for start, end in sorted(spans):
        start, end = max(start, at), min(end, len(shown))
        if start >= end:
            continue
        out.append(markupsafe.escape(shown[at:start]))
        out.append(markupsafe.Markup("<mark>{}</mark>").format(shown[start:end]))
        at = end
    out.append(markupsafe.escape(shown[at:]))
    if len(text) > MAX_SHOWN_CHARS:
        out.append(markupsafe.escape(f"\n… ({len(text) - MAX_SHOWN_CHARS} more characters)"))
    return markupsafe.Markup("").join(out)


def feedback_links(out: Path) -> dict[str, str]:
    """Student id -> its feedback page (relative to OUT), named as ``page_files`` names them."""
    try:
        students = sorted(row.get("student") or "" for row in read_csv(out / "grades.csv"))
    except OSError:
        return {}
    return {student: f"feedback/{name}" for student, name in zip(students, page_names(students))
            if (out / "feedback" / name).is_file()}


def _percent(value: float) -> str:
    return f"{100 * value:.0f}%"


def _side(result: Result, pair: Pair, second: bool, spans: list[tuple[int, int]],
          links: dict[str, str]) -> dict:
    student = pair.second if second else pair.first
    earlier = pair.earlier and second
    work = (result.earlier if earlier else result.work)[student]
    text = work.answers.get(pair.column, "")
    return {"name": student, "earlier": earlier, "html": marked(text, spans),
            "link": None if earlier else links.get(student)}


def render(result: Result, links: dict[str, str]) -> str:
    """The page for a compared class."""
    kinds = {q.column: q for q in result.questions}
    excluded: dict[str, np.ndarray] = {}
    shown = []
    for pair in result.pairs[:MAX_SHOWN_PAIRS]:
        question = kinds[pair.column]
        if pair.column not in excluded:
            excluded[pair.column] = boilerplate(result.templates.get(pair.column, []),
                                                answer_kind(question))
        work_b = (result.earlier if pair.earlier else result.work)[pair.second]
        a = result.work[pair.first].answers.get(pair.column, "")
        b = work_b.answers.get(pair.column, "")
        spans_a, spans_b = highlights(a, b, answer_kind(question), excluded[pair.column])
        shown.append({"column": pair.column, "similarity": _percent(pair.similarity),
                      "typical": _percent(pair.typical), "crowd": pair.crowd,
                      "score": f"{pair.score:.2f}",
                      "first": _side(result, pair, False, spans_a, links),
                      "second": _side(result, pair, True, spans_b, links)})
    summary = []
    for question in result.questions:
        stats = result.stats[question.column]
        summary.append({"column": question.column, "answered": stats.answered,
                        "pairs": stats.matched, "typical": _percent(stats.typical)})
    notes = [(w.student, note) for w in result.work.values() for note in w.notes]
    notes += [(student, f"{column}: {why}") for column, stats in result.stats.items()
              for student, why in stats.failed]
    return PAGE.render(csp=CSP, style=STYLE, pairs=shown, questions=summary,
                       linked=bool(links), notes=notes)


def write(out: Path, result: Result) -> tuple[Path, Path]:
    """Write the page and the CSV of the ranked pairs (the best ``MAX_KEPT_PAIRS``) into OUT."""
    out.mkdir(parents=True, exist_ok=True)
    page = out / "similarity.html"
    write_atomically(page, render(result, feedback_links(out)))
    table = out / "similarity.csv"
    write_csv(table, ["rank", "question", "student", "other", "other_earlier", "similarity",
                      "typical", "as_close", "score"],
              ([str(n), p.column, p.first, p.second, "yes" if p.earlier else "",
                f"{p.similarity:.3f}", f"{p.typical:.3f}", str(p.crowd), f"{p.score:.3f}"]
               for n, p in enumerate(result.pairs, start=1)))
    return page, table


def similarity_report(submissions: Path, out: Path, earlier: Path | None = None,
                      lab: str | None = None) -> str:
    """Compare a class (and an earlier year's folder, if given) on one lab's questions (the
    course's first by default) and write the page; returns a one-line summary."""
    kit = release(autograders.load_released(lab))
    work = read_class(submissions, kit)
    old = read_class(earlier, kit, earlier=True) if earlier is not None else []
    result = compare_class(kit, work, old)
    page, table = write(out, result)
    top = result.pairs[0] if result.pairs else None
    best = (f"; most similar: {top.column} {top.first} and {top.second} "
            f"({_percent(top.similarity)})") if top else ""
    matched = sum(stats.matched for stats in result.stats.values())
    return (f"compared {len(work)} submissions on {len(kit.questions)} questions "
            f"({matched} pairs with a match){best}; page in {page}, list in {table}")


def main(argv: list[str]) -> int:
    if len(argv) not in (2, 3):
        print("usage: python -m labkit.similarity.page SUBMISSIONS OUT [EARLIER]",
              file=sys.stderr)
        return 2
    print(similarity_report(Path(argv[0]), Path(argv[1]), Path(argv[2]) if len(argv) > 2 else None))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
