"""Hidden-test helpers shipped inside the autograder zips.

The shared modules live here (``core``: devices, comparisons, messages; ``graded``: a graded
function declared with its cases, reference and tolerances; ``descent``). Each assignment's own
checks live with its content, ``assignments/<lab>/<stem>/checks.py``, and are imported as
``labkit.checks.<name>``, ``<name>`` being the stem without its number: a release ships the file
under that name in the autograder zip, and in the course's repository the finder below maps the
name to the file. The hidden test cells stay one line long and call into these modules, so that the
rules for a fair grade live in one reviewed place rather than in many notebook cells.
"""

import importlib.abc
import importlib.util
import sys
from pathlib import Path

#: The course's content, where this package sits in the course's repository (absent in a zip).
_COURSE = Path(__file__).resolve().parent.parent.parent / "assignments"


class _AssignmentChecks(importlib.abc.MetaPathFinder):
    """Finds ``labkit.checks.<name>`` at ``assignments/<lab>/<number>_<name>/checks.py``; asked
    last, so a module shipped in this folder (as in an autograder zip) always wins."""

    def find_spec(self, fullname, path=None, target=None):
        prefix = __name__ + "."
        name = fullname[len(prefix):] if fullname.startswith(prefix) else ""
        if not name or "." in name or not name.isidentifier():
            return None
        for candidate in sorted(_COURSE.glob(f"*/*_{name}/checks.py")):
            if candidate.parent.name.split("_", 2)[2:] == [name]:
                return importlib.util.spec_from_file_location(fullname, candidate)
        return None


if _COURSE.is_dir() and not any(isinstance(f, _AssignmentChecks) for f in sys.meta_path):
    sys.meta_path.append(_AssignmentChecks())
