"""Reading, executing and normalising notebooks: one place for what every command does to them."""

from __future__ import annotations

import ast
import json
import re
import warnings
from collections import Counter
from pathlib import Path
from typing import Any

import nbformat
from nbclient import NotebookClient

#: The kernel every notebook is run with, whatever kernel a student's copy was saved from.
KERNEL_NAME = "python3"
#: nbclient skips cells carrying this tag.
SKIP_TAG = "skip-execution"
#: The method otter's export cell calls (``grader.export(pdf=False, run_tests=True)``).
EXPORT_METHOD = "export"


#: Longest excerpt of a heading or of a cell's first line in a cell's name (student text).
CELL_EXCERPT_CHARS = 60
_HEADING = re.compile(r"^ {0,3}#{1,6}[ \t]+(.+?)[ \t#]*$")
#: What is read of a line for a cell's name (student text of any length).
_LINE_CHARS = 4 * CELL_EXCERPT_CHARS
#: Longer cells are searched for a name's assignment by their text, not parsed.
_PARSED_CHARS = 100_000
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")


def _lenient_cells(notebook_bytes: bytes) -> list[tuple[str, str]]:
    """(cell type, source) of every cell, in order, read leniently."""
    nb = json.loads(notebook_bytes.decode("utf-8", errors="replace"))
    cells = []
    for cell in nb.get("cells", []) if isinstance(nb, dict) else []:
        if not isinstance(cell, dict):
            continue
        source = cell.get("source", "")
        text = "".join(map(str, source)) if isinstance(source, list) else str(source)
        cells.append((str(cell.get("cell_type")), text))
    return cells


def code_cell_sources(notebook_bytes: bytes) -> list[str]:
    """The source of each code cell, in order, read leniently (what the grader runs, and how it
    numbers cells in its notes: code cell N is this list's N-1th)."""
    return [source for kind, source in _lenient_cells(notebook_bytes) if kind == "code"]


def _excerpt(text: str) -> str:
    """Student text made safe for a one-line note: no control characters, no "; " (which
    separates notes in grades.csv), no double quotes (which delimit it), at most
    ``CELL_EXCERPT_CHARS`` characters."""
    text = " ".join(_CONTROL.sub(" ", text).split()).replace(";", ",").replace('"', "'")
    return text if len(text) <= CELL_EXCERPT_CHARS else text[: CELL_EXCERPT_CHARS - 3] + "..."


def _heading(markdown: str) -> str:
    """The last markdown heading of a cell ("## 4.2 Fit" gives "4.2 Fit"), or "". Each line is
    cut before matching, so that a huge line costs no more than a short one."""
    found = [m.group(1) for line in markdown.splitlines()
             if (m := _HEADING.match(line[:_LINE_CHARS]))]
    return _excerpt(found[-1]) if found else ""


def code_cell_names(notebook_bytes: bytes) -> list[str]:
    """How a student finds each code cell in Jupyter, which does not show cell numbers: the
    heading above it and its first line ('the cell under "4.2 Fit" that starts "theta = ..."'),
    with the number ("code cell 18") only where these are missing or name two cells alike."""
    names, heading = [], ""
    for kind, source in _lenient_cells(notebook_bytes):
        if kind == "markdown":
            heading = _heading(source) or heading
            continue
        if kind != "code":
            continue
        line = _excerpt(next((line for line in source.splitlines() if line.strip()), "")
                        [:_LINE_CHARS])
        under = f' under "{heading}"' if heading else ""
        names.append(f'the cell{under} that starts "{line}"' if line else
                     f"the empty cell{under}" if under else "")
    counts = Counter(names)
    return [name if name and counts[name] == 1 else
            f"{name} (code cell {index + 1})" if name else f"code cell {index + 1}"
            for index, name in enumerate(names)]


def read(path: Path) -> nbformat.NotebookNode:
    """Read a notebook. One saved by another front end may lack what nbformat now asks for (cell
    ids): nbformat reads it all the same and warns its own developers; that warning, about a
    student's file, is not the TA's to see, so it is not printed."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", module=r"nbformat(\.|$)")
        return nbformat.read(str(path), as_version=4)


def write(nb: nbformat.NotebookNode, path: Path) -> None:
    """Write a notebook with a stable layout (sorted keys, one trailing newline)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(nb, indent=1, sort_keys=True, ensure_ascii=False) + "\n"
    path.write_text(text, encoding="utf-8")


def normalise_kernelspec(nb: nbformat.NotebookNode) -> None:
    """Point the notebook at the standard Python kernel, so that a copy saved from a conda or
    differently named kernel still runs."""
    nb.metadata["kernelspec"] = {
        "display_name": "Python 3 (ipykernel)",
        "language": "python",
        "name": KERNEL_NAME,
    }


def strip_volatile_metadata(nb: nbformat.NotebookNode) -> None:
    """Drop what changes from one run to the next (timings, widget state, how printed text was
    split into chunks by the kernel's flushes), keeping the outputs themselves."""
    nb.metadata.pop("widgets", None)
    nb.metadata.get("language_info", {}).pop("version", None)
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
        cell.metadata.pop("ExecuteTime", None)
        if cell.cell_type == "code":
            cell.outputs = _coalesce_streams(cell.outputs)


def _coalesce_streams(outputs: list) -> list:
    merged: list = []
    for output in outputs:
        previous = merged[-1] if merged else None
        if (output.output_type == "stream" and previous is not None
                and previous.output_type == "stream" and previous.name == output.name):
            previous.text += output.text
        else:
            merged.append(output)
    return merged


def is_export_source(source: str) -> bool:
    """Whether a code cell's source is otter's export cell, which writes the submission zip and
    is never run while releasing, benchmarking or grading.

    Decided on the parsed cell, not its text, so that a student's cell that merely mentions the
    call (in a string, a comment, or next to other work) is run like any other. It is the export
    cell when its top level holds exactly one call ``<name>.export(...)`` as a statement of its
    own (any name: otter's client is usually ``grader``, any arguments) and nothing else but
    comments, blank lines, bare string literals (docstrings) and ``pass``. A cell that does not
    parse as Python (IPython magics, a syntax error) is not the export cell."""
    try:
        body = ast.parse(source).body
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return False
    calls = [statement for statement in body if _is_export_call(statement)]
    rest = [statement for statement in body if statement not in calls]
    return len(calls) == 1 and all(_is_nothing(statement) for statement in rest)


def _is_export_call(statement: ast.stmt) -> bool:
    if not isinstance(statement, ast.Expr) or not isinstance(statement.value, ast.Call):
        return False
    function = statement.value.func
    return (isinstance(function, ast.Attribute) and function.attr == EXPORT_METHOD
            and isinstance(function.value, ast.Name))


def _is_nothing(statement: ast.stmt) -> bool:
    """A statement without effect: ``pass`` or a bare string (a docstring-like note)."""
    return isinstance(statement, ast.Pass) or (
        isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Constant)
        and isinstance(statement.value.value, str))


def is_export_cell(cell: nbformat.NotebookNode) -> bool:
    """Whether a notebook cell is otter's export cell (see ``is_export_source``)."""
    return cell.cell_type == "code" and is_export_source(cell.source)


def number_cells(nb: nbformat.NotebookNode) -> None:
    """Give cells ids by position: otter draws fresh random ids for the cells it adds."""
    for index, cell in enumerate(nb.cells):
        cell["id"] = f"cell-{index:03d}"


def execute(
    nb: nbformat.NotebookNode,
    cwd: Path,
    *,
    timeout: int = 600,
    skip: Any = None,
) -> nbformat.NotebookNode:
    """Run every cell in a fresh kernel started in ``cwd``; cells for which ``skip(cell)`` is true
    are left unexecuted. Raises ``nbclient.exceptions.CellExecutionError`` on the first error."""
    skipped = []
    if skip is not None:
        for cell in nb.cells:
            if cell.cell_type == "code" and skip(cell):
                tags = cell.metadata.setdefault("tags", [])
                if SKIP_TAG not in tags:
                    tags.append(SKIP_TAG)
                    skipped.append(cell)
    normalise_kernelspec(nb)
    client = NotebookClient(
        nb,
        timeout=timeout,
        kernel_name=KERNEL_NAME,
        resources={"metadata": {"path": str(cwd)}},
        record_timing=False,
    )
    client.execute()
    for cell in skipped:
        cell.metadata["tags"].remove(SKIP_TAG)
        if not cell.metadata["tags"]:
            del cell.metadata["tags"]
    strip_volatile_metadata(nb)
    return nb



def binds(source: str, name: str) -> bool:
    """Whether a code cell's source assigns, defines or imports ``name`` at any level (read
    as Python; a cell that is not, such as one with IPython magics, by its text)."""
    try:
        if len(source) > _PARSED_CHARS:
            raise ValueError("too long to parse")
        tree = ast.parse(source)
    except Exception:  # not Python (magics), too long, too deeply nested
        pattern = rf"(^|\n)[ \t]*(def|class)[ \t]+{re.escape(name)}\b|\b{re.escape(name)}[ \t]*=(?!=)"
        return re.search(pattern, source) is not None
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store) and node.id == name:
            return True
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) \
                and node.name == name:
            return True
        if isinstance(node, (ast.Import, ast.ImportFrom)) and any(
                (alias.asname or alias.name.split(".")[0]) == name for alias in node.names):
            return True
    return False


#: The method of otter's client that runs a question's checks (``grader.check("q")``), and the
#: one that runs every question's (``grader.check_all()``).
CHECK_METHOD, CHECK_ALL_METHOD = "check", "check_all"
_CHECK_TEXT = re.compile(r"""\b\w+[ \t]*\.[ \t]*check[ \t]*\([ \t]*(["'])([^"'\\\n]+)\1""")
_CHECK_ALL_TEXT = re.compile(r"\b\w+[ \t]*\.[ \t]*check_all[ \t]*\(")


def checked_questions(source: str) -> tuple[list[str], bool]:
    """The questions a code cell checks with otter's client: each
    ``<name>.check("q")`` with the question's name written out, and whether it calls
    ``<name>.check_all()``. Otter's autograder runs a question's tests where such a call runs,
    so this is where the grader judges it (``labkit.grading.checkpoints``). Read as Python; a
    cell that is not (IPython magics) or is too long to parse, by its text."""
    try:
        if len(source) > _PARSED_CHARS:
            raise ValueError("too long to parse")
        tree = ast.parse(source)
    except Exception:  # not Python (magics), too long, too deeply nested
        return ([match.group(2) for match in _CHECK_TEXT.finditer(source)],
                _CHECK_ALL_TEXT.search(source) is not None)
    questions, every = [], False
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute) \
                or not isinstance(node.func.value, ast.Name):
            continue
        if node.func.attr == CHECK_ALL_METHOD:
            every = True
        elif node.func.attr == CHECK_METHOD and node.args \
                and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
            questions.append(node.args[0].value)
    return questions, every
