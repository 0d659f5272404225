"""The HTML pages made from a graded OUT: one feedback page per student and the class report.

Called by the class run once ``grades.csv`` and ``results/`` are complete; also runnable on its own,
``python -m labkit.outputs.pages OUT``, to remake the pages of an OUT graded earlier.
"""

from __future__ import annotations

import sys
from pathlib import Path

from .feedback import load_class, write_feedback
from .report import write_report


def write_feedback_and_report(out: Path) -> None:
    """Write ``OUT/feedback/*.html`` and ``OUT/report.html``, reading OUT only once."""
    data = load_class(out)
    write_feedback(out, data)
    write_report(out, data)


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m labkit.outputs.pages OUT", file=sys.stderr)
        return 2
    out = Path(argv[0])
    if not (out / "grades.csv").is_file() or not (out / "questions.csv").is_file():
        print(f"not a graded folder (no grades.csv/questions.csv): {out}", file=sys.stderr)
        return 1
    write_feedback_and_report(out)
    print(f"wrote {out / 'report.html'} and {out / 'feedback'}/")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
