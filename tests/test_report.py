"""The HTML pages made from a graded OUT: per-student feedback and the class report.

The OUT folder is built by hand, so these tests run in a second and cover what a real class
rarely shows at once: hostile student ids, a notebook that could not be run, failed public and
hidden checks, and a student-written exception message holding HTML.
"""

from __future__ import annotations

import base64
import csv
import io
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from labkit.outputs import feedback, page_files, pages, report, results

CHROMIUM = Path("/usr/bin/chromium")
needs_chromium = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="/usr/bin/chromium is absent: browser rendering not checked (tools/ensure-chromium)")

LINEAR, LOGISTIC = "1_1_linear_regression", "1_2_logistic_regression"
QUESTIONS = [(LINEAR, "as_column", 4.0), (LINEAR, "pinv_svd", 5.0),
             (LOGISTIC, "logistic_regression_loss_grad", 6.0)]
HIDDEN_CODE = "checks.pinv_svd.check_values(pinv_svd)"
SCRIPT_ID = "<script>alert(1)</script>"
IMG_ID = "<img src=x onerror=alert(1)>"


def _otter(question: str, line: int, code: str, error: str) -> str:
    """A failure message in otter's own shape (otter.test_files.exception_test), as results of
    format 1 kept it."""
    return f"❌ Test case failed\nError at line {line} in test {question}:\n  {code}\n{error}"


def _case(question: str, hidden: bool, points: float, message: str | None = None,
          kind: str = results.CHECK) -> dict:
    """A case as grading records it (``results.CaseOutcome``): passed without a message."""
    return {"question": question, "name": f"{question} - x", "hidden": hidden,
            "kind": results.PASSED if message is None else kind, "message": message or "",
            "earned": points if message is None else 0.0, "possible": points}


def _wrong_pinv(shape: str, off: str) -> str:
    return (f"`pinv_svd` returned wrong values for inputs (a float64 tensor of shape {shape} on "
            f"cpu): off by up to {off} where the expected values are of size up to 0.152.")


PUBLIC_FAIL = "pinv_svd must return a tensor"


def _linear_cases(pinv: list[dict]) -> list[dict]:
    return [_case("as_column", False, 0), _case("as_column", True, 2), _case("as_column", True, 2),
            *pinv]


STUDENTS = {
    # id: (points per question, notes, {assignment: results record} or None for no results of
    # assignments; the notes are kept in a results folder too, where the id can name one)
    "alice": ((4, 5, 6), [], {
        LINEAR: {"scores": {"as_column": 4, "pinv_svd": 5}, "problem": None, "notes": [],
                 "cases": _linear_cases([_case("pinv_svd", False, 0), _case("pinv_svd", True, 5)])},
        LOGISTIC: {"scores": {"logistic_regression_loss_grad": 6}, "problem": None, "notes": [],
                   "cases": [_case("logistic_regression_loss_grad", True, 6)]},
    }),
    "bob": ((4, 2, 0), [f"{LOGISTIC}: the notebook could not be run: it ran past 600 s"], {
        LINEAR: {"scores": {"as_column": 4, "pinv_svd": 2}, "problem": None, "notes": [],
                 "cases": _linear_cases([
                     _case("pinv_svd", False, 0, PUBLIC_FAIL),
                     _case("pinv_svd", True, 2),
                     _case("pinv_svd", True, 3, _wrong_pinv("(8, 4)", "2.75e+15"))])},
        LOGISTIC: {"scores": {}, "problem": "the notebook could not be run: it ran past 600 s",
                   "notes": [], "cases": []},
    }),
    IMG_ID: ((0, 2, 6), [f"{LINEAR}: killed; graded without code cell 3"], {
        LINEAR: {"scores": {"as_column": 0, "pinv_svd": 2}, "problem": None,
                 "notes": ["killed; graded without code cell 3"],
                 "cases": [_case("as_column", False, 0,
                                 "ValueError: <b>mine</b> & <script>alert(2)</script>",
                                 results.ERROR),
                           _case("as_column", True, 2, "`as_column` returned NoneType"),
                           _case("as_column", True, 2, "`as_column` stopped the notebook's "
                                 "process: it ended", results.STOPPED),
                           _case("pinv_svd", False, 0),
                           _case("pinv_svd", True, 2),
                           _case("pinv_svd", True, 3, _wrong_pinv("(6, 3)", "7.5"))]},
        LOGISTIC: {"scores": {"logistic_regression_loss_grad": 6}, "problem": None, "notes": [],
                   "cases": [_case("logistic_regression_loss_grad", True, 6)]},
    }),
    # Ids that cannot be folder names (they hold "/"): they only appear in grades.csv.
    SCRIPT_ID: ((0, 0, 0), ["evil.zip: not a readable zip file (<script>x</script>)"], None),
    "../evil": ((0, 0, 0), ["no notebook found"], None),
    "..": ((0, 0, 0), ["no notebook found"], None),
    "Alice": ((0, 0, 0), [f"{LINEAR}: no notebook submitted", f"{LOGISTIC}: no notebook submitted"],
              None),
}


def build_out(out: Path) -> Path:
    """A graded OUT folder as ``labkit.grading.classrun`` writes it."""
    out.mkdir(parents=True, exist_ok=True)
    columns = [f"{a}/{q}" for a, q, _ in QUESTIONS]
    with open(out / "questions.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["assignment", "question", "points"])
        writer.writerows([a, q, f"{p:g}"] for a, q, p in QUESTIONS)
    with open(out / "grades.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["student", *columns, "total", "notes"])
        for student in sorted(STUDENTS):
            points, notes, kept = STUDENTS[student]
            writer.writerow([student, *(f"{p:g}" for p in points), f"{sum(points):g}",
                             "; ".join(notes)])
            for stem, record in (kept or {}).items():
                path = out / "results" / student / f"{stem}.json"
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(json.dumps({"format": results.FORMAT, **record}, indent=1,
                                           sort_keys=True), encoding="utf-8")
            if "/" not in student and student not in (".", ".."):
                results.write_notes(out, student, notes)
    return out


@pytest.fixture
def out(tmp_path: Path) -> Path:
    built = build_out(tmp_path / "out")
    pages.write_feedback_and_report(built)
    return built


def _page(out: Path, student: str) -> str:
    names = page_files.page_names(sorted(STUDENTS))
    return (out / "feedback" / names[sorted(STUDENTS).index(student)]).read_text("utf-8")


def _all_html(out: Path) -> list[tuple[Path, str]]:
    return [(p, p.read_text("utf-8")) for p in [out / "report.html",
                                                  *sorted((out / "feedback").iterdir())]]


# --- messages ----------------------------------------------------------------------------------

def test_notes_are_read_as_grading_kept_them_never_split_from_the_csv(out: Path) -> None:
    data = {s.student: s for s in feedback.load_class(out).students}
    assert data[IMG_ID].notes == [f"{LINEAR}: killed; graded without code cell 3"]
    assert data["Alice"].notes == [f"{LINEAR}: no notebook submitted",
                                   f"{LOGISTIC}: no notebook submitted"]
    assert data["alice"].notes == []
    # An id that cannot name a folder keeps no notes file: its CSV text is shown as it is.
    assert data["../evil"].notes == ["no notebook found"]


def test_a_case_recorded_in_otters_text_shows_a_neutral_sentence(tmp_path: Path) -> None:
    """Results of format 1 kept otter's text, which quotes the hidden test's code: its failures
    keep their points but show no text of theirs."""
    out = build_out(tmp_path / "out")
    record = {"scores": {"as_column": 2}, "problem": None, "notes": [], "cases": [
        {"question": "as_column", "hidden": True, "points": 2, "passed": True, "message": ""},
        {"question": "as_column", "hidden": True, "points": 2, "passed": False,
         "message": _otter("as_column", 19, HIDDEN_CODE, "CheckFailed: returned NoneType")}]}
    (out / "results" / "alice" / f"{LINEAR}.json").write_text(json.dumps(record), "utf-8")
    pages.write_feedback_and_report(out)
    page = _page(out, "alice")
    assert "Hidden test 2 (2 points) failed:" in page and results.UNREADABLE in page
    assert HIDDEN_CODE not in page and "Error at line" not in page and "NoneType" not in page
    assert "1 of 2" in page


def test_normalise_groups_the_same_mistake_on_other_inputs() -> None:
    first = report.normalise(_wrong_pinv("(8, 4)", "2.75e+15"))
    assert first == report.normalise(_wrong_pinv("(6, 3)", "7.5"))
    assert "8, 4" not in first and "2.75" not in first and "float64" not in first
    assert first.startswith("`pinv_svd` returned wrong values for inputs (…): off by up to …")


# --- feedback pages ----------------------------------------------------------------------------

def test_feedback_pages_show_points_messages_and_notes(out: Path) -> None:
    bob = _page(out, "bob")
    assert "Feedback for <span class=\"id\">bob</span>" in bob
    assert "6 / 15" in bob  # total
    assert "2 / 5" in bob  # pinv_svd
    assert "Hidden test 2 (3 points) failed:" in bob
    assert "off by up to 2.75e+15 where the expected values are of size up to 0.152." in bob
    assert "Public check 1 (0 points, for you to test with) failed:" in bob
    assert "pinv_svd must return a tensor" in bob
    assert "Problems with your submission" in bob
    assert "the notebook could not be run: it ran past 600 s" in bob
    assert "Not graded: the notebook could not be run" in bob
    assert "hidden tests" in bob and "public checks" in bob
    alice = _page(out, "alice")
    assert "Problems with your submission" not in alice
    assert alice.count("Every check passed.") == 2
    img = _page(out, IMG_ID)
    assert "<li>1_1_linear_regression: killed; graded without code cell 3</li>" in img  # one note
    assert "<code>as_column</code> stopped the notebook's process: it ended" in img


def test_pages_never_show_test_code(out: Path) -> None:
    for path, text in _all_html(out):
        assert HIDDEN_CODE not in text, path
        assert "checks.as_column" not in text, path
        assert "Error at line" not in text, path
        assert "out = as_column(x)" not in text, path


def test_pages_escape_hostile_text(out: Path) -> None:
    for path, text in _all_html(out):
        body = text.split("</style>", 1)[1]
        assert "<script" not in body.lower(), path
        assert "<img src=x" not in body and "<b>mine" not in body, path
        assert "onerror=alert(1)>" not in body.replace("&lt;img src=x onerror=alert(1)&gt;", ""), path
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in _page(out, SCRIPT_ID)
    mine = _page(out, IMG_ID)
    assert "ValueError: &lt;b&gt;mine&lt;/b&gt; &amp; &lt;script&gt;alert(2)&lt;/script&gt;" in mine


def test_feedback_file_names_stay_inside_and_are_unique(out: Path) -> None:
    folder = (out / "feedback").resolve()
    written = sorted(folder.iterdir())
    assert len(written) == len(STUDENTS)
    assert len({p.name.lower() for p in written}) == len(STUDENTS)
    for path in written:
        assert path.resolve().parent == folder
        assert re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*\.html", path.name), path.name
    assert not (out / "evil.html").exists() and not (out.parent / "evil.html").exists()
    names = {p.name for p in written}
    assert "bob.html" in names
    assert {n.split("-")[0] for n in names if n.lower().startswith("alice")} == {"alice", "Alice"}


def test_page_names_are_unique_ignoring_case_and_for_repeated_ids() -> None:
    ids = ["alice", "ALICE", "alice", "a/b", "a?b", "", "..", ".", "bob"]
    names = page_files.page_names(ids)
    assert len({n.lower() for n in names}) == len(names)
    assert all(re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*\.html", n) for n in names), names
    assert names[-1] == "bob.html"
    assert names[2] == names[0].replace(".html", "-2.html")  # the same id listed twice
    # A student's name does not depend on the order of the class.
    assert dict(zip(ids, names))["ALICE"] == dict(zip(ids[::-1], page_files.page_names(ids[::-1])))["ALICE"]


def test_a_hostile_results_folder_name_is_never_followed(tmp_path: Path) -> None:
    """grades.csv naming ".." must not make the reader open OUT/<assignment>.json."""
    out = build_out(tmp_path / "out")
    decoy = {"scores": {}, "problem": "DECOY", "notes": [], "cases": []}
    (out / f"{LINEAR}.json").write_text(json.dumps(decoy), encoding="utf-8")
    data = feedback.load_class(out)
    assert all(s.results == {} for s in data.students if s.student in ("..", "../evil"))
    pages.write_feedback_and_report(out)
    assert all("DECOY" not in text for _, text in _all_html(out))


# --- the report --------------------------------------------------------------------------------

def test_report_holds_counts_tables_and_plots(out: Path) -> None:
    text = (out / "report.html").read_text("utf-8")
    counts = re.findall(r'<div class="count"><strong>(\d+)</strong>', text)
    assert counts == [str(len(STUDENTS)), "3", "6"]  # students, graded, with problems
    assert "<td>pinv_svd</td>" in text and "1 of 7 (14%)" in text  # full marks on pinv_svd
    # The same wrong pinv_svd, on different inputs by two students, is one row counting 2.
    # Its message is markdown, as on the feedback pages: code shows as code, not as backticks.
    row = re.search(r"<td>1_1_linear_regression/pinv_svd</td><td>hidden</td>\s*"
                    r"<td class=\"message\"><p>(.*?)</p>\s*</td><td class=\"num\">(\d+)</td>",
                    text)
    assert row and row.group(2) == "2" and "off by up to …" in row.group(1)
    assert "<code>pinv_svd</code>" in row.group(1) and "`" not in row.group(1)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;</a>" in text  # listed with problems
    assert "src=\"http" not in text and "<script" not in text.lower()
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', text)
    assert len(images) == 2
    for data in images:
        image = Image.open(io.BytesIO(base64.b64decode(data)))
        assert image.format == "PNG" and image.width >= 600 and image.height >= 250


def test_report_is_deterministic(out: Path, tmp_path: Path) -> None:
    first = (out / "report.html").read_bytes()
    again = build_out(tmp_path / "again")
    report.write_report(again)
    assert (again / "report.html").read_bytes() == first
    feedback.write_feedback(again)
    for page in (out / "feedback").iterdir():
        assert (again / "feedback" / page.name).read_bytes() == page.read_bytes()


def test_pages_command_line(tmp_path: Path) -> None:
    built = build_out(tmp_path / "out")
    done = subprocess.run([sys.executable, "-m", "labkit.outputs.pages", str(built)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert (built / "report.html").is_file() and len(list((built / "feedback").iterdir())) == len(STUDENTS)
    missing = subprocess.run([sys.executable, "-m", "labkit.outputs.pages", str(tmp_path / "nope")],
                             capture_output=True, text=True, timeout=120)
    assert missing.returncode == 1 and "not a graded folder" in missing.stderr


# --- in a browser ------------------------------------------------------------------------------

def _chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    profile = tmp_path / "chromium-profile"
    return subprocess.run(
        [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", f"--user-data-dir={profile}", *args],
        capture_output=True, text=True, timeout=120)


def _screenshot(tmp_path: Path, page: Path, name: str) -> Image.Image:
    png = tmp_path / f"{name}.png"
    done = _chromium(tmp_path, f"--screenshot={png}", "--window-size=1200,2000", page.as_uri())
    assert png.is_file(), done.stderr[-2000:]
    image = Image.open(png).convert("RGB")
    assert image.size == (1200, 2000)
    colours = image.getcolors(maxcolors=1 << 16)
    assert colours is None or len(colours) > 50, "the page rendered (almost) blank"
    return image


def _dom(tmp_path: Path, page: Path) -> str:
    done = _chromium(tmp_path, "--dump-dom", page.as_uri())
    assert done.returncode == 0 and "<html" in done.stdout, done.stderr[-2000:]
    return done.stdout


@needs_chromium
def test_report_renders_in_chromium(out: Path, tmp_path: Path) -> None:
    _screenshot(tmp_path, out / "report.html", "report")
    dom = _dom(tmp_path, out / "report.html")
    for heading in ("Class report", "Distribution of totals", "Per question",
                    "Checks that fail most often", "Submissions with problems"):
        assert re.search(rf"<h[12][^>]*>{heading}</h[12]>", dom), heading
    assert re.search(r'<table id="questions-table">.*<td>as_column</td>', dom, re.DOTALL)
    assert dom.count("<img ") == 2 and "<script" not in dom.lower()


@needs_chromium
def test_feedback_page_renders_in_chromium(out: Path, tmp_path: Path) -> None:
    names = dict(zip(sorted(STUDENTS), page_files.page_names(sorted(STUDENTS))))
    _screenshot(tmp_path, out / "feedback" / names["bob"], "bob")
    dom = _dom(tmp_path, out / "feedback" / names["bob"])
    assert "<h1>Feedback for <span class=\"id\">bob</span></h1>" in dom
    assert "<h2>Problems with your submission</h2>" in dom
    assert re.search(r"<td>pinv_svd</td><td class=\"num points\">2 / 5</td>", dom)
    hostile = _dom(tmp_path, out / "feedback" / names[SCRIPT_ID])
    assert "<script" not in hostile.lower() and "&lt;script&gt;alert(1)&lt;/script&gt;" in hostile


def test_chromium_helper_script_exists() -> None:
    script = Path(__file__).resolve().parents[1] / "tools" / "ensure-chromium"
    assert script.is_file() and shutil.which("bash")
    done = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
