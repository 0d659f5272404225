"""What a student notebook's setup cell runs in the student's own kernel (Jupyter, JupyterHub, VS
Code, Colab): it installs the grading client where it is missing, loads the notebook's public
checks and gives the notebook its ``grader``, which checks answers and exports the submission.

The kit never imports this file. ``student_setup`` compresses its source, with the notebook's
public checks, into the setup cell: on Colab the notebook is all there is, so what the cell runs
must travel inside it. It therefore imports nothing of the kit, and ``otter`` only once
``start`` has made sure it is there.

Why ``grader`` is a subclass of ``otter.Notebook`` (otter-grader 7.0.0):

- **export** finds the notebook to zip when it is run, not when the setup cell ran, and refuses
  in one sentence where it cannot know it: otter would zip whichever ``*.ipynb`` it guessed (a
  blank first download beside the copy being worked in) and call it exported, or fail with
  "Could not resolve notebook path". On Colab, where otter's export raises, it says what to do
  instead. It writes one ``<stem>-submission.zip``, replaced by each export, and its last line
  says which file to hand in and how many public checks fail.
- **check** says which cell to run first when a check needs a name the notebook has not defined
  yet: otter passes ``None`` for it, and the check fails with "'NoneType' object is not callable".
- otter would read the metadata of the only ``*.ipynb`` in the working folder, whatever it is;
  the checks come from ``tests_dir`` here, so no notebook is read at all.
"""

import ast
import glob
import importlib
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import warnings
import zipfile
from textwrap import indent

#: What to do on Colab instead of exporting, in one sentence.
ON_COLAB = ("Exporting does not work on Colab: save your work, then use File → Download → "
            "Download .ipynb and hand in that notebook.")
#: How a student names the notebook to export where the kit cannot tell which it is.
NAME_IT = ('run grader.export("<your notebook>.ipynb") in a new cell, with the name of the file you '
           "work in")


class Refused(Exception):
    """Something the student can act on: Jupyter shows this one sentence instead of a traceback."""

    def _render_traceback_(self) -> list[str]:
        return [str(self)]


def install_otter(requirement: str) -> None:
    """Install the grading client where it is missing (Colab), or say in one sentence why not."""
    if importlib.util.find_spec("otter") is not None:
        return
    print(f"Installing the grading client ({requirement}) ...")
    pip = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", requirement],
                         capture_output=True, text=True)
    if pip.returncode != 0:
        raise Refused(f"The grading client could not be installed (pip install {requirement} "
                      "failed; is this computer offline?): connect to the internet and run this "
                      "cell again.")
    importlib.invalidate_caches()


def write_checks(stem: str, public_checks: dict[str, str]) -> str:
    """The public checks as otter test files in a fresh private folder: otter reads its tests
    from there whatever the notebook is called, and refuses a missing folder on Colab."""
    folder = tempfile.mkdtemp(prefix=f"{stem}-checks-")
    for name, source in public_checks.items():
        with open(os.path.join(folder, name + ".py"), "w", encoding="utf-8") as test_file:
            test_file.write(source)
    return folder


def names_needed(source: str) -> list[str]:
    """The notebook names a check's test cases receive (their parameters, ``env`` aside)."""
    names: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.FunctionDef) and any(
                isinstance(d, ast.Call) and getattr(d.func, "id", "") == "test_case"
                for d in node.decorator_list):
            names += [a.arg for a in node.args.args if a.arg != "env" and a.arg not in names]
    return names


def run_first(missing: list[str]) -> str:
    """The sentence that asks for the cells defining ``missing`` to be run first."""
    quoted = [f"`{name}`" for name in missing]
    if len(quoted) == 1:
        return f"Run the cell that defines {quoted[0]} first, then run this check again."
    listed = ", ".join(quoted[:-1]) + " and " + quoted[-1]
    return f"Run the cells that define {listed} first, then run this check again."


class NotChecked:
    """What a check returns when the notebook lacks a name it needs: shown as one sentence."""

    def __init__(self, missing: list[str]):
        self.missing = missing

    def __repr__(self) -> str:
        return run_first(self.missing)


class Undefined:
    """Stands in for a missing name while otter validates an export, so that the check that
    calls it fails saying what to run rather than "'NoneType' object is not callable"."""

    def __init__(self, name: str):
        self.name = name

    def __bool__(self) -> bool:
        return False

    def __repr__(self) -> str:
        return f"<{self.name} is not defined>"

    def __call__(self, *args, **kwargs):
        raise NameError(f"`{self.name}` is not defined: run the cell that defines it first")


# --- Which notebook is this kernel's ---------------------------------------------------------

def session_notebook() -> str | None:
    """The notebook Jupyter Server opened this kernel for (``JPY_SESSION_NAME``: other front
    ends do not set it), when that file is still there under that name."""
    named = os.environ.get("JPY_SESSION_NAME", "")  # absolute, or relative to the server's root
    for path in (named, os.path.basename(named)):
        if path.endswith(".ipynb") and os.path.isfile(path):
            return _shown(path)
    return None


def _read(path: str) -> dict:
    try:
        with open(path, encoding="utf-8") as f:
            nb = json.load(f)
    except (OSError, ValueError):
        return {}
    return nb if isinstance(nb, dict) else {}


def _code_sources(nb: dict) -> set[str]:
    sources = set()
    for cell in nb.get("cells", []):
        if isinstance(cell, dict) and cell.get("cell_type") == "code":
            source = cell.get("source", "")
            source = "".join(source) if isinstance(source, list) else str(source)
            if source.strip():
                sources.add(source.strip())
    return sources


def copies_here(stem: str) -> list[str]:
    """This assignment's notebooks in the working folder: named after it, or renamed copies
    that still carry its otter metadata."""
    found = []
    for path in sorted(glob.glob("*.ipynb")):
        if path.startswith(stem):
            found.append(path)
        else:
            otter_metadata = _read(path).get("metadata", {}).get("otter", {})
            if isinstance(otter_metadata, dict) and otter_metadata.get("assignment_name") == stem:
                found.append(path)
    return found


def worked_in(copies: list[str], history: list[str]) -> str | None:
    """The copy whose own code this kernel ran most recently, or None when it ran none.

    A copy's own code is the code cells, as saved, that no other copy holds: the answers a
    student wrote and saved there. ``history`` is every cell this kernel ran, in order; a cell
    counts only if its text is exactly a saved cell, so a copy is chosen only on the evidence of
    code that exists in that file alone. The most recent such run decides (a copy is often run
    once as downloaded, before its answers are written in).
    """
    sources = {path: _code_sources(_read(path)) for path in copies}
    ran = {entry.strip(): index for index, entry in enumerate(history) if entry.strip()}
    latest: dict[str, int] = {}
    for path, own in sources.items():
        others = set().union(*(s for p, s in sources.items() if p != path))
        runs = [ran[source] for source in own - others if source in ran]
        if runs:
            latest[path] = max(runs)
    return max(latest, key=latest.get) if latest else None


def kernel_history() -> list[str]:
    """The text of every cell this kernel ran, in order (IPython's raw input history)."""
    from IPython import get_ipython

    shell = get_ipython()
    return list(shell.history_manager.input_hist_raw) if shell is not None else []


def _shown(path: str) -> str:
    """A path as the student knows it: the file name when it is in the working folder."""
    folder, name = os.path.split(os.path.abspath(path))
    return name if folder == os.getcwd() else os.path.abspath(path)


# --- The grader ------------------------------------------------------------------------------

def grader_class():
    """``otter.Notebook`` with this kit's export and check (see the module's docstring)."""
    import otter
    from otter.check.utils import IPythonInterpreter, grade_zip_file

    class Grader(otter.Notebook):
        """The notebook's ``grader``."""

        def __init__(self, stem: str, public_checks: dict[str, str]):
            self.stem = stem
            self.needs = {name: names_needed(source) for name, source in public_checks.items()}
            super().__init__(session_notebook(), tests_dir=write_checks(stem, public_checks))

        def _resolve_nb_path(self, nb_path, fail_silently=False):
            return nb_path  # never a guess from the folder: export finds its notebook itself

        def check(self, question, global_env=None):
            env = sys._getframe(1).f_globals if global_env is None else global_env
            missing = [n for n in self.needs.get(question, []) if n not in env]
            if missing and not type(self)._grading_mode:
                return NotChecked(missing)
            if missing:  # otter validating an export: the check runs, and fails in words
                env = {**env, **{name: Undefined(name) for name in missing}}
            return super().check(question, env)

        def notebook_to_export(self, nb_path: str | None = None) -> str:
            """The notebook file this kernel works in, or ``Refused`` saying what to do."""
            if nb_path is not None:
                if not os.path.isfile(nb_path):
                    raise Refused(f"There is no file {nb_path} in {os.getcwd()}: give the name of "
                                  "your notebook file as it is in Jupyter's file browser.")
                return nb_path
            found = session_notebook()
            if found:
                return found
            copies = copies_here(self.stem)
            if len(copies) == 1:
                return copies[0]
            if not copies:
                raise Refused(f"This kernel's folder ({os.getcwd()}) holds no copy of this "
                              f"notebook, so it cannot tell which file to export: save your "
                              f"work, then {NAME_IT} (a path if it is in another folder).")
            found = worked_in(copies, kernel_history())
            if found:
                return found
            listed = ", ".join(copies)
            raise Refused(f"This folder holds several copies of this notebook ({listed}) and "
                          f"none is known to be the one open here: save your work, then "
                          f"{NAME_IT}, or rename or move the other copies.")

        def export(self, nb_path=None, export_path=None, pdf=False, run_tests=True, **_ignored):
            """Zip the notebook as ``<stem>-submission.zip`` next to it (replacing the last
            export), run its public checks in a fresh kernel, and say what to hand in."""
            if type(self)._grading_mode:
                return None  # otter re-running the notebook to validate an export
            if "google.colab" in sys.modules or self.interpreter is IPythonInterpreter.COLAB:
                print(ON_COLAB)
                return None
            notebook = self.notebook_to_export(nb_path)
            with open(notebook, "rb") as saved:
                empty = not saved.read().strip()
            if empty:
                raise Refused(f"{_shown(notebook)} is empty on disk: save your notebook "
                              "(File → Save) and run this cell again.")
            folder = os.path.dirname(os.path.abspath(notebook))
            target = export_path or os.path.join(folder, f"{self.stem}-submission.zip")
            partial = target + ".part"
            with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as archive:
                archive.write(notebook, os.path.basename(notebook))
            os.replace(partial, target)
            hand_in = f"hand in {_shown(target)}"
            if not run_tests:
                print(f"Your notebook {_shown(notebook)} is exported: {hand_in}.")
                return None
            print("Running your submission against local test cases...\n")
            results = grade_zip_file(target, os.path.basename(notebook), self._tests_dir)
            print("Your submission received the following results when run against available "
                  "test cases:\n\n" + indent(results.summary(), "    ") + "\n")
            failing = [name for name, test in results.results.items() if not test.passed_all]
            if results.has_catastrophic_failure():
                print(f"Your notebook {_shown(notebook)} is exported, but its public checks could "
                      f"not run (above): fix that and export again, or {hand_in} as it is.")
            elif failing:
                count, them = (("1 check", "it") if len(failing) == 1
                               else (f"{len(failing)} checks", "them"))
                print(f"Your notebook {_shown(notebook)} is exported, {count} failing "
                      f"({', '.join(failing)}): fix {them} and export again, or {hand_in} as it "
                      "is.")
            else:
                print(f"Your notebook {_shown(notebook)} is exported, every public check "
                      f"passing: {hand_in} (each export replaces it).")
            return None

    return Grader


def start(stem: str, requirement: str, public_checks: dict[str, str], tcp_notice: str):
    """The notebook's ``grader``, once the grading client is there."""
    install_otter(requirement)
    # Exporting re-runs the notebook in a new kernel, whose start-up notice otter shows in red.
    warnings.filterwarnings("ignore", tcp_notice, RuntimeWarning)
    return grader_class()(stem, public_checks)
