"""Written (manual) questions' texts as the release holds them, and a student's answers to them.

``make release`` reads each written question's prompt (student notebook) and solution
(solutions notebook) into the autograder's manifest (``course.autograders``); grading reads them
from there.

Answers are read from the student's notebook between otter's ``<!-- BEGIN QUESTION -->`` and
``<!-- END QUESTION -->`` cells: the k-th written question of a master is the k-th such region of
the released student notebook. A student's region is found by the text of its prompt cell (so
cells a student added or deleted elsewhere do not matter), else by position, else by the prompt's
heading; every cell in it except the prompt makes up the answer, less otter's placeholder text.
An answer's attachments are kept only when they are images of a known format within
``MAX_ATTACHMENT_BYTES`` and ``MAX_ATTACHMENT_PIXELS``.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .questions import Question

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

# --- the questions ---------------------------------------------------------------------------

def _source(cell: Any) -> str:
    source = cell.get("source", "") if isinstance(cell, dict) else ""
    if isinstance(source, list):
        source = "".join(part for part in source if isinstance(part, str))
    return source if isinstance(source, str) else ""


def _cells(nb: Any) -> list[dict]:
    cells = nb.get("cells") if isinstance(nb, dict) else None
    return [c for c in cells if isinstance(c, dict)] if isinstance(cells, list) else []


def read_cells(path: Path) -> list[dict]:
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


def prompts(cells: list[dict]) -> list[str]:
    """The text of each written question of a released notebook, in order (for the manifest)."""
    return [_prompt_text(cells[begin]) for begin, _ in regions(cells)]


def solutions(cells: list[dict]) -> list[str]:
    """The reference solution of each written question of the solutions notebook, in order."""
    return [_solution(cells, region) for region in regions(cells)]


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


def read_answers(cells: list[dict], questions: list[Question]) -> dict[str, Answer]:
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

