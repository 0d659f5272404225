"""Pages that stay small and load nothing from elsewhere, whatever the students wrote.

- A written answer that references one 400 kB pasted image 3,300 times (one reference-style
  definition, ``![][a]`` repeated) is graded through ``python -m labkit grade``: the image is
  written once, as a file, the page stays small, and Chromium shows the image. An answer whose
  HTML would exceed the budget is replaced by a note, and the rest of the class's files are
  written.
- A remote image in an error text (feedback page), in a written answer (manual page), and the
  report and manual index: in headless Chromium, with a local HTTP server standing in for the
  remote host, no page makes a request to it; each page carries the kit's policy and no ``src``
  that leads anywhere else. LaTeX shows as MathML with no network.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import http.server
import io
import json
import random
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from labkit import paths
from labkit.course import autograders
from labkit.outputs import page_files, pages, results
from labkit.course import written
from labkit.grading import written_answers
from labkit.outputs import markdown, written_pages

from .conftest import LAB

CHROMIUM = Path("/usr/bin/chromium")
needs_chromium = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="/usr/bin/chromium is absent (tools/ensure-chromium)")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]

LINEAR, LOGISTIC = "1_1_linear_regression", "1_2_logistic_regression"
TRAINING = f"{LOGISTIC}/training_observations"
#: As in the security review: one attachment, referenced this many times in one answer.
REFERENCES = 3300
SIDE = 370  # a noisy 370 x 370 RGB PNG is about 400 kB


def _png(side: int, seed: int) -> bytes:
    noise = random.Random(seed).randbytes(side * side * 3)
    buffer = io.BytesIO()
    Image.frombytes("RGB", (side, side), noise).save(buffer, format="PNG")
    return buffer.getvalue()


def _with_answer(markdown: str, attachments: dict[str, bytes] | None = None) -> dict:
    """The released logistic notebook, its written answer replaced by ``markdown`` (with these
    pasted images)."""
    nb = json.loads(paths.student_notebook(LOGISTIC).read_text("utf-8"))
    begin, _ = written.regions(nb["cells"])[0]
    cell = nb["cells"][begin + 1]
    assert cell["cell_type"] == "markdown" and "otter_answer_cell" in cell["metadata"]["tags"]
    cell["source"] = markdown
    if attachments:
        cell["attachments"] = {name: {"image/png": base64.b64encode(data).decode("ascii")}
                               for name, data in attachments.items()}
    return nb


def _sections(html: str) -> dict[str, str]:
    parts = re.split(r'<section class="answer"', html)[1:]
    return {re.search(r'data-student="([^"]*)"', p).group(1): p.split("</section>")[0]
            for p in parts}


# --- one large attachment, thousands of times -------------------------------------------------

@pytest.fixture(scope="module")
def flooded(tmp_path_factory) -> tuple[Path, Path, bytes]:
    """A class graded by ``python -m labkit grade``: ``flood`` references one large image
    REFERENCES times, ``huge`` writes an answer whose HTML is over the budget (a long link
    repeated) and pastes an image of its own, ``ada`` answers in prose."""
    root = tmp_path_factory.mktemp("flood")
    submissions, out = root / "submissions", root / "out"
    submissions.mkdir()
    big, own = _png(SIDE, 1), _png(40, 2)
    notebooks = {
        "flood": _with_answer("[a]: attachment:big.png\n\n" + "![][a]" * REFERENCES, {"big.png": big}),
        "huge": _with_answer(f"![mine](attachment:own.png)\n\n[u]: http://example.org/{'a' * 1000}"
                             "\n\n" + "[][u]" * 3000, {"own.png": own}),
        "ada": _with_answer("The loss falls quickly, then levels off."),
    }
    for name, nb in notebooks.items():
        (submissions / f"{name}.ipynb").write_text(json.dumps(nb), encoding="utf-8")
    assert (submissions / "flood.ipynb").stat().st_size > 500_000
    done = subprocess.run([sys.executable, "-m", "labkit", "grade", "--submissions", str(submissions),
                           "--out", str(out), "--workers", "2"],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return submissions, out, big



@pytest.mark.slow
def test_one_attachment_referenced_thousands_of_times_is_one_file_on_a_small_page(flooded) -> None:
    _, out, big = flooded
    page = out / "manual" / f"{LOGISTIC}-training_observations.html"
    # Each reference is a short <img src> to the one file, not the image again: about 0.39 MB
    # (inlined as a data: URL at every reference, the page would be 1.36 GB).
    assert page.stat().st_size < 1_000_000, page.stat().st_size
    for other in [*(out / "manual").glob("*.html"), out / "report.html", *(out / "feedback").iterdir()]:
        assert other.stat().st_size < 1_000_000, other
    files = list((out / "manual" / markdown.ATTACHMENTS_FOLDER).iterdir())
    name = f"{hashlib.sha256(big).hexdigest()}.png"
    assert [f.name for f in files] == [name]  # written once; "huge"'s own image is not kept
    assert files[0].read_bytes() == big
    flood = _sections(page.read_text("utf-8"))["flood"]
    assert flood.count(f'<img src="{markdown.ATTACHMENTS_FOLDER}/{name}"') == REFERENCES
    assert "data:" not in flood
    # The class's files are written as usual.
    with open(out / "grades.csv", newline="", encoding="utf-8") as handle:
        assert sorted(r["student"] for r in csv.DictReader(handle)) == ["ada", "flood", "huge"]
    assert (out / "report.html").is_file() and len(list((out / "feedback").iterdir())) == 3


@pytest.mark.slow
def test_an_answer_over_the_budget_is_replaced_by_a_note(flooded) -> None:
    _, out, _ = flooded
    sections = _sections((out / "manual" / f"{LOGISTIC}-training_observations.html")
                         .read_text("utf-8"))
    huge = " ".join(sections["huge"].split())
    assert "This answer is too large to show here (" in huge
    assert f"over the {markdown.MAX_ANSWER_HTML_BYTES >> 20} MB limit" in huge
    assert "open the student's notebook (huge.ipynb) to read it." in huge
    assert "example.org" not in huge and "<img" not in huge
    assert "<p>The loss falls quickly, then levels off.</p>" in sections["ada"]


@pytest.mark.slow
@needs_chromium
def test_the_repeated_attachment_shows_in_chromium(flooded) -> None:
    from playwright.sync_api import sync_playwright

    _, out, _ = flooded
    page_path = out / "manual" / f"{LOGISTIC}-training_observations.html"
    with sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        page = browser.new_page()
        requested: list[str] = []
        page.on("request", lambda request: requested.append(request.url))
        page.goto(page_path.as_uri())
        images = page.locator('section[data-student="flood"] img')
        assert images.count() == REFERENCES
        first = images.first
        first.scroll_into_view_if_needed()
        page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=first.element_handle())
        assert first.evaluate("img => img.naturalWidth") == SIDE
        browser.close()
    assert requested and all(url.startswith("file://") for url in requested), requested


# --- nothing fetched from elsewhere ----------------------------------------------------------

class _Recorder(http.server.BaseHTTPRequestHandler):
    """A stand-in for a remote host: answers every GET with a PNG and remembers the path."""

    requests: list[str] = []
    image = _png(4, 3)

    def do_GET(self) -> None:  # noqa: N802 (the standard library's name)
        type(self).requests.append(self.path)
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.send_header("Content-Length", str(len(self.image)))
        self.end_headers()
        self.wfile.write(self.image)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="module")
def remote() -> Iterator[tuple[str, list[str]]]:
    """(base URL, paths requested) of an HTTP server on 127.0.0.1."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    _Recorder.requests = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", _Recorder.requests
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def remote_class(tmp_path_factory, remote) -> Path:
    """An OUT whose feedback page shows an error text holding a remote image, whose written
    answer holds the same image and some LaTeX, with its report and manual index."""
    base, _ = remote
    root = tmp_path_factory.mktemp("remote")
    out, entry = root / "out", root / "submissions" / "eve"
    out.mkdir()
    (out / "questions.csv").write_text(
        "assignment,question,points,manual\n"
        f"{LINEAR},as_column,4,false\n{LOGISTIC},training_observations,2,true\n", encoding="utf-8")
    (out / "grades.csv").write_text(
        f"student,{LINEAR}/as_column,{TRAINING},total,notes\neve,0,,0,\n", encoding="utf-8")
    record = {"format": results.FORMAT, "scores": {"as_column": 0}, "problem": None,
              "notes": [], "cases": [
                  {"question": "as_column", "name": "as_column - 2", "hidden": True,
                   "kind": results.ERROR, "message": f"ValueError: ![x]({base}/feedback.png)",
                   "earned": 0.0, "possible": 4.0}]}
    (out / "results" / "eve").mkdir(parents=True)
    (out / "results" / "eve" / f"{LINEAR}.json").write_text(json.dumps(record), encoding="utf-8")
    entry.mkdir(parents=True)
    (entry / f"{LOGISTIC}.ipynb").write_text(json.dumps(_with_answer(
        f"See ![x]({base}/answer.png) and [the notes]({base}/notes.html): "
        r"$\frac{\partial J}{\partial \theta} = X^\top (\sigma(X\theta) - y)$")), encoding="utf-8")
    questions = [q for q in autograders.written_questions(autograders.load_all(LAB))
                 if q.assignment == LOGISTIC]
    written_pages.write_pages(out, questions, written_answers.collect([entry], [LOGISTIC], questions))
    pages.write_feedback_and_report(out)
    return out


def _written_pages(out: Path) -> list[Path]:
    return [out / "report.html", *sorted((out / "feedback").iterdir()),
            *sorted((out / "manual").glob("*.html"))]


def test_every_page_carries_the_policy_and_no_outside_source(remote_class, remote) -> None:
    base, _ = remote
    written = _written_pages(remote_class)
    assert len(written) == 4  # the report, one feedback page, one question page, the index
    for path in written:
        html = path.read_text("utf-8")
        head = html.split("<title>", 1)[0]
        policy = re.search(r'<meta http-equiv="Content-Security-Policy" content="([^"]*)">', head)
        assert policy, path
        csp = policy.group(1).replace("&#39;", "'")
        assert csp.startswith("default-src 'none'; script-src "), csp
        for directive in ("base-uri 'none'", "form-action 'none'"):
            assert directive in csp, (path, csp)
        assert '<meta name="referrer" content="no-referrer">' in head
        assert "unsafe" not in csp and "http" not in csp and "*" not in csp, csp
        # Every src is one of the kit's own: an attachment's file or a chart it drew.
        for src in re.findall(r"\bsrc\s*=\s*[\"']?([^\"'\s>]*)", html, re.IGNORECASE):
            assert src.startswith((f"{markdown.ATTACHMENTS_FOLDER}/", "data:image/png;base64,")), (path, src)
        assert "mathjax" not in html.lower() and "jsdelivr" not in html
    eve = (remote_class / "feedback" / page_files.page_names(["eve"])[0]).read_text("utf-8")
    assert f"ValueError: [image: x ({base}/feedback.png)]" in eve  # shown as text
    answer = (remote_class / "manual" / f"{LOGISTIC}-training_observations.html").read_text("utf-8")
    assert f"[image: x ({base}/answer.png)]" in answer
    assert f'<a href="{base}/notes.html">the notes</a>' in answer  # a link stays a link


@needs_chromium
def test_no_page_requests_the_remote_host_and_latex_is_mathml(remote_class, remote, tmp_path) -> None:
    from playwright.sync_api import sync_playwright

    base, requests = remote
    control = tmp_path / "control.html"  # proves that a request to the stand-in is seen
    control.write_text(f'<!DOCTYPE html><img src="{base}/control.png">', encoding="utf-8")
    with sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        page = browser.new_page()
        loaded: list[str] = []
        errors: list[str] = []
        page.on("request", lambda request: loaded.append(request.url))
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        for path in _written_pages(remote_class):
            page.goto(path.as_uri(), wait_until="load")
            page.wait_for_timeout(200)
        assert requests == [], requests
        assert all(url.startswith("file://") for url in loaded), loaded
        assert errors == []  # nothing on the kit's own pages is refused by their policy
        # The answer's LaTeX is MathML, laid out by the browser itself.
        page.goto((remote_class / "manual" / f"{LOGISTIC}-training_observations.html").as_uri())
        fraction = page.locator('section[data-student="eve"] math mfrac').first
        box = fraction.bounding_box()
        assert box and box["height"] > 20 and box["width"] > 20, box
        assert "\\frac" not in page.locator('section[data-student="eve"] .body').inner_text()
        page.goto(control.as_uri(), wait_until="load")
        browser.close()
    assert requests == ["/control.png"]
