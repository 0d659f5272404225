"""The similarity page, on a class of real notebooks (the student release with its answer cells
filled in) read through discovery: independent answers are the answer banks' right and wrong
variants, each student writing another one; planted copies take one of them and rename its
variables, reorder its independent statements, change its comments, or add a bug. Every planted
pair must rank above every pair of independent answers to its question, and two honest students
who both wrote the one-line natural answer must not rank above a planted pair. The page is
opened in headless Chromium: it renders, the matches are marked visibly, its links open the
students' feedback pages."""

from __future__ import annotations

import ast
import html
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from labkit import cli, paths
from labkit.course import autograders
from labkit.outputs import feedback
from labkit.similarity import compare
from labkit.similarity.page import similarity_report
from labkit.outputs.gradebook import write_csv

from .conftest import answer_bank

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
LINEAR = "1_1_linear_regression"
QUESTIONS = ("pinv_svd", "train_test_split", "linear_regression_loss_grad", "as_column")
DERIVATION = f"{LINEAR}/gradient_derivation"
NATURAL = "def as_column(y):\n    return y.reshape(-1, 1)"
#: Written answers to the derivation, each in its own words, and one pasted with a few words
#: changed.
TEXTS = {
    "s00": "Write the loss as $\\frac12 r^T r$ with residual $r = X\\theta - y$. Its differential "
           "is $r^T X d\\theta$, so the gradient is $X^T (X\\theta - y)$.",
    "s01": "Expanding, $L = \\frac12(\\theta^T X^T X \\theta - 2 y^T X \\theta + y^T y)$; "
           "differentiating each term in theta gives X^T X theta minus X^T y.",
    "s02": "By the chain rule on each row i, the derivative of one half of the squared error "
           "is x_i times the error of row i; summing the rows gives the gradient.",
    "s03": "I used the identity for quadratic forms: d/dtheta of theta^T A theta is 2 A theta "
           "for symmetric A, and the linear term contributes minus X^T y.",
}
COPIED_TEXT = TEXTS["s02"].replace("By the chain rule on", "Using the chain rule for") \
    .replace("summing the rows", "adding up all rows")


def _variants(question: str) -> list[str]:
    """The bank's wrong, then right, variants of one question: answers written separately."""
    bank = answer_bank(LINEAR)
    return [*bank["WRONG"][question].values(), *bank["CORRECT"][question].values()]


def _own(code: str) -> set[str]:
    tree = ast.parse(code)
    graded = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
    return compare.own_names(tree) - graded


def renamed(code: str) -> str:
    """The copier's first move: every variable and argument renamed, layout kept."""
    for number, name in enumerate(sorted(_own(code))):
        code = re.sub(rf"(?<![\w.]){re.escape(name)}\b", f"my_var{number}", code)
    return code


def commented(code: str) -> str:
    """Comments of the copier's own on every line of the body."""
    lines = code.splitlines()
    return "\n".join([lines[0], *(f"{line}  # step {n}" for n, line in enumerate(lines[1:]))])


def _swappable(code: str) -> int | None:
    """The first body line that can swap with the next (one-line statements, no shared name
    written by either), or None."""
    body = ast.parse(code).body[-1].body
    for first, second in zip(body, body[1:]):
        if first.lineno != first.end_lineno or second.lineno != second.end_lineno:
            continue
        (r1, w1), (r2, w2) = compare._names(first), compare._names(second)  # noqa: SLF001
        if not (w1 & (r2 | w2) or r1 & w2) and isinstance(first, ast.Assign) \
                and isinstance(second, ast.Assign):
            return first.lineno - 1
    return None


def reordered(code: str) -> str:
    lines = code.splitlines()
    at = _swappable(code)
    assert at is not None
    lines[at], lines[at + 1] = lines[at + 1], lines[at]
    return "\n".join(lines)


def with_bug(code: str) -> str:
    """A deliberate bug: the result doubled."""
    lines = code.splitlines()
    last = max(i for i, line in enumerate(lines) if line.strip().startswith("return "))
    lines[last] = lines[last].split("#")[0].rstrip().replace("return ", "return 2 * (", 1) + ")"
    ast.parse("\n".join(lines))
    return "\n".join(lines)


def _notebook(code: dict[str, str], derivation: str | None) -> dict:
    """The released notebook with the answer cells of ``code`` (question -> source) and the
    derivation's answer cell filled in."""
    nb = json.loads(paths.student_notebook(LINEAR).read_text("utf-8"))
    cells = nb["cells"]
    for index, cell in enumerate(cells):
        tags = cell.get("metadata", {}).get("tags", [])
        source = "".join(cell["source"])
        if cell["cell_type"] == "code" and "otter_answer_cell" in tags:
            for question, answer in code.items():
                if f"def {question}(" in source:
                    cell["source"] = answer
        elif "otter_answer_cell" in tags and derivation is not None \
                and "derive the gradient" in "".join(cells[index - 1]["source"]):
            cell["source"] = derivation
    return nb


def build_class(root: Path) -> tuple[Path, dict[str, tuple[str, str, str]]]:
    """SUBMISSIONS with the independent students s00, s01, ..., the planted copies (copier ->
    (question, the student copied, how)), two natural one-liners and a blank notebook."""
    banks = {q: _variants(q) for q in QUESTIONS}
    count = max(len(v) for v in banks.values())
    students: dict[str, tuple[dict[str, str], str | None]] = {}
    for k in range(count):
        code = {q: v[k] for q, v in banks.items() if k < len(v)}
        students[f"s{k:02d}"] = (code, TEXTS.get(f"s{k:02d}"))
    # Planted copies, each of another student's answer to one question.
    source = {q: {i: v for i, v in enumerate(banks[q])} for q in QUESTIONS}
    reorder_from = next(i for i, v in source["pinv_svd"].items() if _swappable(v) is not None)
    longest = max(source["linear_regression_loss_grad"].items(), key=lambda kv: len(kv[1]))[0]
    planted = {
        "copy_renamed": ("train_test_split", 1, lambda c: renamed(c)),
        "copy_reordered": ("pinv_svd", reorder_from, lambda c: commented(renamed(reordered(c)))),
        "copy_commented": ("linear_regression_loss_grad", 2, commented),
        "copy_with_bug": ("linear_regression_loss_grad", longest, lambda c: with_bug(renamed(c))),
    }
    copies = {}
    for copier, (question, k, how) in planted.items():
        students[copier] = ({question: how(source[question][k])}, None)
        copies[copier] = (question, f"s{k:02d}", copier)
    students["copy_text"] = ({}, COPIED_TEXT)
    copies["copy_text"] = ("gradient_derivation", "s02", "copy_text")
    students["natural_a"] = ({"as_column": NATURAL}, None)
    students["natural_b"] = ({"as_column": NATURAL.replace("(-1, 1)", "(-1,1)")}, None)
    students["blank"] = ({}, None)
    submissions = root / "submissions"
    for student, (code, text) in students.items():
        folder = submissions / student
        folder.mkdir(parents=True)
        (folder / f"{LINEAR}.ipynb").write_text(json.dumps(_notebook(code, text)), "utf-8")
    return submissions, copies


def build_out(out: Path, students: list[str]) -> None:
    """A graded OUT's files the feedback pages are made from, and the pages."""
    write_csv(out / "questions.csv", ["assignment", "question", "points", "manual"],
              [[LINEAR, "pinv_svd", "1", "False"]])
    write_csv(out / "grades.csv", ["student", f"{LINEAR}/pinv_svd", "total", "notes"],
              [[s, "1", "1", ""] for s in students])
    feedback.write_feedback(out)


@pytest.fixture(scope="module")
def compared(tmp_path_factory) -> tuple[Path, Path, dict, compare.Result]:
    root = tmp_path_factory.mktemp("similarity")
    submissions, copies = build_class(root)
    out = root / "out"
    build_out(out, sorted(p.name for p in submissions.iterdir()))
    assert cli.main(["similarity", "--submissions", str(submissions), "--out", str(out)]) == 0
    kit = compare.release([autograders.load(LINEAR)])
    result = compare.compare_class(kit, compare.read_class(submissions, kit))
    return submissions, out, copies, result


def _position(result: compare.Result, column: str, a: str, b: str) -> int:
    return next(i for i, p in enumerate(result.pairs)
                if p.column == column and {p.first, p.second} == {a, b})


def test_every_planted_pair_ranks_above_every_independent_pair(compared) -> None:
    _, _, copies, result = compared
    for question, original, copier in copies.values():
        column = f"{LINEAR}/{question}"
        planted = _position(result, column, original, copier)
        independent = [i for i, p in enumerate(result.pairs) if p.column == column
                       and p.first.startswith("s") and p.second.startswith("s")]
        assert independent, f"no independent pair compared on {question}"
        assert planted < min(independent), (question, copier, result.pairs[planted],
                                            result.pairs[min(independent)])
        assert result.pairs[planted].similarity > 0.5


def test_two_honest_one_liners_rank_below_every_planted_pair(compared) -> None:
    _, _, copies, result = compared
    natural = _position(result, f"{LINEAR}/as_column", "natural_a", "natural_b")
    assert result.pairs[natural].similarity == pytest.approx(1.0)  # the same answer, honestly
    for question, original, copier in copies.values():
        assert _position(result, f"{LINEAR}/{question}", original, copier) < natural


def test_the_template_is_not_compared(compared) -> None:
    _, _, _, result = compared
    assert result.work["blank"].answers[f"{LINEAR}/pinv_svd"].startswith("def pinv_svd(X):")
    assert not any("blank" in (p.first, p.second) for p in result.pairs)
    # As released, the graded functions' template holds its def line and docstring only.
    assert result.templates[f"{LINEAR}/pinv_svd"][0].rstrip().endswith("...")


def test_normalising_keeps_the_library_and_drops_what_a_copier_changes() -> None:
    one = "def f(X):\n    a = X.sum()  # total\n    b = X.max()\n    return a / b"
    two = "def f(Z):\n    # largest first\n    top = Z.max()\n    s = Z.sum()\n    return s / top"
    three = "def f(X):\n    a = X.min()\n    b = X.max()\n    return a / b"
    prints = [compare.fingerprint(c, "code", compare.boilerplate([], "code"))
              for c in (one, two, three)]
    order = [[line.split(".")[-1] for line in compare.canonical_code(code)[0].splitlines()[1:3]]
             for code in (one, two)]
    assert order[0] == order[1] == ["max()", "sum()"]  # one order, whoever wrote which first
    assert compare._compare(prints[0], prints[1])[0] == pytest.approx(1.0)  # noqa: SLF001
    assert compare._compare(prints[0], prints[2])[0] < 1.0  # noqa: SLF001 (min is not sum)


def test_hostile_answers_are_read_within_budget(tmp_path: Path) -> None:
    deep = "def pinv_svd(X):\n    return " + "(" * 5000 + "X" + ")" * 5000
    huge = "def pinv_svd(X):\n" + "    x = 1\n" * 10_000
    broken = "def pinv_svd(X:\n    return X ]"
    submissions = tmp_path / "submissions"
    twin = "<b onmouseover=alert(1)>twin"  # a student id is a file name the student chose
    for name, code in (("deep", deep), ("huge", huge), ("broken", broken), (twin, broken)):
        (submissions / name).mkdir(parents=True)
        (submissions / name / f"{LINEAR}.ipynb").write_text(
            json.dumps(_notebook({"pinv_svd": code}, None)), "utf-8")
    (submissions / "junk.ipynb").write_text("{not json", "utf-8")
    summary = similarity_report(submissions, tmp_path / "out")
    assert "compared 5 submissions" in summary
    page = (tmp_path / "out" / "similarity.html").read_text("utf-8")
    assert "longer than 8000 characters" in page and "not a readable notebook" in page
    assert "&lt;b onmouseover=alert(1)&gt;twin · broken" in page  # compared as written
    assert "<b onmouseover" not in page and len(page) < 2_000_000
    assert cli.main(["similarity", "--submissions", str(tmp_path / "none"),
                     "--out", str(tmp_path / "out2")]) == 1
    assert not (tmp_path / "out2").exists()


def test_the_page_is_plain_about_what_it_is_and_loads_nothing(compared) -> None:
    _, out, _, _ = compared
    page = html.unescape(" ".join((out / "similarity.html").read_text("utf-8").split()))
    assert "not a finding of copying" in page and "coincide" in page
    assert "Nothing on this page changes a grade" in page
    assert "default-src 'none'" in page and "<script" not in page
    assert not re.search(r"(src|href)=\"(https?:)?//", page)
    assert (out / "similarity.csv").read_text("utf-8").startswith("rank,question,student")


@pytest.mark.skipif(not CHROMIUM.exists(),
                    reason="/usr/bin/chromium is absent (tools/ensure-chromium)")
def test_the_page_in_chromium_marks_matches_and_links_feedback(compared) -> None:
    from playwright.sync_api import sync_playwright

    _, out, copies, result = compared
    question, original, copier = copies["copy_reordered"]
    number = _position(result, f"{LINEAR}/{question}", original, copier) + 1
    with sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        page = browser.new_page()
        refused: list[str] = []
        page.on("console", lambda m: refused.append(m.text) if m.type == "error" else None)
        page.on("request", lambda r: refused.append(r.url) if not r.url.startswith("file:")
                else None)
        page.goto((out / "similarity.html").as_uri())
        pair = page.locator(f"#pair-{number}")
        marks = pair.locator("mark")
        assert marks.count() >= 2 and marks.first.is_visible()
        box = marks.first.bounding_box()
        assert box and box["width"] > 0 and box["height"] > 0
        colour = marks.first.evaluate("m => getComputedStyle(m).backgroundColor")
        plain = pair.locator("pre").first.evaluate("p => getComputedStyle(p).backgroundColor")
        assert colour != plain and colour not in ("rgba(0, 0, 0, 0)", "transparent")
        assert "pinv_svd" in pair.locator("pre").first.inner_text()
        page.click(f'a[href="#pair-{number}"]')
        assert page.url.endswith(f"#pair-{number}")
        links = pair.locator("a.feedback")
        assert links.count() == 2
        for index, student in enumerate(sorted((original, copier))):
            page.goto((out / "similarity.html").as_uri())
            page.locator(f"#pair-{number} a.feedback").nth(index).click()
            page.wait_for_load_state()
            assert page.url.startswith((out / "feedback").as_uri())
            assert student in page.locator("h1").inner_text()
        browser.close()
    assert not refused, refused


def test_an_earlier_year_is_compared_with_the_class_only(compared, tmp_path: Path) -> None:
    submissions, _, _, _ = compared
    earlier = tmp_path / "earlier"
    for name in ("old_one", "old_two"):  # the same answer as s05, twice: only s05 is paired
        (earlier / name).mkdir(parents=True)
        (earlier / name / f"{LINEAR}.ipynb").write_text(json.dumps(_notebook(
            {"pinv_svd": renamed(_variants("pinv_svd")[5])}, None)), "utf-8")
    out = tmp_path / "out"
    similarity_report(submissions, out, earlier)
    rows = (out / "similarity.csv").read_text("utf-8").splitlines()
    old = [r for r in rows if ",old_" in r]
    assert old and all(r.split(",")[4] == "yes" for r in old)
    assert not any("old_one" in r and "old_two" in r for r in rows)
    best = next(r for r in old if r.split(",")[2] == "s05")
    assert float(best.split(",")[5]) == pytest.approx(1.0)
    assert "(an earlier year)" in (out / "similarity.html").read_text("utf-8")


def test_the_ranking_is_the_same_in_every_run(compared, tmp_path: Path) -> None:
    """Python salts its string hashes per process; the k-grams must not depend on it."""
    submissions = compared[0]
    tables = []
    for seed in ("1", "2"):
        out = tmp_path / seed
        subprocess.run([sys.executable, "-m", "labkit", "similarity", "--submissions",
                        str(submissions), "--out", str(out)], check=True, cwd=paths.ROOT,
                       env={**os.environ, "PYTHONHASHSEED": seed}, capture_output=True)
        tables.append((out / "similarity.csv").read_bytes())
    assert tables[0] == tables[1]


def test_make_similarity_writes_the_page_into_out(compared, tmp_path: Path) -> None:
    submissions = compared[0]
    done = subprocess.run(["make", "--no-print-directory", "similarity",
                           f"SUBMISSIONS={submissions}", f"OUT={tmp_path / 'out'}"],
                          cwd=paths.ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"compared {len(list(submissions.iterdir()))} submissions on 13 questions" in done.stdout
    assert (tmp_path / "out" / "similarity.html").is_file()
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["similarity.csv",
                                                                    "similarity.html"]
