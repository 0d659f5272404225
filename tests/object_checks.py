"""A notebook that defines objects beyond tensors (a class with operators, an ``nn.Module``, and
hostile classes), the checks a course would write for them as for local Python objects, and an
autograder zip holding those checks as otter test files.

The same check functions run on the notebook's own objects in plain Python (``local_names``: what
``otter run`` gives them) and, through the grader, on stand-ins of the objects the notebook's
confined process holds.
"""

from __future__ import annotations

import math
import zipfile
from pathlib import Path

import nbformat
import torch

#: The well-behaved objects: a small vector class and a module.
WELL_BEHAVED = '''
import os
import torch


class Vec:
    def __init__(self, x, y):
        self.x, self.y = x, y

    def __add__(self, other):
        return Vec(self.x + other.x, self.y + other.y)

    def __sub__(self, other):
        return Vec(self.x - other.x, self.y - other.y)

    def __mul__(self, k):
        return Vec(self.x * k, self.y * k)

    __rmul__ = __mul__

    def __truediv__(self, k):
        return Vec(self.x / k, self.y / k)

    def __rtruediv__(self, k):
        return Vec(k / self.x, k / self.y)

    def __pow__(self, k):
        return Vec(self.x ** k, self.y ** k)

    def __rpow__(self, base):
        return Vec(base ** self.x, base ** self.y)

    def __neg__(self):
        return Vec(-self.x, -self.y)

    def __eq__(self, other):
        return isinstance(other, Vec) and (self.x, self.y) == (other.x, other.y)

    def __lt__(self, other):
        return self.norm() < other.norm()

    def norm(self):
        return (self.x ** 2 + self.y ** 2) ** 0.5

    def __str__(self):
        return f"Vec({self.x}, {self.y})"


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(4, 3, dtype=torch.float64)

    def forward(self, x):
        return torch.tanh(self.linear(x))


torch.manual_seed(0)
model = Net()
'''

#: Classes that attack whoever touches them.
HOSTILE = '''
class Loops:
    """Any attribute it lacks loops forever."""

    def __init__(self):
        self.value = 1.0

    def __getattr__(self, name):
        while True:
            pass


looper = Loops()


class Truthy:
    def __bool__(self):
        return True


class Liar:
    """Claims to equal anything, and to be true; its value is 1."""

    value = 1.0

    def __eq__(self, other):
        return Truthy()

    def __bool__(self):
        return True


class Doomed:
    """Kills its own process when it is freed."""

    def __init__(self, fail=False):
        if fail:
            raise ValueError("refused")

    def __del__(self):
        os.kill(os.getpid(), 9)


class Huge:
    """Gigabytes of text."""

    value = 3.0

    def __str__(self):
        return "x" * (1 << 30)

    def __repr__(self):
        return "y" * (1 << 30)


class Enormous:
    """More text than the notebook's memory holds."""

    def __str__(self):
        return "x" * (8 << 30)
'''


def notebook() -> nbformat.NotebookNode:
    return nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(WELL_BEHAVED),
                                           nbformat.v4.new_code_cell(HOSTILE)])


def local_names() -> dict:
    """The notebook's names as plain Python gives them (``otter run``, no sandbox)."""
    names: dict = {}
    exec(compile(WELL_BEHAVED + HOSTILE, "<notebook>", "exec"), names)
    return names


# -- checks, written for local objects ----------------------------------------------------------

def check_vector_arithmetic(Vec) -> None:
    a, b = Vec(1.0, 2.0), Vec(3.0, -1.0)
    total = a + b
    assert (total.x, total.y) == (4.0, 1.0), "a + b"
    difference = a - b
    assert (difference.x, difference.y) == (-2.0, 3.0), "a - b"
    doubled = 2 * a  # reflected
    assert (doubled.x, doubled.y) == (2.0, 4.0), "2 * a"
    half, inverse = a / 2, 2 / a
    assert (half.x, half.y, inverse.x, inverse.y) == (0.5, 1.0, 2.0, 1.0), "a / 2, 2 / a"
    squared, powers = a ** 2, 2 ** a
    assert (squared.x, squared.y, powers.x, powers.y) == (1.0, 4.0, 2.0, 4.0), "a ** 2, 2 ** a"
    negated = -b
    assert (negated.x, negated.y) == (-3.0, 1.0), "-b"
    assert math.isclose(a.norm(), math.sqrt(5.0)), "norm"
    assert (a < b) is True and (b < a) is False, "a < b"
    assert (a == Vec(1.0, 2.0)) is True and (a != b) is True, "=="
    assert str(a) == "Vec(1.0, 2.0)", str(a)
    named = Vec(x=1.0, y=-2.0)  # keyword arguments
    assert (named.x, named.y) == (1.0, -2.0), "Vec(x=..., y=...)"


def check_model_against_reference(model) -> None:
    """The module's parameters read as tensors, its forward on hidden inputs, judged against a
    reference computed here."""
    state = model.state_dict()
    assert set(state) == {"linear.weight", "linear.bias"}, sorted(state)
    weight, bias = state["linear.weight"], state["linear.bias"]
    assert isinstance(weight, torch.Tensor) and weight.shape == (3, 4)
    assert torch.equal(model.linear.weight.detach(), weight)
    hidden = torch.randn(5, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(7))
    expected = torch.tanh(hidden @ weight.T + bias)
    result = model(hidden)
    assert isinstance(result, torch.Tensor) and result.shape == (5, 3)
    assert torch.allclose(result.detach(), expected), "forward"


def check_after(Vec) -> None:
    assert Vec(5.0, 6.0).x == 5.0


def check_loops_attribute(Loops) -> None:
    assert Loops().scale == 2.0


def check_looper_value(looper) -> None:
    assert looper.value == 1.0


def check_liar_value(Liar) -> None:
    assert float(Liar().value) == 2.0, "its value should be 2"


def check_liar_equality(Liar) -> None:
    assert Liar() == 2.0, "it should equal 2"


def check_doomed(Doomed) -> None:
    try:
        Doomed(fail=True)
    except ValueError:
        pass


def check_huge_text(Huge) -> None:
    assert set(str(Huge())) == {"x"}


def check_enormous_text(Enormous) -> None:
    assert str(Enormous())


def check_huge_value(Huge) -> None:
    huge = Huge()
    assert "y" * 100 not in repr(huge)  # the grader's own short repr: nothing crosses
    assert huge.value == 3.0


#: question -> the checks of its cases (each worth one point), in the notebook's order.
QUESTIONS = {
    "arithmetic": ("check_vector_arithmetic",),
    "model": ("check_model_against_reference",),
    "loops": ("check_loops_attribute",),
    "looper": ("check_looper_value",),
    "liar": ("check_liar_value", "check_liar_equality"),
    "doomed": ("check_doomed",),
    "huge": ("check_huge_text", "check_huge_value"),
    "enormous": ("check_enormous_text",),
    "after": ("check_after",),
}
PARAMETERS = {"check_vector_arithmetic": "Vec", "check_model_against_reference": "model",
              "check_after": "Vec", "check_loops_attribute": "Loops",
              "check_looper_value": "looper", "check_liar_value": "Liar",
              "check_liar_equality": "Liar", "check_doomed": "Doomed",
              "check_huge_text": "Huge", "check_huge_value": "Huge",
              "check_enormous_text": "Enormous"}


def _test_file(question: str, checks: tuple[str, ...]) -> str:
    cases = "".join(
        f"\n@test_case(points=1, hidden=True)\ndef test_{check}({PARAMETERS[check]}):\n"
        f"    from tests import object_checks\n"
        f"    object_checks.{check}({PARAMETERS[check]})\n" for check in checks)
    return (f"from otter.test_files import test_case\n\nOK_FORMAT = False\n\n"
            f"name = {question!r}\npoints = {[1] * len(checks)!r}\n{cases}")


def write_autograder(zip_path: Path) -> tuple[tuple[str, float], ...]:
    """An autograder zip holding the checks as otter test files; returns its questions."""
    with zipfile.ZipFile(zip_path, "w") as archive:
        for question, checks in QUESTIONS.items():
            archive.writestr(f"tests/{question}.py", _test_file(question, checks))
    return tuple((question, float(len(checks))) for question, checks in QUESTIONS.items())
