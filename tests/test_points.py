"""Points are stated once, in each assignment's ``grading.toml``: the release writes the hidden
test cells and each question's points into the notebook otter gets (``course.assemble``), and
each question's heading in the released notebooks shows its points. A spec or master that would
state points twice, or name what does not exist, is refused with one sentence naming the file
and the key."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from labkit import paths
from labkit.course import assemble, autograders, labs, release
from labkit.course.labs import SpecError

STEM = "2_1_forward_mode"
#: "(5 points)" at the end of a heading line, as the release writes it.
_SHOWN = re.compile(r"^#{1,6} .* \((\d+(?:\.\d+)?) points?\)$")


@pytest.fixture
def copy(tmp_path) -> Path:
    """A copy of one assignment's folder (master, spec, checks) to edit; returns its master."""
    folder = tmp_path / "lab2" / STEM
    shutil.copytree(paths.assignment_folder(STEM), folder)
    return folder / f"{STEM}.ipynb"


def _edit_spec(master: Path, old: str, new: str) -> None:
    spec = master.parent / paths.SPEC_FILE
    text = spec.read_text("utf-8")
    assert old in text
    spec.write_text(text.replace(old, new, 1), "utf-8")


def _edit_cell(master: Path, old: str, new: str) -> int:
    nb = nbformat.read(master, 4)
    (index,) = [i for i, c in enumerate(nb.cells) if old in c.source]
    nb.cells[index].source = nb.cells[index].source.replace(old, new)
    nbformat.write(nb, master)
    return index


def _refusal(master: Path, verify: bool = False) -> str:
    with pytest.raises(SpecError) as refused:
        assemble.assemble(master)
        if verify:
            assemble.verify_calls(master)
    message = str(refused.value)
    assert "\n" not in message and message.rstrip().endswith("."), message
    return message


def _code_sources(nb) -> list[str]:
    return [c.source for c in nb.cells if c.cell_type == "code"]


def test_the_hidden_tests_are_generated_inside_the_questions_tests_after_the_public_ones(copy):
    nb = assemble.assemble(copy)
    sources = [c.source for c in nb.cells]
    begin = sources.index("# BEGIN QUESTION\nname: z_and_dzdx\npoints: [0, 1, 1]")
    end = sources.index("# END TESTS", begin)
    public, value, derivative = sources[sources.index("# BEGIN TESTS", begin) + 1:end]
    assert "points: 0" in public and "hidden: true" not in public
    assert value == '''""" # BEGIN TEST CONFIG
hidden: true
points: 1
""" # END TEST CONFIG
def test_z_and_dzdx_value(z):
    from labkit.checks import forward_mode as checks
    checks.check_z_value(z)


test_z_and_dzdx_value(z)'''
    assert derivative.startswith('""" # BEGIN TEST CONFIG\nhidden: true\npoints: 1\n')
    # The master itself holds no hidden test and states no points.
    master = nbformat.read(copy, 4)
    assert not any("hidden: true" in s for s in _code_sources(master))
    assert not any(c.source.startswith("# BEGIN QUESTION") and "points:" in c.source
                   for c in master.cells)


def test_a_check_given_the_namespace_literal_arguments_and_its_own_names(copy):
    _edit_spec(copy, '{ test = "value", call = "check_dzdy", points = 2 }',
               '{ test = "value", call = "check_dzdy", points = 2.5, namespace = true }, '
               '{ test = "again", call = "check_dzdy", args = ["a", 3], uses = ["x", "y"] }')
    nb = assemble.assemble(copy)
    sources = [c.source for c in nb.cells]
    assert "# BEGIN QUESTION\nname: dzdy\npoints: [0, 2.5, 1]" in sources
    (value,) = [s for s in sources if "def test_dzdy_value(" in s]
    assert value == ('""" # BEGIN TEST CONFIG\nhidden: true\npoints: 2.5\n""" # END TEST CONFIG\n'
                     'def test_dzdy_value(env):\n    from labkit.checks import forward_mode as '
                     'checks\n    checks.check_dzdy(env)\n\n\ntest_dzdy_value(globals())')
    assert any(s.endswith('    checks.check_dzdy("a", 3, x, y)\n\n\ntest_dzdy_again(x, y)')
               and "def test_dzdy_again(x, y):" in s for s in sources)


def test_a_question_header_that_states_points_is_refused(copy):
    _edit_cell(copy, "# BEGIN QUESTION\nname: dzdy", "# BEGIN QUESTION\nname: dzdy\npoints: [0, 2]")
    message = _refusal(copy)
    assert f"{STEM}.ipynb" in message and "'dzdy'" in message
    assert "[questions.dzdy]" in message and "remove its `points:` line" in message


def test_a_hidden_test_written_in_the_master_is_refused(copy):
    index = _edit_cell(copy, '""" # BEGIN TEST CONFIG\npoints: 0\nsuccess_message: "Public checks '
                       'passed."\n""" # END TEST CONFIG\ndef test_dzdy_example',
                       '""" # BEGIN TEST CONFIG\nhidden: true\npoints: 1\n""" # END TEST CONFIG\n'
                       'def test_dzdy_example')
    message = _refusal(copy)
    assert f"cell {index} of question 'dzdy' is a hidden test" in message
    assert "[questions.dzdy] hidden" in message


def test_a_public_test_worth_points_is_refused(copy):
    index = _edit_cell(copy, 'points: 0\nsuccess_message: "Public checks passed."\n""" # END TEST '
                       'CONFIG\ndef test_dzdy_example', 'points: 1\nsuccess_message: "Public checks '
                       'passed."\n""" # END TEST CONFIG\ndef test_dzdy_example')
    assert f"cell {index}, a public test of question 'dzdy', states points" in _refusal(copy)


def test_a_spec_naming_a_question_the_master_lacks_is_refused(copy):
    _edit_spec(copy, "[questions.dzdy]", "[questions.dzdw]")
    message = _refusal(copy)
    # The master's dzdy now has no spec: that is found first, naming the file and the key.
    assert f"{STEM}/grading.toml has no [questions.dzdy]" in message
    _edit_spec(copy, "[questions.dzdw]", "[questions.dzdy]\n"
               'hidden = [{ test = "value", call = "check_dzdy", points = 2 }]\n\n'
               "[questions.dzdw]")
    message = _refusal(copy)
    assert f"{STEM}/grading.toml: [questions.dzdw] names a question" in message
    assert "dual_operators, dual_functions, z_and_dzdx, symbolic_derivatives, dzdy" in message


def test_a_spec_naming_a_check_the_module_lacks_is_refused(copy):
    _edit_spec(copy, 'call = "check_z_derivative"', 'call = "check_z_derivatives"')
    assemble.assemble(copy)  # the text is fine; the checks module is what lacks it
    message = _refusal(copy, verify=True)
    assert message == (f"{labs.shown(copy.parent / 'grading.toml')}: [questions.z_and_dzdx] "
                       "hidden[1].call names 'check_z_derivatives', which "
                       f"{labs.shown(copy.parent / 'checks.py')} does not define as a function.")


@pytest.mark.parametrize("points", ["-1", '"two"', "true", "nan"])
def test_a_bad_points_value_is_refused(copy, points):
    _edit_spec(copy, 'call = "check_dzdy", points = 2', f'call = "check_dzdy", points = {points}')
    message = _refusal(copy)
    assert "[questions.dzdy] hidden[0].points must be a number of points, 0 or more" in message
    _edit_spec(copy, f'call = "check_dzdy", points = {points}', 'call = "check_dzdy", points = 2')
    _edit_spec(copy, "[questions.symbolic_derivatives]\npoints = 2",
               f"[questions.symbolic_derivatives]\npoints = {points}")
    assert "[questions.symbolic_derivatives] points must be a number" in _refusal(copy)


def test_a_written_question_needs_points_and_an_autograded_one_hidden_checks(copy):
    _edit_spec(copy, "[questions.symbolic_derivatives]\npoints = 2",
               "[questions.symbolic_derivatives]")
    assert "[questions.symbolic_derivatives] needs points" in _refusal(copy)
    _edit_spec(copy, "[questions.symbolic_derivatives]", "[questions.symbolic_derivatives]\n"
               "points = 2")
    _edit_spec(copy, 'hidden = [\n    { test = "value", call = "check_dzdy", points = 2 },\n]',
               "points = 2")
    assert "[questions.dzdy] needs hidden checks" in _refusal(copy)


def test_the_first_heading_of_each_question_shows_its_points(copy):
    nb = assemble.assemble(copy)
    shown = [line for c in nb.cells if c.cell_type == "markdown"
             for line in c.source.split("\n") if _SHOWN.match(line)]
    assert shown == ["### Exercise 1 — the arithmetic of dual numbers (5 points)",
                     "### Exercise 2 — cosine, tangent and exponential (4 points)",
                     "### Exercise 3 — the value and $dz/dx$ (2 points)",
                     "### Exercise 4 (written) — the derivatives by hand (2 points)",
                     "### Exercise 5 — $dz/dy$ (2 points)"]
    assert assemble.points_label(1) == "1 point" and assemble.points_label(2.5) == "2.5 points"


def test_a_heading_that_states_points_itself_or_a_question_without_one_is_refused(copy):
    index = _edit_cell(copy, "### Exercise 5 — $dz/dy$", "### Exercise 5 — $dz/dy$ (2 points)")
    assert f"cell {index}, the heading of question 'dzdy', states points itself" in \
        _refusal(copy)
    _edit_cell(copy, "### Exercise 5 — $dz/dy$ (2 points)", "Exercise 5 — $dz/dy$")
    message = _refusal(copy)
    assert message.startswith(f"{labs.shown(copy)}: question 'dzdy' has no markdown heading")


@pytest.mark.parametrize("stem", paths.assignment_stems())
def test_the_released_notebooks_show_each_questions_points_in_its_heading(stem):
    """Through the released student and solution notebooks: the headings that state points are
    one per question, in the master's order, each with the manifest's points."""
    expected = [q.points for q in autograders.load(stem).questions]
    for notebook in (paths.student_notebook(stem), paths.solution_notebook(stem)):
        found = [float(m.group(1)) for c in nbformat.read(notebook, 4).cells
                 if c.cell_type == "markdown" for line in c.source.split("\n")
                 if (m := _SHOWN.match(line))]
        assert found == expected, notebook


def test_the_release_refuses_a_bad_spec_before_it_writes_anything(tmp_path):
    root = tmp_path / "repo"
    shutil.copytree(paths.ASSIGNMENTS, root / "assignments")
    shutil.copytree(paths.ROOT / "labkit", root / "labkit",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(paths.ROOT / "requirements.txt", root / "requirements.txt")
    spec = root / "assignments" / "lab2" / STEM / paths.SPEC_FILE
    spec.write_text(spec.read_text("utf-8").replace("[questions.dzdy]", "[questions.dzdw]"),
                    "utf-8")
    done = subprocess.run([sys.executable, "-m", "labkit", "release", "--lab", "lab2"], cwd=root,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode != 0
    assert done.stderr.strip() == (
        f"release refused: assignments/lab2/{STEM}/grading.toml has no [questions.dzdy]: "
        f"declare the points of question 'dzdy' of assignments/lab2/{STEM}/{STEM}.ipynb there.")
    assert not (root / "student").exists() and not (root / "autograder").exists()


def test_every_master_of_the_course_assembles_and_its_checks_exist():
    for master in release.master_paths():
        assemble.assemble(master)
        assemble.verify_calls(master)


def test_a_misspelt_key_is_refused_rather_than_ignored(copy):
    _edit_spec(copy, 'call = "check_dzdy", points = 2', 'call = "check_dzdy", pionts = 2')
    assert "[questions.dzdy] hidden[0] has keys the kit does not know: pionts" in _refusal(copy)


def test_a_question_without_a_name_or_with_broken_yaml_is_refused(copy):
    index = _edit_cell(copy, "# BEGIN QUESTION\nname: dzdy", "# BEGIN QUESTION\nname: [dzdy")
    assert _refusal(copy).startswith(f"{labs.shown(copy)}: cell {index}, a BEGIN QUESTION cell, "
                                     "is not valid YAML")
    _edit_cell(copy, "# BEGIN QUESTION\nname: [dzdy", "# BEGIN QUESTION\nmanual: false")
    assert f"cell {index}, a BEGIN QUESTION cell, has no name" in _refusal(copy)
