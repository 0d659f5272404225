"""The kit's command line: parses arguments and calls the module that does the work."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from . import paths
from .sandbox.confine import Limits

if TYPE_CHECKING:
    from .grading.shards import Shard


def _release(args: argparse.Namespace) -> int:
    from .course.labs import SpecError
    from .course.release import ReleaseError, release
    from .grading.solution_check import check_solutions

    try:
        released = release(args.assignments or None, args.lab)
    except (ReleaseError, SpecError) as error:
        print(f"release refused: {error}", file=sys.stderr)
        return 1
    if args.no_solution_check:
        return 0
    shortfalls = []
    for lab in sorted({paths.lab_of(m.stem) for m in released}, key=paths.course_order):
        stems = [m.stem for m in released if paths.lab_of(m.stem) == lab]
        print(f"grading the solutions of {lab} as students' notebooks ...", flush=True)
        shortfalls += check_solutions(stems)
    if shortfalls:
        print("release refused: a solution does not earn full marks when the kit grades it, so no "
              "student could; fix the master (or its checks) and release again, and hand out "
              "none of the files just written:\n  " + "\n  ".join(map(str, shortfalls)),
              file=sys.stderr)
        return 1
    return 0


#: The limits' defaults as the options take them (whole seconds, MB): ``Limits`` holds them, once.
DEFAULT_TIMEOUT = int(Limits.notebook_seconds)
DEFAULT_CELL_TIMEOUT = int(Limits.cell_seconds)
DEFAULT_MEMORY_MB = Limits.memory_bytes >> 20


def _grade(args: argparse.Namespace) -> int:
    from .grading.classrun import grade_class

    limits = Limits(notebook_seconds=args.timeout, cell_seconds=min(args.cell_timeout, args.timeout),
                    memory_bytes=args.memory_mb << 20, confine=not args.unconfined)
    summary = grade_class(Path(args.submissions or paths.demo_submissions(args.lab)),
                          Path(args.out), workers=args.workers, limits=limits, progress=True,
                          manual_scores=Path(args.manual_scores) if args.manual_scores else None,
                          shard=args.shard, lab=args.lab,
                          deadlines=Path(args.deadlines) if args.deadlines else None,
                          times=Path(args.times) if args.times else None,
                          worksheet=Path(args.worksheet) if args.worksheet else None)
    print(summary)
    return 0


def _shard(text: str) -> Shard:
    """``--shard K/N``; a bad one is refused by argparse with the reason, in one line."""
    from .grading.shards import parse

    try:
        return parse(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _merge(args: argparse.Namespace) -> int:
    from .grading.merge import MergeError, merge_shards

    try:
        summary = merge_shards([Path(p) for p in args.shards], Path(args.out),
                               manual_scores=Path(args.manual_scores) if args.manual_scores else None,
                               allow_missing=args.allow_missing,
                               deadlines=Path(args.deadlines) if args.deadlines else None,
                               times=Path(args.times) if args.times else None)
    except MergeError as error:
        print(f"merge refused: {error}", file=sys.stderr)
        return 1
    print(summary)
    return 0


def _export(args: argparse.Namespace) -> int:
    from .outputs.lms import ExportError, export

    try:
        result = export(Path(args.out), args.lms, Path(args.roster),
                        columns=Path(args.columns) if args.columns else None)
    except ExportError as error:
        print(f"export failed: {error}", file=sys.stderr)
        return 1
    print(result.summary())
    return 0


def _similarity(args: argparse.Namespace) -> int:
    from .similarity.page import similarity_report

    submissions = Path(args.submissions or paths.demo_submissions(args.lab))
    if not submissions.is_dir():
        print(f"SUBMISSIONS is not a folder: {submissions}", file=sys.stderr)
        return 1
    earlier = Path(args.earlier) if args.earlier else None
    if earlier is not None and not earlier.is_dir():
        print(f"--earlier is not a folder: {earlier}", file=sys.stderr)
        return 1
    print(similarity_report(submissions, Path(args.out), earlier, args.lab))
    return 0


def _audit(args: argparse.Namespace) -> int:
    from .audit import operators, run_audit, table

    unknown = sorted(set(args.operators or []) - set(operators.BY_NAME))
    if unknown:
        print(f"audit: unknown operator(s) {unknown}; known: {sorted(operators.BY_NAME)}",
              file=sys.stderr)
        return 2
    chosen = tuple(operators.BY_NAME[name] for name in args.operators) if args.operators \
        else operators.OPERATORS
    limits = Limits(notebook_seconds=args.timeout, cell_seconds=min(args.cell_timeout, args.timeout))
    out = Path(args.out)
    audit = run_audit(out, args.assignments or None, per_question=args.per_question,
                      workers=args.workers, limits=limits, chosen=chosen, progress=True,
                      log=lambda line: print(line, file=sys.stderr))
    print(table(audit))
    for stem, problem in audit.controls.items():
        print(f"CONTROL FAILED for {stem}: {problem}")
    print(f"{len(audit.survivors)} survivor(s), listed with their diffs in {out / 'audit.md'} "
          f"(and {out / 'audit.json'}); took {audit.seconds['total']:.0f} s")
    return 1 if audit.controls else 0


def _late_options(command: argparse.ArgumentParser) -> None:
    command.add_argument("--deadlines", default=None, metavar="PATH",
                         help="TOML file of due times, extensions and the late policy (see "
                              "docs/ta-grading.md); the penalties are taken before the totals")
    command.add_argument("--times", default=None, metavar="PATH",
                         help="CSV of hand-in times (student,assignment,handed_in), which win "
                              "over the LMS download's; needs --deadlines")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="labkit", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    release = commands.add_parser("release", help="regenerate student/, autograder/, solutions/")
    release.add_argument("assignments", nargs="*",
                         help="assignment stems (default: every assignment of --lab)")
    release.add_argument("--lab", default=None, choices=paths.lab_names() or None,
                         help="release only this lab (default: every lab)")
    release.add_argument("--no-solution-check", action="store_true",
                         help="skip grading the released solutions through the kit (each must "
                              "earn full marks, or the release is refused)")
    release.set_defaults(run=_release)

    grade = commands.add_parser("grade", help="grade a folder of submissions")
    grade.add_argument("--lab", default=None, choices=paths.lab_names() or None,
                       help="the lab whose assignments are graded (default: the course's first)")
    grade.add_argument("--submissions", default=None,
                       help="one entry per student: a folder, a notebook or a zip, or Canvas's or "
                            "Moodle's bulk download, unzipped (default: the lab's demo class)")
    grade.add_argument("--out", default=str(paths.DEFAULT_GRADES), help="results folder")
    grade.add_argument("--workers", type=int, default=None, help="parallel gradings (default: cores)")
    grade.add_argument("--timeout", type=int, default=DEFAULT_TIMEOUT,
                       help="seconds one notebook may run in all (default %(default)s)")
    grade.add_argument("--cell-timeout", type=int, default=DEFAULT_CELL_TIMEOUT,
                       help="seconds one cell may run (default %(default)s)")
    grade.add_argument("--memory-mb", type=int, default=DEFAULT_MEMORY_MB,
                       help="memory one notebook may use, in MB (default %(default)s)")
    grade.add_argument("--unconfined", action="store_true",
                       help="grade without confining student code, where this machine forbids "
                            "user namespaces (every row's notes say so)")
    grade.add_argument("--manual-scores", default=None, metavar="PATH",
                       help="CSV of scores given by hand to the written questions (student,"
                            "assignment,question,points[,comment][,reason]; a row for an "
                            "autograded question overrides its score and needs a reason; default "
                            "OUT/manual_scores.csv, written as a template when absent)")
    grade.add_argument("--shard", type=_shard, default=None, metavar="K/N",
                       help="grade only shard K of N (K from 0 to N-1, as SLURM_ARRAY_TASK_ID or "
                            "JOB_COMPLETION_INDEX); each shard into its own OUT, then merge them")
    grade.add_argument("--worksheet", default=None, metavar="PATH",
                       help="Moodle's grading worksheet (CSV), for each submission's time when "
                            "SUBMISSIONS is Moodle's 'Download all submissions'")
    _late_options(grade)
    grade.set_defaults(run=_grade)

    merge = commands.add_parser(
        "merge", help="merge the OUTs of shards graded with grade --shard into one OUT")
    merge.add_argument("shards", nargs="+", metavar="SHARD_OUT",
                       help="the shards' OUT folders, every shard of the class")
    merge.add_argument("--out", default=str(paths.DEFAULT_GRADES),
                       help="the merged results folder (default grades)")
    merge.add_argument("--manual-scores", default=None, metavar="PATH",
                       help="CSV of scores given by hand to the written questions, as for grade "
                            "(default OUT/manual_scores.csv, written as a template when absent)")
    merge.add_argument("--allow-missing", action="store_true",
                       help="merge even when shards are missing (their students are left out)")
    _late_options(merge)
    merge.set_defaults(run=_merge)

    audit = commands.add_parser(
        "audit", help="mutation score of each question's hidden tests (see docs/instructors.md: make audit)")
    audit.add_argument("assignments", nargs="*", help="assignment stems (default: all)")
    audit.add_argument("--out", default=str(paths.ROOT / "audit"),
                       help="results folder: the graded mutants, audit.md and audit.json "
                            "(default audit)")
    audit.add_argument("--workers", type=int, default=None,
                       help="parallel gradings (default: cores)")
    audit.add_argument("--per-question", type=int, default=None, metavar="N",
                       help="grade only N mutants per question, spread over the operators "
                            "(default: all)")
    audit.add_argument("--operators", nargs="+", default=None, metavar="NAME",
                       help="only these mutation operators (default: all)")
    audit.add_argument("--timeout", type=int, default=DEFAULT_TIMEOUT,
                       help="seconds one notebook may run in all (default %(default)s)")
    audit.add_argument("--cell-timeout", type=int, default=DEFAULT_CELL_TIMEOUT,
                       help="seconds one cell may run (default %(default)s)")
    audit.set_defaults(run=_audit)

    export = commands.add_parser("export", help="write a graded OUT as an LMS gradebook import")
    export.add_argument("--lms", required=True, choices=["canvas", "moodle"],
                        help="the learning management system whose import format to write")
    export.add_argument("--roster", required=True, metavar="PATH",
                        help="the LMS's own file to fill: Canvas's gradebook export, Moodle's "
                             "grading worksheet; or a CSV mapping each submission name (column "
                             "'submission') to the LMS's ids, in the LMS's own column names")
    export.add_argument("--columns", default=None, metavar="PATH",
                        help="TOML file: assignment stem = \"the LMS's column\" (default: each "
                             "assignment's number and words matched to one column)")
    export.add_argument("--out", default=str(paths.DEFAULT_GRADES),
                        help="the graded results folder (default grades); the file is written there")
    export.set_defaults(run=_export)

    similar = commands.add_parser(
        "similarity", help="rank the pairs of students whose answers to a question look alike "
                           "(a page for a person to read; no grade changes)")
    similar.add_argument("--lab", default=None, choices=paths.lab_names() or None,
                         help="the lab whose questions are compared (default: the course's first)")
    similar.add_argument("--submissions", default=None,
                         help="the class, as for grade: one entry per student")
    similar.add_argument("--out", default=str(paths.DEFAULT_GRADES),
                         help="where similarity.html and similarity.csv go (a graded OUT links "
                              "each student's feedback page)")
    similar.add_argument("--earlier", default=None, metavar="DIR",
                         help="earlier years' submissions (same layout), compared with this class")
    similar.set_defaults(run=_similarity)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
