"""The first cell of a student notebook: what it needs to run in Jupyter, JupyterHub and Colab.

otter's own first cell imports otter and reads the public checks from the notebook's metadata.
Colab has no otter installed and cannot read a notebook's metadata from its kernel, so the
released first cell installs the grading client only where it is missing, and on Colab writes the
public checks (and nothing else) as the test files otter reads there. Torch and scikit-learn,
with its data sets, already come with Colab.
"""

from __future__ import annotations

import json

from nbformat import NotebookNode

from . import requirements

#: Marks otter's generated first cell.
_OTTER_INIT = "# Initialize Otter"
_EXPORT_NOTE = (
    "\n\n**On Colab**, exporting is not available: save your work, then use *File → Download → "
    "Download .ipynb* and submit that notebook."
)


def setup_cell_source(stem: str, public_tests: dict[str, str]) -> str:
    payload = json.dumps(public_tests, sort_keys=True)
    return f'''# Setup: the grading client and this notebook's public checks. Run this cell first.
import importlib.util
import subprocess
import sys

if importlib.util.find_spec("otter") is None:  # on Colab, or any environment without it
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "{requirements.OTTER}"],
                   check=True)

if "google.colab" in sys.modules:  # Colab's kernel cannot read the checks from the notebook
    import json
    import os

    os.makedirs("tests", exist_ok=True)
    for name, source in json.loads({payload!r}).items():
        with open(os.path.join("tests", name + ".py"), "w") as test_file:
            test_file.write(source)

import otter

grader = otter.Notebook("{stem}.ipynb")'''


def install(nb: NotebookNode, stem: str) -> None:
    """Replace otter's first cell by the setup cell; add the Colab note to the export text."""
    (init,) = [c for c in nb.cells if c.cell_type == "code" and c.source.startswith(_OTTER_INIT)]
    init.source = setup_cell_source(stem, dict(nb.metadata["otter"]["tests"]))
    for cell in nb.cells:
        if cell.cell_type == "markdown" and cell.source.startswith("## Submission"):
            cell.source = cell.source.rstrip() + _EXPORT_NOTE
