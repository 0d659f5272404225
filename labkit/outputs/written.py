"""Written (manual) questions: one page per question with every student's answer, and the scores
the teaching team records by hand.

``make grade`` writes, for each written question of the masters, ``OUT/manual/<assignment>-
<question>.html``: the question, the reference solution (folded), then every student's answer in
order of student id, rendered from its markdown, each with an empty score box, so that one TA
grades one question across the class in one sitting. ``OUT/manual/index.html`` lists the pages.

Answers are read from the student's notebook between otter's ``<!-- BEGIN QUESTION -->`` and
``<!-- END QUESTION -->`` cells: the k-th written question of a master is the k-th such region of
the released student notebook. A student's region is found by the text of its prompt cell (so
cells a student added or deleted elsewhere do not matter), else by position, else by the prompt's
heading; every cell in it except the prompt makes up the answer, less otter's placeholder text.

Student content is untrusted. Markdown is rendered by markdown-it-py with raw HTML disabled (so
``<script>`` shows as text) and its link checks (no ``javascript:`` links). An image is shown
only when it is one of the notebook's own attachments (png, jpeg or gif, at most
``MAX_ATTACHMENT_BYTES``): each is written once, as ``OUT/manual/attachments/<sha256>.<ext>``,
and every answer that shows it points there; any other image is shown as its alt text and URL.
An answer whose HTML would exceed ``MAX_ANSWER_HTML_BYTES`` is replaced by a note saying to open
the notebook, so that no answer can make the pages too large to write or to open. The pages
carry the kit's Content-Security-Policy (``pagepolicy``): no script but the scoring form's, no
image but those files, nothing fetched from anywhere else.

LaTeX: math (``$...$``, ``$$...$$``, ``\\begin{env}...\\end{env}``, as Jupyter renders it) is
converted to MathML when the page is written (``mathml``), which the browser renders with no
network; what cannot be converted shows as its LaTeX source.

Scores are recorded in a CSV file (``student,assignment,question,points``; by default
``OUT/manual_scores.csv``, written as a template with empty points when absent). Each run merges
it into ``grades.csv`` and the feedback pages; empty points mean "not graded yet". Rows naming an
unknown student or question, or with points that are not a number, negative or above the
question's points, are skipped and listed in ``OUT/manual_problems.txt``; the others are merged.
Merging needs no regrading: the recorded (autograded) rows are reused and the scores applied on top.
"""

from __future__ import annotations

import base64
import binascii
import csv
import hashlib
import io
import json
import math
import os
import re
import tempfile
import warnings
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from markdown_it import MarkdownIt
from markdown_it.common.utils import escapeHtml
from markdown_it.token import Token
from mdit_py_plugins.amsmath import amsmath_plugin
from mdit_py_plugins.dollarmath import dollarmath_plugin
from PIL import Image

from labkit import paths
from labkit.grading import intake
from labkit.course.autograders import Assignment
from .feedback import ENVIRONMENT, TOLERANCE, page_names
from .gradebook import csv_line, from_spreadsheet, read_comments, write_atomically, write_csv
from .mathml import to_mathml
from .page_policy import ALIGN_STYLE, SAME_FOLDER, content_security_policy, neutralise

BEGIN_MARKER = "<!-- BEGIN QUESTION -->"
END_MARKER = "<!-- END QUESTION -->"
#: What otter puts in a written answer's cell; not part of any answer.
PLACEHOLDER = re.compile(r"_?Type your answer here, replacing this text\._?")
#: Longer answers are cut (with a note): a page must stay readable with a whole class on it.
MAX_ANSWER_CHARS = 20_000
#: Notebook attachments (pasted images, e.g. a photo of a derivation) are shown up to this size:
#: a pasted screenshot is tens to hundreds of kB, a phone's photo of a page 1 to 4 MB. Each is
#: one file however often it is shown, so the size bounds the disk and the browser, not the page.
MAX_ATTACHMENT_BYTES = 4 << 20
#: ... and this many pixels (a 48-megapixel phone photo passes; a small file that would decode
#: to gigabytes in the TA's browser does not).
MAX_ATTACHMENT_PIXELS = 50_000_000
#: The image types shown, by what the file holds (Pillow's name) -> the file's extension.
IMAGE_FORMATS = {"PNG": "png", "JPEG": "jpg", "GIF": "gif"}
IMAGE_TYPES = ("image/png", "image/jpeg", "image/gif")
#: An answer's rendered HTML is shown up to this size, else a note stands in for it. An answer
#: is at most MAX_ANSWER_CHARS of markdown; measured at that length, prose renders to 0.02 MB,
#: formulas or a table to 0.11 to 0.13 MB, the densest LaTeX (``x^2+x^2+...``) to 0.22 MB of
#: MathML; the masters' solutions to 3 kB. So 1 MB is over 4 times any real answer, and what
#: exceeds it repeats a long link or an image thousands of times.
MAX_ANSWER_HTML_BYTES = 1 << 20
#: Where the attachments are written, under ``OUT/manual``.
ATTACHMENTS_FOLDER = "attachments"
SCORE_FIELDS = ["student", "assignment", "question", "points"]
#: An optional column: the TA's words to the student, shown on the feedback page.
COMMENT_FIELD = "comment"
#: Longer comments are cut: a comment is a few sentences to a student, not a document.
MAX_COMMENT_CHARS = 4000
PROBLEMS_FILE = "manual_problems.txt"
DEFAULT_SCORES_FILE = "manual_scores.csv"

# --- the questions ---------------------------------------------------------------------------


@dataclass(frozen=True)
class WrittenQuestion:
    assignment: str
    name: str
    points: float
    #: the question's text (markdown), from the released student notebook
    prompt: str = ""
    #: the reference solution (markdown), from the solutions notebook
    solution: str = ""

    @property
    def column(self) -> str:
        """The question's column in ``grades.csv``."""
        return f"{self.assignment}/{self.name}"

    @property
    def page(self) -> str:
        return page_name(self.assignment, self.name)


def page_name(assignment: str, question: str) -> str:
    """The file name of a written question's page in ``OUT/manual``."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", f"{assignment}-{question}") + ".html"


def _source(cell: Any) -> str:
    source = cell.get("source", "") if isinstance(cell, dict) else ""
    if isinstance(source, list):
        source = "".join(part for part in source if isinstance(part, str))
    return source if isinstance(source, str) else ""


def _cells(nb: Any) -> list[dict]:
    cells = nb.get("cells") if isinstance(nb, dict) else None
    return [c for c in cells if isinstance(c, dict)] if isinstance(cells, list) else []


def _read_cells(path: Path) -> list[dict]:
    try:
        return _cells(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError):
        return []


def _metadata(cell: dict) -> dict:
    metadata = cell.get("metadata")
    return metadata if isinstance(metadata, dict) else {}


def _tags(cell: dict) -> list[str]:
    tags = _metadata(cell).get("tags")
    return [t for t in tags if isinstance(t, str)] if isinstance(tags, list) else []


def _is_begin(cell: dict) -> bool:
    return _source(cell).lstrip().startswith(BEGIN_MARKER)


def _is_end(cell: dict) -> bool:
    return _source(cell).lstrip().startswith(END_MARKER)


def _prompt_text(cell: dict) -> str:
    """A prompt cell's text without otter's marker."""
    return _source(cell).lstrip()[len(BEGIN_MARKER):].strip() if _is_begin(cell) else _source(cell).strip()


def _normal(text: str) -> str:
    return " ".join(text.split())


def regions(cells: list[dict]) -> list[tuple[int, int]]:
    """(prompt cell, end) for every written question of a notebook, in order: the answer is in
    ``cells[prompt + 1:end]``. A region ends at its END marker, at the next BEGIN marker or at the
    end of the notebook, whichever comes first."""
    found = []
    for index, cell in enumerate(cells):
        if not _is_begin(cell):
            continue
        end = index + 1
        while end < len(cells) and not _is_end(cells[end]) and not _is_begin(cells[end]):
            end += 1
        found.append((index, end))
    return found


def _solution(cells: list[dict], region: tuple[int, int]) -> str:
    parts = [_source(c).strip() for c in cells[region[0] + 1:region[1]]
             if "otter_assign_solution_cell" in _tags(c)]
    return "\n\n".join(p for p in parts if p)


def written_questions(assignments: list[Assignment]) -> list[WrittenQuestion]:
    """The written questions, in the order of ``grades.csv``, with their prompts and solutions."""
    questions = []
    for assignment in assignments:
        if not assignment.manual:
            continue
        student = _read_cells(paths.student_notebook(assignment.stem))
        solution = _read_cells(paths.solution_notebook(assignment.stem))
        prompts, solved = regions(student), regions(solution)
        for k, (name, points) in enumerate(assignment.manual):
            questions.append(WrittenQuestion(
                assignment=assignment.stem, name=name, points=points,
                prompt=_prompt_text(student[prompts[k][0]]) if k < len(prompts) else "",
                solution=_solution(solution, solved[k]) if k < len(solved) else "",
            ))
    return questions


# --- the answers -----------------------------------------------------------------------------

ANSWERED, UNANSWERED, NO_NOTEBOOK, NOT_FOUND = "answered", "unanswered", "no notebook", "not found"


@dataclass
class Part:
    """One cell of an answer: markdown, with the images it carries as attachments."""

    markdown: str
    #: attachment name -> data: URL
    images: dict[str, str] = field(default_factory=dict)
    #: attachment name -> why it is not shown (not an image type shown, too large)
    skipped: dict[str, str] = field(default_factory=dict)


@dataclass
class Answer:
    status: str
    parts: list[Part] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass
class StudentAnswers:
    student: str
    #: the entry of SUBMISSIONS it came from (two entries may share a student id)
    entry: str
    #: question column -> answer
    answers: dict[str, Answer] = field(default_factory=dict)


def answers_to_json(collected: list[StudentAnswers]) -> list[dict[str, Any]]:
    """Answers as JSON data: a shard keeps them so that ``merge`` can write the written
    questions' pages without the students' notebooks."""
    return [asdict(student) for student in collected]


def answers_from_json(data: list[dict[str, Any]]) -> list[StudentAnswers]:
    """The inverse of ``answers_to_json``."""
    return [StudentAnswers(
        student=item["student"], entry=item["entry"],
        answers={column: Answer(status=answer["status"],
                                parts=[Part(p["markdown"], dict(p["images"]),
                                            dict(p.get("skipped", {})))
                                       for p in answer["parts"]],
                                notes=list(answer["notes"]))
                 for column, answer in item["answers"].items()})
        for item in data]


def _fence(code: str) -> str:
    ticks = max([3, *(len(run) + 1 for run in re.findall(r"`{3,}", code))])
    return f"{'`' * ticks}python\n{code}\n{'`' * ticks}"


def _images(cell: dict) -> tuple[dict[str, str], dict[str, str]]:
    """The cell's attachments: (name -> data: URL) for those that may be shown, (name -> why
    not) for the others."""
    attachments = cell.get("attachments")
    found, skipped = {}, {}
    for name, bundle in attachments.items() if isinstance(attachments, dict) else []:
        bundle = bundle if isinstance(bundle, dict) else {}
        mime = next((m for m in IMAGE_TYPES if m in bundle), None)
        data = bundle.get(mime) if mime else None
        if isinstance(data, list):
            data = "".join(d for d in data if isinstance(d, str))
        if not isinstance(data, str):
            skipped[str(name)] = "not a png, jpeg or gif image"
        elif len(data) > MAX_ATTACHMENT_BYTES * 3 // 2:  # base64 is 4/3 of it, with line breaks
            skipped[str(name)] = f"larger than {MAX_ATTACHMENT_BYTES >> 20} MB"
        else:
            found[str(name)] = f"data:{mime};base64,{''.join(data.split())}"
    return found, skipped


def _part(cell: dict, text: str | None = None) -> Part | None:
    text = PLACEHOLDER.sub("", _source(cell) if text is None else text).strip()
    if not text:
        return None
    if cell.get("cell_type") == "code":
        return Part(_fence(text))
    return Part(text, *_images(cell))


def _answer(cells: list[dict], region: tuple[int, int], prompt: str, notes: list[str]) -> Answer:
    begin, end = region
    parts = []
    own = _prompt_text(cells[begin])
    if prompt and _normal(own) != _normal(prompt):
        if own.startswith(prompt.strip()):  # the student typed on after the question's text
            parts.append(_part(cells[begin], own[len(prompt.strip()):]))
        else:
            notes.append("the question's text differs from the released notebook's")
    parts.extend(_part(cell) for cell in cells[begin + 1:end])
    parts = [p for p in parts if p is not None]
    size = 0
    for index, part in enumerate(parts):
        if size + len(part.markdown) > MAX_ANSWER_CHARS:
            part.markdown = part.markdown[:max(0, MAX_ANSWER_CHARS - size)]
            del parts[index + 1:]
            notes.append(f"the answer is longer than {MAX_ANSWER_CHARS} characters: cut there")
            break
        size += len(part.markdown)
    return Answer(ANSWERED if parts else UNANSWERED, parts, notes)


def _by_heading(cells: list[dict], prompt: str, taken: set[int]) -> tuple[int, int] | None:
    """A region for a question whose BEGIN marker is gone: the cell holding the prompt's first
    line, up to the next marker or released (locked) cell."""
    heading = next((line.strip() for line in prompt.splitlines() if line.strip()), "")
    if not heading:
        return None
    for index, cell in enumerate(cells):
        if index in taken or heading not in _source(cell):
            continue
        end = index + 1
        while end < len(cells) and not (_is_begin(cells[end]) or _is_end(cells[end])
                                        or _metadata(cells[end]).get("editable") is False):
            end += 1
        return index, end
    return None


def read_answers(cells: list[dict], questions: list[WrittenQuestion]) -> dict[str, Answer]:
    """The answers to ``questions`` (the written questions of one assignment, in order) in the
    cells of a student's notebook."""
    found = regions(cells)
    taken: set[int] = set()
    answers = {}
    for k, question in enumerate(questions):
        prompt = _normal(question.prompt)
        region = next((r for r in found if r[0] not in taken and prompt
                       and _normal(_prompt_text(cells[r[0]])) == prompt), None)
        notes: list[str] = []
        if region is None and len(found) == len(questions) and found[k][0] not in taken:
            region = found[k]
        if region is None and question.prompt:
            region = _by_heading(cells, question.prompt, taken)
            if region is not None:
                notes.append("otter's question markers are missing in this notebook; the answer "
                             "is read from the cells after the question's heading")
        if region is None:
            answers[question.column] = Answer(NOT_FOUND, notes=[
                "this question's cells were not found in the notebook"])
            continue
        taken.add(region[0])
        answers[question.column] = _answer(cells, region, question.prompt, notes)
    return answers


def collect(entries: list[Path], stems: list[str], questions: list[WrittenQuestion],
            ) -> list[StudentAnswers]:
    """Every entry's answers to the written questions, sorted by student id (then entry)."""
    by_assignment: dict[str, list[WrittenQuestion]] = {}
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
                    student.answers.update(read_answers(_read_cells(notebook), asked))
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


# --- rendering -------------------------------------------------------------------------------

def _math(latex: str, display: bool, source: str) -> str:
    """MathML for ``latex``, else its ``source`` (delimiters included) as code."""
    return to_mathml(latex, display) or f'<code class="tex">{escapeHtml(source)}</code>'


def _math_inline(self, tokens, idx, options, env) -> str:
    content = tokens[idx].content
    return _math(content, False, f"${content}$")


def _math_double(self, tokens, idx, options, env) -> str:
    content = tokens[idx].content
    return _math(content, True, f"$${content}$$")


def _math_block(self, tokens, idx, options, env) -> str:
    content = tokens[idx].content
    return f'<div class="math display">{_math(content, True, f"$${content}$$")}</div>\n'


def _amsmath(self, tokens, idx, options, env) -> str:
    content = tokens[idx].content
    return f'<div class="math display">{_math(content, True, content)}</div>\n'


def _image(self, tokens, idx, options, env) -> str:
    """An attachment's ``<img>``: lazily loaded, so a long page decodes only what is in view."""
    token = tokens[idx]
    alt = escapeHtml(token.content)
    return f'<img src="{escapeHtml(str(token.attrs["src"]))}" alt="{alt}" loading="lazy">'


def _markdown() -> MarkdownIt:
    # "js-default": CommonMark plus tables and strikethrough, raw HTML off, no typographer.
    md = MarkdownIt("js-default", {"html": False})
    md.use(dollarmath_plugin, double_inline=True, allow_labels=False).use(amsmath_plugin)
    for rule, render in (("math_inline", _math_inline), ("math_inline_double", _math_double),
                         ("math_block", _math_block), ("amsmath", _amsmath), ("image", _image)):
        md.add_render_rule(rule, render)
    return md


MARKDOWN = _markdown()


@dataclass(frozen=True)
class Shown:
    """How one attachment shows: the file's URL relative to the page, or why it is not shown."""

    src: str = ""
    note: str = ""


def render_markdown(text: str, attachment: Callable[[str], Shown | None] = lambda name: None,
                    used: set[str] | None = None) -> str:
    """Safe HTML for untrusted markdown: raw HTML shows as text, math becomes MathML, an
    ``attachment:`` image shows as ``attachment(name)`` says (its file, or a note), and every
    other image as text. The files shown are added to ``used``."""
    env: dict = {}

    def keep(image: Token) -> bool:
        src = str(image.attrs.get("src", ""))
        if not src.startswith("attachment:"):
            return False
        name = src[len("attachment:"):]
        shown = attachment(name) or attachment(unquote(name))
        if shown is None or not shown.src:
            why = shown.note if shown else "not among the notebook's attachments"
            image.attrs["src"] = f"attachment:{name}, not shown: {why}"
            return False
        image.attrs["src"] = shown.src
        if used is not None:
            used.add(shown.src)
        return True

    tokens = neutralise(MARKDOWN.parse(text, env), keep)
    return MARKDOWN.renderer.render(tokens, MARKDOWN.options, env)


class AttachmentFiles:
    """The attachments of the written answers as files, ``OUT/manual/attachments/<sha256>.<ext>``:
    each image is decoded, checked and written once, however many answers, pages or references
    show it."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        #: data: URL -> how it shows (the same image pasted twice is decoded once)
        self._shown: dict[str, Shown] = {}
        #: the files an answer on a page shows
        self.kept: set[str] = set()

    def show(self, url: str) -> Shown:
        if url not in self._shown:
            self._shown[url] = self._write(url)
        return self._shown[url]

    def _write(self, url: str) -> Shown:
        try:
            data = base64.b64decode(url.partition(",")[2], validate=True)
        except (binascii.Error, ValueError):
            return Shown(note="not readable (bad base64)")
        if len(data) > MAX_ATTACHMENT_BYTES:
            return Shown(note=f"larger than {MAX_ATTACHMENT_BYTES >> 20} MB")
        too_many = Shown(note=f"more than {MAX_ATTACHMENT_PIXELS // 1_000_000} megapixels")
        try:
            with warnings.catch_warnings():  # Pillow's warning about large images: ours is below
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                with Image.open(io.BytesIO(data)) as image:  # reads the header only
                    kind, (width, height) = image.format, image.size
        except Image.DecompressionBombError:
            return too_many
        except Exception:  # Pillow's many errors for a file that is not an image it reads
            kind, width, height = None, 0, 0
        if kind not in IMAGE_FORMATS:
            return Shown(note="not a png, jpeg or gif image")
        if width * height > MAX_ATTACHMENT_PIXELS:
            return Shown(note=f"{width} x {height} pixels, {too_many.note}")
        name = f"{hashlib.sha256(data).hexdigest()}.{IMAGE_FORMATS[kind]}"
        path = self.folder / name
        if not path.is_file() or path.stat().st_size != len(data):
            path.parent.mkdir(parents=True, exist_ok=True)
            partial = path.with_name(f".{name}.partial")
            partial.write_bytes(data)
            os.replace(partial, path)
        return Shown(src=f"{ATTACHMENTS_FOLDER}/{name}")

    def remove_unused(self) -> None:
        """Remove the files no page shows (left by an earlier run, or only in answers too
        large to show)."""
        if not self.folder.is_dir():
            return
        for path in self.folder.iterdir():
            if f"{ATTACHMENTS_FOLDER}/{path.name}" not in self.kept and path.is_file():
                path.unlink()
        if not any(self.folder.iterdir()):
            self.folder.rmdir()


def _lookup(part: Part, files: AttachmentFiles) -> Callable[[str], Shown | None]:
    """How the attachments of one cell show, decoded only when referenced."""
    def attachment(name: str) -> Shown | None:
        if name in part.skipped:
            return Shown(note=part.skipped[name])
        url = part.images.get(name)
        return files.show(url) if url is not None else None
    return attachment


def render_answer(answer: Answer, files: AttachmentFiles) -> tuple[list[str], int]:
    """An answer's HTML, one piece per cell, and its size in bytes; an answer over
    ``MAX_ANSWER_HTML_BYTES`` gives no HTML (and keeps no file), only its size."""
    used: set[str] = set()
    html = [render_markdown(part.markdown, _lookup(part, files), used) for part in answer.parts]
    size = sum(len(piece.encode("utf-8")) for piece in html)
    if size > MAX_ANSWER_HTML_BYTES:
        return [], size
    files.kept.update(used)
    return html, size


# --- scores ----------------------------------------------------------------------------------

@dataclass
class ScoreSheet:
    path: Path
    exists: bool = False
    #: student -> question column -> points
    points: dict[str, dict[str, float]] = field(default_factory=dict)
    #: student -> question column -> the TA's comment (from the optional ``comment`` column)
    comments: dict[str, dict[str, str]] = field(default_factory=dict)
    #: one line each, naming the row
    problems: list[str] = field(default_factory=list)
    #: empty rows ``prepare_scores_file`` appended for students the file lacked
    added: int = 0

    @property
    def recorded(self) -> int:
        return sum(len(columns) for columns in self.points.values())


def _open_rows(text: str) -> tuple[list[tuple[int, dict[str, str]]] | None, str]:
    """(line number, row) for each row of a scores file, trying "," then ";" and tabs
    (spreadsheets in some locales save with them), or None and why."""
    first = text.splitlines()[0] if text.strip() else ""
    for delimiter in (",", ";", "\t"):
        header = [name.strip().lower() for name in next(csv.reader([first], delimiter=delimiter), [])]
        if all(name in header for name in SCORE_FIELDS):
            reader = csv.reader(io.StringIO(text), delimiter=delimiter)
            next(reader)
            # Cells as the kit wrote them (``write_csv`` escapes what a spreadsheet would run).
            return [(reader.line_num, dict(zip(header, map(from_spreadsheet, row))))
                    for row in reader], ""
    return None, (f"its first line must name the columns {','.join(SCORE_FIELDS)} "
                  f"(it reads {first[:200]!r}); nothing merged")


def _student(name: str, known: set[str], stripped: dict[str, list[str]]) -> str | None:
    """The student a row names: exactly, else ignoring spaces around the id when that is unique."""
    if name in known:
        return name
    matches = stripped.get(name.strip(), [])
    return matches[0] if len(matches) == 1 else None


def read_scores(path: Path, students: list[str], questions: list[WrittenQuestion]) -> ScoreSheet:
    """Read the TAs' scores, keeping every good row and saying why each bad one is skipped."""
    sheet = ScoreSheet(path)
    if not path.exists():
        return sheet
    sheet.exists = True
    if not path.is_file():
        sheet.problems.append(f"{path}: not a file; nothing merged")
        return sheet
    try:
        data = path.read_bytes()
    except OSError as error:
        sheet.problems.append(f"{path}: cannot be read ({error}); nothing merged")
        return sheet
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:  # a spreadsheet's "CSV" in a Windows code page
        text = data.decode("cp1252", errors="replace")
    rows, why = _open_rows(text)
    if rows is None:
        sheet.problems.append(f"{path}: {why}")
        return sheet
    known = set(students)
    stripped: dict[str, list[str]] = {}
    for student in students:
        stripped.setdefault(student.strip(), []).append(student)
    by_column = {q.column: q for q in questions}
    seen: dict[tuple[str, str], tuple[int, float]] = {}
    for line, row in rows:
        values = {k: (row.get(k) or "") for k in SCORE_FIELDS}
        if not any(v.strip() for v in row.values()):
            continue
        student = _student(values["student"], known, stripped)
        assignment, name = values["assignment"].strip(), values["question"].strip()
        if not assignment and "/" in name:
            assignment, name = name.split("/", 1)
        column = f"{assignment}/{name}"
        text_points = values["points"].strip()
        where = f"line {line}"
        if student is None:
            sheet.problems.append(f"{where}: unknown student {values['student']!r}; skipped")
            continue
        question = by_column.get(column)
        if question is None:
            sheet.problems.append(
                f"{where}: unknown written question {column!r} (for {student!r}); skipped")
            continue
        comment = (row.get(COMMENT_FIELD) or "").strip()[:MAX_COMMENT_CHARS]
        if not text_points:
            if comment:  # a comment may come before the points
                sheet.comments.setdefault(student, {}).setdefault(column, comment)
            continue  # not graded yet
        try:  # "1,5": a decimal comma, as spreadsheets write it in many locales
            points = float(text_points.replace(",", ".") if re.fullmatch(r"\d*,\d+", text_points)
                           else text_points)
        except ValueError:
            points = math.nan
        label = f"{student!r}, {column}"
        if not math.isfinite(points):
            sheet.problems.append(f"{where}: points {text_points!r} for {label} are not a number; skipped")
            continue
        if points < 0:
            sheet.problems.append(f"{where}: points {text_points} for {label} are negative; skipped")
            continue
        if points > question.points + TOLERANCE:
            sheet.problems.append(f"{where}: points {text_points} for {label} exceed the question's "
                                  f"{question.points:g}; skipped")
            continue
        earlier = seen.get((student, column))
        if earlier is not None:
            if abs(earlier[1] - points) > TOLERANCE:
                sheet.problems.append(f"{where}: a second score for {label} ({text_points}; line "
                                      f"{earlier[0]} gives {earlier[1]:g}, which is kept); skipped")
            continue
        seen[(student, column)] = (line, points)
        sheet.points.setdefault(student, {})[column] = points
        if comment:
            sheet.comments.setdefault(student, {})[column] = comment
    return sheet


def write_template(path: Path, students: list[str], questions: list[WrittenQuestion]) -> None:
    """One row per student per written question, points and comment empty; by question, then
    student. The comment column is there so that a TA editing the file by hand finds it."""
    write_csv(path, SCORE_FIELDS + [COMMENT_FIELD], (
        [student, question.assignment, question.name, "", ""]
        for question in questions for student in sorted(set(students))))


def add_missing_rows(path: Path, students: list[str], questions: list[WrittenQuestion]) -> int:
    """Append an empty row for each student and written question the scores file lacks (students
    added to SUBMISSIONS after the template was written); returns how many were added.

    The file is only appended to, in its own delimiter and columns, so every score and comment
    already entered stays byte for byte. A file whose header cannot be read is left alone (the
    problem is reported by ``read_scores``)."""
    try:
        data = path.read_bytes()
    except OSError:
        return 0
    encoding = "utf-8-sig" if data.startswith(b"\xef\xbb\xbf") else "utf-8"
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError:
        encoding, text = "cp1252", data.decode("cp1252", errors="replace")
    rows, _ = _open_rows(text)
    if rows is None:
        return 0
    present = set()
    for _, row in rows:
        values = {k: (row.get(k) or "").strip() for k in SCORE_FIELDS}
        assignment, name = values["assignment"], values["question"]
        if not assignment and "/" in name:
            assignment, name = name.split("/", 1)
        present.add((values["student"], f"{assignment}/{name}"))
    missing = [(student, question) for question in questions for student in sorted(set(students))
               if (student.strip(), question.column) not in present]
    if not missing:
        return 0
    first = text.splitlines()[0]
    delimiter = next(d for d in (",", ";", "\t") if all(
        n in [h.strip().lower() for h in next(csv.reader([first], delimiter=d), [])]
        for n in SCORE_FIELDS))
    header = [h.strip().lower() for h in next(csv.reader([first], delimiter=delimiter))]
    newline = "\r\n" if "\r\n" in text else "\n"
    lines = []
    for student, question in missing:
        values = {"student": student, "assignment": question.assignment,
                  "question": question.name}
        lines.append(csv_line([values.get(name, "") for name in header], delimiter, newline))
    addition = ("" if not text or text.endswith(("\n", "\r")) else newline) + "".join(lines)
    with open(path, "ab") as handle:
        handle.write(addition.encode("cp1252" if encoding == "cp1252" else "utf-8", "replace"))
    return len(missing)


def prepare_scores_file(path: Path, students: list[str], questions: list[WrittenQuestion],
                        sheet: ScoreSheet) -> int:
    """The scores file the TAs fill in: written as a template when absent, else given rows for
    students it lacks. Returns the rows added to an existing file, also kept in ``sheet.added``
    for the command's summary."""
    if not questions:
        return 0
    if not sheet.exists:
        write_template(path, students, questions)
        return 0
    added = add_missing_rows(path, students, questions) if path.is_file() else 0
    sheet.added += added
    return added


def write_problems(out: Path, sheet: ScoreSheet) -> Path | None:
    """``OUT/manual_problems.txt`` listing the skipped rows, or no file when there are none."""
    path = out / PROBLEMS_FILE
    if not sheet.problems:
        path.unlink(missing_ok=True)
        return None
    write_atomically(path, f"Problems in {sheet.path} (these rows were skipped; the others were "
                           f"merged into grades.csv):\n" + "".join(f"{p}\n" for p in sheet.problems))
    return path


# --- the pages -------------------------------------------------------------------------------

#: The scoring form: what the TA types is kept in the browser's localStorage (one entry per class,
#: shared by the question pages, so any page's download holds every question), starting from the
#: scores and comments recorded in the scores file. A kept entry remembers the recorded value it
#: started from; once the file says something else (it was merged, or edited by hand), the file
#: wins. "Download scores" writes the whole scores file: every written question, every student.
SCORING_SCRIPT = r"""
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("labkit-scores").textContent);
  var status = document.getElementById("saved");
  function recorded(column, student) {
    var byStudent = data.recorded[column] || {};
    return byStudent[student] || {points: "", comment: ""};
  }
  function load() {
    try { return JSON.parse(window.localStorage.getItem(data.key) || "{}") || {}; }
    catch (error) { return {}; }
  }
  function save(state) {
    try { window.localStorage.setItem(data.key, JSON.stringify(state)); return true; }
    catch (error) { status.textContent = "Cannot keep your entries in this browser: download them before closing the page."; return false; }
  }
  var state = load();
  Object.keys(state).forEach(function (key) {
    var entry = state[key], file = recorded(entry.column, entry.student);
    if (!entry.base || file.points !== entry.base.points || file.comment !== entry.base.comment) {
      delete state[key];
    }
  });
  save(state);
  function current(column, student) {
    var entry = state[column + "\n" + student];
    return entry ? entry : recorded(column, student);
  }
  function valid(text) {
    if (text === "") { return true; }
    var value = Number(text.replace(",", "."));  // "1,5": a decimal comma, as make grade reads it
    return /^\s*[0-9]*[.,]?[0-9]+\s*$/.test(text) && value >= 0 && value <= data.points + 1e-9;
  }
  var sections = document.querySelectorAll("section.answer");
  Array.prototype.forEach.call(sections, function (section) {
    var student = section.getAttribute("data-student");
    var points = section.querySelector("input.points");
    var comment = section.querySelector("textarea.comment");
    var entry = current(data.column, student);
    points.value = entry.points;
    comment.value = entry.comment;
    function check() { points.classList.toggle("invalid", !valid(points.value.trim())); }
    function changed() {
      check();
      state[data.column + "\n" + student] = {
        column: data.column, student: student, points: points.value.trim(),
        comment: comment.value.trim(), base: recorded(data.column, student)};
      if (save(state)) { status.textContent = "Kept in this browser; download when done."; }
    }
    points.addEventListener("input", changed);
    comment.addEventListener("input", changed);
    check();
  });
  function cell(value) {
    value = String(value);
    // Spreadsheet-safe, as gradebook.spreadsheet_safe: text that starts like a formula (or with
    // an apostrophe) gets a leading apostrophe; numbers stay numbers.
    if (/^[=+\-@\t\r']/.test(value) && !/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(value)) {
      value = "'" + value;
    }
    return /[",;\t\r\n]|^\s|\s$/.test(value) ? '"' + value.replace(/"/g, '""') + '"' : value;
  }
  document.getElementById("download").addEventListener("click", function () {
    var lines = [["student", "assignment", "question", "points", "comment"]];
    data.questions.forEach(function (question) {
      data.students.forEach(function (student) {
        var entry = current(question.column, student);
        lines.push([student, question.assignment, question.name, entry.points, entry.comment]);
      });
    });
    var text = lines.map(function (row) { return row.map(cell).join(","); }).join("\n") + "\n";
    var link = document.createElement("a");
    link.href = URL.createObjectURL(new Blob([text], {type: "text/csv"}));
    link.download = data.file;
    document.body.appendChild(link);
    link.click();
    link.remove();
    status.textContent = "Downloaded " + data.file + ": put it at " + data.path + " and run make grade.";
  });
}());
"""


STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif;
       max-width: 60rem; margin: 2rem auto; padding: 0 1rem; color: #1d2433; line-height: 1.45; }
.prompt, details.solution { background: #eef3fb; border-left: 4px solid #3c6fb4;
       padding: .3rem 1rem; margin: 1rem 0; }
details.solution { background: #eef8f0; border-color: #1e7b3a; }
.howto { font-size: .92rem; color: #44506a; }
section.answer { border-top: 1px solid #ccd; padding: .6rem 0 1rem; page-break-inside: avoid; }
section.answer h2 { font-size: 1.1rem; margin: .2rem 0 .5rem; display: flex; gap: 1rem;
       align-items: baseline; flex-wrap: wrap; }
.id { font-family: ui-monospace, monospace; word-break: break-all; }
.score { margin-left: auto; font-weight: normal; white-space: nowrap; }
.score input { width: 4rem; font-size: 1rem; padding: .1rem .3rem; border: 2px solid #1d2433; }
.score input.invalid { border-color: #a93226; background: #fbe3e1; }
textarea.comment { width: 100%; min-height: 2.6rem; font: inherit; font-size: .95rem;
       box-sizing: border-box; margin-top: .4rem; }
.toolbar { position: sticky; top: 0; background: #fff; padding: .5rem 0; z-index: 1;
       border-bottom: 1px solid #ccd; display: flex; gap: 1rem; align-items: center; }
.toolbar button { font-size: 1rem; padding: .3rem .8rem; }
#saved { font-size: .9rem; color: #44506a; }
.recorded { font-size: .85rem; color: #1e7b3a; font-weight: normal; }
.status { font-style: italic; color: #a93226; }
.note { font-size: .9rem; color: #8a5a00; }
.body { overflow-x: auto; word-break: break-word; }
.body img { max-width: 100%; }
.body pre { background: #f7f7f9; padding: .4rem .6rem; border-radius: 4px; white-space: pre-wrap; }
table { border-collapse: collapse; margin: .5rem 0; }
th, td { border: 1px solid #ccd; padding: .3rem .5rem; text-align: left; vertical-align: top; }
th { background: #f1f3f8; } td.num { text-align: right; }
code.tex { white-space: pre-wrap; }
math[display="block"] { margin: .4rem 0; }
""" + ALIGN_STYLE + "\n"

#: A question's page: its style sheet, the scoring form's script, and the attachments' files.
CSP = content_security_policy(styles=[STYLE], scripts=[SCORING_SCRIPT], images=[SAME_FOLDER])
#: The index: its style sheet only.
INDEX_CSP = content_security_policy(styles=[STYLE])

_HEAD = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
{{ csp | policy }}
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ title }}</title>
<style>{{ style | safe }}</style>
"""

QUESTION_PAGE = ENVIRONMENT.from_string(_HEAD + """</head>
<body>
<p><a href="index.html">All written questions</a></p>
<h1>{{ q.assignment }} &mdash; {{ q.name }} <small>({{ q.points | pts }} point{{ "s" if q.points != 1 }})</small></h1>
{% if prompt %}<div class="prompt">{{ prompt | safe }}</div>{% endif %}
{% if solution %}
<details class="solution"><summary>Reference solution</summary>{{ solution | safe }}</details>
{% endif %}
<p class="howto">{{ students | length }} submissions, in order of student id; {{ answered }} answered.
Type each student's points (0 to {{ q.points | pts }}) and, if you like, a comment for the student:
this browser keeps them while you work, on every written question's page. When done, click
<em>Download scores</em>: it writes one file with every written question's scores and comments;
put it at <code>{{ scores_file }}</code> (replacing the old one) and run <code>make grade</code> again
to merge them into <code>grades.csv</code> and the feedback pages. (The file can also be edited by
hand: columns <code>student,assignment,question,points,comment</code>.) Chrome, Edge and Chromium
share what you type across these pages; if a download lacks another page's entries (a browser that
keeps each file apart), download and run <code>make grade</code> after each question.
Math is shown as MathML, converted when the page was written; what could not be converted shows
as LaTeX source.</p>
<div class="toolbar"><button type="button" id="download">Download scores</button>
<span id="saved" role="status"></span></div>
{% for s in students %}
<section class="answer" id="{{ s.anchor }}" data-student="{{ s.student }}">
<h2><span class="id">{{ s.student }}</span>{% if s.entry_shown %} <small>({{ s.entry }})</small>{% endif %}
<label class="score">Points: <input class="points" type="text" inputmode="decimal" aria-label="points for {{ s.student }}"> / {{ q.points | pts }}
{% if s.recorded is not none %}<span class="recorded">recorded: {{ s.recorded | pts }}</span>{% endif %}</label></h2>
<textarea class="comment" aria-label="comment for {{ s.student }}" placeholder="Comment for the student (optional; shown on their feedback page)"></textarea>
{% for note in s.answer.notes %}<p class="note">{{ note }}</p>{% endfor %}
{% if s.answer.status == "answered" and s.too_large %}
<p class="status">This answer is too large to show here ({{ s.too_large }}): open the student's
notebook ({{ s.entry }}) to read it.</p>
{% elif s.answer.status == "answered" %}
<div class="body">{% for html in s.html %}{{ html | safe }}{% endfor %}</div>
{% elif s.answer.status == "no notebook" %}
<p class="status">Unanswered: no notebook for {{ q.assignment }} was submitted.</p>
{% elif s.answer.status == "not found" %}
<p class="status">Unanswered: the question is not in the submitted notebook.</p>
{% else %}
<p class="status">Unanswered.</p>
{% endif %}
</section>
{% endfor %}
<script type="application/json" id="labkit-scores">{{ data | safe }}</script>
<script>{{ scoring_script | safe }}</script>
</body>
</html>
""")

INDEX_PAGE = ENVIRONMENT.from_string(_HEAD + """</head>
<body>
<h1>Written questions</h1>
<p>One page per question with every student's answer, and a box for the points and one for a
comment per student. Score in the browser, then <em>Download scores</em> (on any page) and put
the file at <code>{{ scores_file }}</code>; <code>make grade</code> merges it into
<code>grades.csv</code> and the feedback pages.</p>
<table>
<thead><tr><th>Assignment</th><th>Question</th><th>Points</th><th>Answered</th><th>Scores recorded</th></tr></thead>
<tbody>
{% for row in rows %}
<tr><td>{{ row.q.assignment }}</td><td><a href="{{ row.q.page }}">{{ row.q.name }}</a></td>
<td class="num">{{ row.q.points | pts }}</td><td class="num">{{ row.answered }} of {{ row.students }}</td>
<td class="num">{{ row.recorded }} of {{ row.students }}</td></tr>
{% endfor %}
</tbody>
</table>
</body>
</html>
""")


@dataclass
class _AnswerView:
    student: str
    entry: str
    entry_shown: bool
    anchor: str
    answer: Answer
    html: list[str]
    recorded: float | None
    #: for an answer over the budget, its size and the budget, in words
    too_large: str = ""


def _json_for_html(value: Any) -> str:
    """JSON that cannot end the ``<script>`` element it sits in, whatever the student ids hold."""
    return (json.dumps(value, sort_keys=True, ensure_ascii=False)
            .replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026"))


def _form_data(out: Path, questions: list[WrittenQuestion], students: list[str],
               scores: dict[str, dict[str, float]], comments: dict[str, dict[str, str]],
               scores_file: str) -> dict[str, Any]:
    """What every question page's form needs: the class, and what the scores file holds.

    The browser keeps the entries under a key named after OUT, not after the class: a student
    added later, or a question added, must not hide what the TA typed before (entries are per
    student and question)."""
    key = hashlib.sha256(str(out.resolve()).encode()).hexdigest()[:16]
    recorded = {q.column: {s: {"points": f"{scores[s][q.column]:g}"
                               if q.column in scores.get(s, {}) else "",
                               "comment": comments.get(s, {}).get(q.column, "")}
                           for s in students} for q in questions}
    return {"key": f"labkit-scores-{key}", "students": students, "recorded": recorded,
            "questions": [{"column": q.column, "assignment": q.assignment, "name": q.name}
                          for q in questions],
            "file": Path(scores_file).name,
            # Where to put the download, as a path that works from where make grade ran.
            "path": scores_file if Path(scores_file).is_absolute() else str(out / scores_file)}


def write_pages(out: Path, questions: list[WrittenQuestion], answers: list[StudentAnswers],
                scores: dict[str, dict[str, float]] | None = None,
                scores_file: str = DEFAULT_SCORES_FILE) -> list[Path]:
    """Write ``OUT/manual/<assignment>-<question>.html`` per written question and an index, and
    the answers' attachments under ``OUT/manual/attachments``; pages of questions that no longer
    exist, and files no page shows, are removed. Returns the question pages. The forms start
    from ``scores`` and the comments recorded in OUT (``gradebook.read_comments``)."""
    folder = out / "manual"
    scores = scores or {}
    form = _form_data(out, questions, sorted({s.student for s in answers}), scores,
                      read_comments(out), scores_file)
    files = AttachmentFiles(folder / ATTACHMENTS_FOLDER)
    if folder.is_dir():
        for old in folder.glob("*.html"):
            old.unlink()
    if not questions:
        files.remove_unused()
        return []
    answers = sorted(answers, key=lambda s: (s.student, s.entry))
    counts = Counter(s.student for s in answers)
    shared = {student for student, count in counts.items() if count > 1}
    anchors = [name[:-len(".html")] for name in page_names([s.student for s in answers])]
    written, rows = [], []
    for question in questions:
        views = []
        for student, anchor in zip(answers, anchors):
            answer = student.answers.get(question.column, Answer(NO_NOTEBOOK))
            html, size = render_answer(answer, files)
            views.append(_AnswerView(
                student=student.student, entry=student.entry, entry_shown=student.student in shared,
                anchor=f"s-{anchor}", answer=answer, html=html,
                recorded=scores.get(student.student, {}).get(question.column),
                too_large="" if size <= MAX_ANSWER_HTML_BYTES else
                f"{size / 1e6:.1f} MB as a page, over the {MAX_ANSWER_HTML_BYTES >> 20} MB limit"))
        answered = sum(1 for v in views if v.answer.status == ANSWERED)
        page = folder / question.page
        write_atomically(page, QUESTION_PAGE.render(
            title=f"{question.column} (written)", csp=CSP, style=STYLE, q=question,
            prompt=render_markdown(question.prompt) if question.prompt else "",
            solution=render_markdown(question.solution) if question.solution else "",
            students=views, answered=answered, scores_file=scores_file,
            data=_json_for_html({**form, "column": question.column, "points": question.points}),
            scoring_script=SCORING_SCRIPT))
        written.append(page)
        rows.append({"q": question, "students": len(views), "answered": answered,
                     "recorded": sum(1 for v in views if v.recorded is not None)})
    write_atomically(folder / "index.html", INDEX_PAGE.render(
        title="Written questions", csp=INDEX_CSP, style=STYLE, rows=rows, scores_file=scores_file))
    files.remove_unused()
    return written
