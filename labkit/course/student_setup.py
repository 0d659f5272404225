"""The first cell of a student notebook, and its closing "Submitting" text: what a notebook needs
to run in Jupyter, JupyterHub and Colab, under its own name or another.

otter's own first cell imports otter and calls ``otter.Notebook("<stem>.ipynb")``, which reads the
public checks from that file's metadata. That fails wherever the file is not in the kernel's
working folder under that name: on Colab (*File → Upload notebook* keeps the notebook in Drive,
not in ``/content``), and for a second download saved as ``<stem> (1).ipynb``. So the released
first cell

- installs the grading client only where it is missing (Colab), and when pip fails says so in one
  sentence instead of a ``CalledProcessError`` traceback;
- always writes the notebook's public checks (and nothing else) as test files in a fresh private
  folder and hands it to ``otter.Notebook(tests_dir=...)``: otter 7.0.0 reads test files from
  ``tests_dir`` whenever that folder exists, whatever notebook it is given, and refuses a missing
  folder on Colab;
- gives otter this notebook's file for exporting when it can find it: the file Jupyter names in
  ``JPY_SESSION_NAME`` (the open notebook), else ``<stem>.ipynb``, else the only
  ``<stem>*.ipynb`` in the folder; else none (Colab), and the closing text says to download the
  notebook instead;
- hides one message: exporting re-runs the notebook in a fresh kernel and otter turns everything
  that kernel writes to stderr into a ``RuntimeWarning``; ipykernel 7 always writes "Kernel is
  running over TCP without encryption" there (it is a local kernel talking to its own client over
  127.0.0.1). The filter matches that line alone, so any other stderr still shows.

Torch and scikit-learn, with its data sets, already come with Colab.
"""

from __future__ import annotations

import json

from nbformat import NotebookNode

from . import requirements

#: Marks otter's generated first cell.
_OTTER_INIT = "# Initialize Otter"
#: otter's markdown cell before the export cell.
_OTTER_SUBMISSION = "## Submission"

#: The message ipykernel writes to stderr at every start over TCP, which otter re-raises whole.
KERNEL_TCP_NOTICE = (r"\[IPKernelApp\] WARNING \| Kernel is running over TCP without encryption\."
                     r"[^\n]*\s*\Z")

SUBMITTING = f"""## Submitting

Save your notebook (*File → Save*, or Ctrl+S), then run the next cell. It runs the notebook again \
from the top in a fresh kernel, reruns the public checks and writes a zip file next to the \
notebook, named after it; submit that zip. Remember that the hidden tests, not the public checks, \
decide the grade.

**On Colab**, exporting is not available: save your work, then use *File → Download → Download \
.ipynb* and submit that notebook."""


def setup_cell_source(stem: str, public_tests: dict[str, str]) -> str:
    """The first cell's code, for the notebook ``<stem>.ipynb`` with these public checks
    (question name -> otter test file)."""
    payload = json.dumps(public_tests, sort_keys=True)
    return f'''# Setup: the grading client and this notebook's public checks. Run this cell first.
import glob
import importlib
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import warnings


class SetupFailed(Exception):
    def _render_traceback_(self):  # Jupyter shows this sentence instead of a traceback
        return [str(self)]


if importlib.util.find_spec("otter") is None:  # on Colab, or any environment without it
    print("Installing the grading client ({requirements.OTTER}) ...")
    pip = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "{requirements.OTTER}"],
                         capture_output=True, text=True)
    if pip.returncode != 0:
        raise SetupFailed("The grading client could not be installed (pip install "
                          "{requirements.OTTER} failed; is this computer offline?): connect to the "
                          "internet and run this cell again.")
    importlib.invalidate_caches()

# The public checks, as test files in a private folder: they work whatever this file is called.
checks_folder = tempfile.mkdtemp(prefix="{stem}-checks-")
for name, source in json.loads({payload!r}).items():
    with open(os.path.join(checks_folder, name + ".py"), "w") as test_file:
        test_file.write(source)

# This notebook's file, which the export cell zips: none on Colab, where you download it instead.
this_notebook = os.path.basename(os.environ.get("JPY_SESSION_NAME", ""))
if not (this_notebook.endswith(".ipynb") and os.path.isfile(this_notebook)):
    copies = glob.glob(glob.escape("{stem}") + "*.ipynb")
    this_notebook = ("{stem}.ipynb" if os.path.isfile("{stem}.ipynb")
                     else copies[0] if len(copies) == 1 else None)

# Exporting re-runs the notebook in a new kernel, whose start-up notice otter shows in red.
warnings.filterwarnings("ignore", {KERNEL_TCP_NOTICE!r}, RuntimeWarning)

import otter

grader = otter.Notebook(this_notebook, tests_dir=checks_folder)'''


def install(nb: NotebookNode, stem: str) -> None:
    """Replace otter's first cell by the setup cell; give otter's "Submission" cell before the
    export cell the closing text (with the Colab route), and drop otter's trailing empty cell."""
    (init,) = [c for c in nb.cells if c.cell_type == "code" and c.source.startswith(_OTTER_INIT)]
    init.source = setup_cell_source(stem, dict(nb.metadata["otter"]["tests"]))
    kept = []
    for cell in nb.cells:
        if cell.cell_type == "markdown" and cell.source.startswith(_OTTER_SUBMISSION):
            cell.source = SUBMITTING
        kept.append(cell)
    while kept and kept[-1].cell_type == "markdown" and not kept[-1].source.strip():
        kept.pop()
    nb.cells = kept
