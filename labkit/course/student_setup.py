"""The setup cell of a student notebook, and its closing "Submitting" text: what a notebook needs
to run in Jupyter, JupyterHub, VS Code and Colab, under its own name or another.

otter's own first cell imports otter and calls ``otter.Notebook("<stem>.ipynb")``, which reads the
public checks from that file's metadata. That fails wherever the file is not in the kernel's
working folder under that name: on Colab (*File → Upload notebook* keeps the notebook in Drive,
not in ``/content``), and for a second download saved as ``<stem> (1).ipynb``. What the released
cell runs instead is ``student_kernel`` (its docstring says what it does and why); on Colab the
notebook is all there is, so that code travels inside the cell, compressed with the notebook's
public checks, and the cell a student sees is six lines: under the notebook's title, its source
collapsed in Jupyter (``jupyter.source_hidden``) and shown as a form's title on Colab
(``cellView: form``, ``# @title``). It hides one message: exporting re-runs the notebook in a
fresh kernel and otter turns everything that kernel writes to stderr into a ``RuntimeWarning``;
ipykernel 7 always writes "Kernel is running over TCP without encryption" there (it is a local
kernel talking to its own client over 127.0.0.1). The filter matches that line alone, so any other
stderr still shows.

Torch and scikit-learn, with its data sets, already come with Colab.
"""

from __future__ import annotations

import base64
import zlib
from pathlib import Path

import nbformat
from nbformat import NotebookNode

from . import requirements

#: Marks otter's generated first cell.
_OTTER_INIT = "# Initialize Otter"
#: otter's markdown cell before the export cell.
_OTTER_SUBMISSION = "## Submission"

#: The message ipykernel writes to stderr at every start over TCP, which otter re-raises whole.
KERNEL_TCP_NOTICE = (r"\[IPKernelApp\] WARNING \| Kernel is running over TCP without encryption\."
                     r"[^\n]*\s*\Z")


def submitting(stem: str) -> str:
    """The closing text, above the export cell."""
    return f"""## Submitting

Save your notebook (*File → Save*, or Ctrl+S), then run the next cell. It runs the notebook again \
from the top in a fresh kernel, reruns the public checks and writes `{stem}-submission.zip` next \
to the notebook (each export replaces the last one); its last line says which file to submit and \
how many public checks fail. Remember that the hidden tests, not the public checks, decide the \
grade.

**On Colab**, exporting is not available: save your work, then use *File → Download → Download \
.ipynb* and submit that notebook."""


#: The code the setup cell runs, as a file of the kit (never imported by it).
KERNEL_CODE = Path(__file__).with_name("student_kernel.py")
#: The setup cell's metadata: read-only, its source collapsed in Jupyter and hidden behind its
#: title on Colab.
CELL_METADATA = {"cellView": "form", "deletable": False, "editable": False,
                 "jupyter": {"source_hidden": True}}
#: The setup cell's first line: its title on Colab, a comment elsewhere.
TITLE = ("# @title Setup: run this cell first (it loads the grading client and this notebook's "
         "public checks)")


def setup_code(stem: str, public_tests: dict[str, str]) -> str:
    """What the setup cell runs for ``<stem>.ipynb`` with these public checks (question name ->
    otter test file): ``student_kernel``'s code, then the call that makes ``grader``."""
    checks = dict(sorted(public_tests.items()))
    return (KERNEL_CODE.read_text(encoding="utf-8")
            + f"\n\ngrader = start({stem!r}, {requirements.OTTER!r}, {checks!r}, "
            f"{KERNEL_TCP_NOTICE!r})\n")


def setup_cell_source(stem: str, public_tests: dict[str, str]) -> str:
    """The setup cell's code: a few lines that run ``setup_code``, carried compressed."""
    packed = base64.b85encode(zlib.compress(setup_code(stem, public_tests).encode(), 9)).decode()
    return f"""{TITLE}
import base64, types, zlib
setup_code = zlib.decompress(base64.b85decode("{packed}"))  # to read it: print(setup_code.decode())
notebook_setup = types.ModuleType("notebook_setup")
exec(setup_code, notebook_setup.__dict__)
grader = notebook_setup.grader"""


def carried_code(source: str) -> str:
    """The code a setup cell's source carries (``setup_code`` back), for reading it."""
    packed = source.split('b85decode("', 1)[1].split('"', 1)[0]
    return zlib.decompress(base64.b85decode(packed)).decode()


def is_setup_cell(cell: NotebookNode) -> bool:
    """Whether a cell is the setup cell (tests and tools find it by its title, not its place)."""
    return cell.cell_type == "code" and cell.source.startswith(TITLE)


def install(nb: NotebookNode, stem: str) -> None:
    """Replace otter's first cell by the setup cell, placed under the notebook's title; give
    otter's "Submission" cell before the export cell the closing text (with the Colab route),
    and drop otter's trailing empty cell."""
    (init,) = [c for c in nb.cells if c.cell_type == "code" and c.source.startswith(_OTTER_INIT)]
    init.source = setup_cell_source(stem, dict(nb.metadata["otter"]["tests"]))
    init.metadata = nbformat.from_dict(CELL_METADATA)
    kept = [cell for cell in nb.cells if cell is not init]
    kept.insert(1 if kept and kept[0].cell_type == "markdown" else 0, init)  # under the title
    for cell in kept:
        if cell.cell_type == "markdown" and cell.source.startswith(_OTTER_SUBMISSION):
            cell.source = submitting(stem)
    while kept and kept[-1].cell_type == "markdown" and not kept[-1].source.strip():
        kept.pop()
    nb.cells = kept
