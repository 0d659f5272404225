"""What the similarity page costs for a large class: a synthetic class written from the reference
solutions, every student's copy changed as students' answers differ (own variable names, own
comments, a line of their own, words of the written answers left out), so that nearly every pair
shares fingerprints: the comparison's worst realistic case, since pairs with nothing in common
cost nothing. Run by ``make bench``; ``python -m labkit.similarity.bench [STUDENTS]`` alone.
"""

from __future__ import annotations

import argparse
import ast
import json
import random
import re
import tempfile
import time
from pathlib import Path

from labkit import paths
from labkit.course import autograders
from .compare import compare_class, own_names, read_class, release
from .page import write

_MARKER = re.compile(r"^\s*#\s*(BEGIN|END) SOLUTION.*$|\s*#\s*SOLUTION\s*$", re.MULTILINE)


def _solutions(stem: str) -> tuple[dict[str, str], list[str]]:
    """The reference's code per defined name (or assigned name) and its written answers."""
    code, written = {}, []
    for cell in json.loads(paths.solution_notebook(stem).read_text("utf-8"))["cells"]:
        if "otter_assign_solution_cell" not in cell.get("metadata", {}).get("tags", []):
            continue
        source = "".join(cell["source"])
        if cell["cell_type"] == "markdown":
            written.append(source.replace("**SOLUTION:**", "").strip())
            continue
        source = _MARKER.sub("", source)
        tree = ast.parse(source)
        first = tree.body[0]
        name = first.name if isinstance(first, ast.FunctionDef) else ast.unparse(first.targets[0])
        code[name] = source
    return code, written


def _vary(code: str, rng: random.Random) -> str:
    """One student's way of writing ``code``: own names, a comment, sometimes a line more."""
    tree = ast.parse(code)
    graded = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
    for name in sorted(own_names(tree) - graded):
        if rng.random() < 0.7:
            code = re.sub(rf"(?<![\w.]){re.escape(name)}\b", f"{name}_{rng.randrange(10**6)}", code)
    lines = code.splitlines()
    at = rng.randrange(1, len(lines)) if len(lines) > 1 else len(lines)
    indent = "    " if len(lines) > 1 else ""
    note = rng.choice(["ok", "check", "see notes"])
    lines.insert(at, f"{indent}# step {rng.randrange(100)}: {note}")
    if len(lines) > 2 and rng.random() < 0.5:
        lines.insert(at, f"{indent}tmp_{rng.randrange(10**6)} = {rng.randrange(1000)}")
    return "\n".join(lines)


def write_class(folder: Path, students: int, seed: int = 0) -> Path:
    """``students`` entries, each a folder with the three notebooks, answers varied."""
    rng = random.Random(seed)
    stems = paths.assignment_stems(paths.default_lab())
    references = {stem: _solutions(stem) for stem in stems}
    for number in range(students):
        entry = folder / f"student{number:04d}"
        entry.mkdir(parents=True)
        for stem in stems:
            code, written = references[stem]
            nb = json.loads(paths.student_notebook(stem).read_text("utf-8"))
            texts = iter(written)
            for cell in nb["cells"]:
                if "otter_answer_cell" not in cell.get("metadata", {}).get("tags", []):
                    continue
                source = "".join(cell["source"])
                if cell["cell_type"] == "markdown":
                    words = next(texts, "").split()
                    cell["source"] = " ".join(w for w in words if rng.random() > 0.3)
                    continue
                name = next((n for n in code if re.search(rf"\b{n}\b", source.split("\n")[0])),
                            None)
                if name is not None:
                    cell["source"] = _vary(code[name], rng)
            (entry / f"{stem}.ipynb").write_text(json.dumps(nb), "utf-8")
    return folder


def run(students: int = 500) -> str:
    """Write the class, compare it, write its page; the times, one line each."""
    with tempfile.TemporaryDirectory(prefix="labkit-similarity-bench-") as tmp:
        submissions = write_class(Path(tmp) / "submissions", students)
        started = time.perf_counter()
        kit = release(autograders.load_released())
        work = read_class(submissions, kit)
        read = time.perf_counter()
        result = compare_class(kit, work)
        compared = time.perf_counter()
        write(Path(tmp) / "out", result)
        written = time.perf_counter()
    pairs = students * (students - 1) // 2 * len(kit.questions)
    matched = sum(stats.matched for stats in result.stats.values())
    return (f"similarity, {students} students, {len(kit.questions)} questions "
            f"({pairs} pairs, {matched} with a match): {written - started:.0f} s in all "
            f"(reading the notebooks {read - started:.0f} s, comparing {compared - read:.0f} s, "
            f"the page {written - compared:.0f} s)")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m labkit.similarity.bench",
                                     description="Time make similarity on a synthetic class.")
    parser.add_argument("students", nargs="?", type=int, default=500,
                        help="how many students the synthetic class has (default: 500)")
    print(run(parser.parse_args(argv).students), flush=True)


if __name__ == "__main__":  # not when a worker process imports this module
    main()
