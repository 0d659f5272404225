"""Hidden checks of assignment 2.1 (forward-mode automatic differentiation with dual numbers).

The answers are a class (``DualNumber``), functions of dual numbers and stored floats, all living
in the student's notebook. The grader reaches them through handles: it can construct the class,
combine instances with operators, call the notebook's functions and read attributes, and gets
plain numbers back. So every check here builds its own dual numbers from random values (drawn
under the grading key, ``core.generator``), combines them as a student would, reads ``.value``
and ``.dvalue``, makes sure they are real numbers, and compares them in float64 with two
independent references: the derivative written by hand (``_ANALYTIC``) and torch's own
forward-mode AD (dual tensors, ``torch.autograd.forward_ad``), computed here.

The release copies this file into the autograder zip as ``labkit/checks/forward_mode.py``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
import torch.autograd.forward_ad as forward_ad

from labkit.checks import core
from labkit.checks.graded import random_signed, random_uniform

#: Every correct answer computes a value or derivative with a few float64 operations on inputs of
#: size 0.5 to 2, each rounding by at most 2**-53 (1.1e-16) relative; equivalent formulas (a**b
#: as exp(b ln a), 1/cos^2 as 1 + tan^2, a quotient as a product with 1/b) differ by at most
#: about 100 ulps of terms below 100, about 1e-12. A wrong formula (a missing term, a sign, a
#: missing b^2 or chain-rule factor) is off by 1e-2 or more on some of a check's random inputs
#: (a wrong formula agrees with the right one only on a thin set, such as b = 1 for a quotient
#: without b^2 or a = pi/4 for tan' as 1/sin^2, near which a check's draws do not all fall).
#: 1e-9, relative to the expected size with a floor of 1, lies between with a thousandfold margin
#: above the first and ten millionfold below the second.
TOLERANCE = 1e-9
#: The stored results are judged against their exact values (0.5 is a float, and the notebook's
#: computation reaches it exactly): 1e-12 only forgives another float route to them (a few ulps).
STORED_TOLERANCE = 1e-12

#: The point the notebook evaluates z = x*y + sin(x) at, as the notebook states it.
X0, Y0 = 0.5, 4.2

Pair = tuple[float, float]


# ---------------------------------------------------------------------------------------------
# Reading the student's objects.


#: Where the numbers a check reads come from, for the message when one is not a plain number.
_NUMBERS = ("Store Python numbers in `value` and `dvalue` (results of `math` functions and of "
            "`+ - * /` on floats), not a DualNumber, a tensor or a tuple.")


def _number(value: Any, what: str) -> float:
    """``value`` as a float, once it is known to be a real number: an int or a float (not a bool,
    a tensor or another DualNumber), and finite."""
    return core.plain_number(value, what, _NUMBERS)


def _read(obj: Any, attribute: str, what: str) -> float:
    """A numeric attribute of a dual number from the notebook."""
    if obj is None:
        raise core.CheckFailed(f"{what} gave None: return the new DualNumber (did you forget "
                               "`return`?).")
    value = core.attempt(f"Reading `.{attribute}` of {what} (it should be a DualNumber)",
                         lambda: getattr(obj, attribute))
    return _number(value, f"`.{attribute}` of {what}")


def _pair(obj: Any, what: str) -> Pair:
    return _read(obj, "value", what), _read(obj, "dvalue", what)


def _make(DualNumber: Any, value: float, dvalue: float) -> Any:
    if isinstance(DualNumber, core.MissingName):
        raise core.CheckFailed(DualNumber.absent("class named `DualNumber`",
                                               "Run the cell that defines it, and keep its name."))
    DualNumber = core.require_function(DualNumber, "DualNumber")
    return core.attempt("`DualNumber(value, dvalue)`", lambda: DualNumber(value, dvalue))


# ---------------------------------------------------------------------------------------------
# References: by hand, and torch's forward-mode AD.


def _torch_forward(f: Callable[..., torch.Tensor], *pairs: Pair) -> Pair:
    """(value, derivative) of ``f`` at dual inputs, by torch's dual tensors in float64."""
    with forward_ad.dual_level():
        duals = [forward_ad.make_dual(torch.tensor(v, dtype=torch.float64),
                                      torch.tensor(d, dtype=torch.float64)) for v, d in pairs]
        out = forward_ad.unpack_dual(f(*duals))
        tangent = 0.0 if out.tangent is None else float(out.tangent)
        return float(out.primal), tangent


#: Value and derivative of each operation written by hand, as the notebook states them.
_ANALYTIC: dict[str, Callable[..., Pair]] = {
    "+": lambda a, da, b, db: (a + b, da + db),
    "-": lambda a, da, b, db: (a - b, da - db),
    "*": lambda a, da, b, db: (a * b, da * b + a * db),
    "/": lambda a, da, b, db: (a / b, (da * b - a * db) / b ** 2),
    "**": lambda a, da, b, db: (a ** b, b * a ** (b - 1) * da + a ** b * math.log(a) * db),
    "cos": lambda a, da: (math.cos(a), -math.sin(a) * da),
    "tan": lambda a, da: (math.tan(a), da / math.cos(a) ** 2),
    "exp": lambda a, da: (math.exp(a), math.exp(a) * da),
}

_TORCH: dict[str, Callable[..., torch.Tensor]] = {
    **core.BINARY_OPERATORS,
    "cos": torch.cos,
    "tan": torch.tan,
    "exp": torch.exp,
}

_OPERATORS = core.BINARY_OPERATORS

#: Typical wrong derivatives, each with the hint a TA would give when a student's matches it.
_MISTAKES: dict[str, list[tuple[Callable[..., float], str]]] = {
    "-": [(lambda a, da, b, db: da + db, "The derivative of a difference is da - db: subtract "
           "the derivatives too.")],
    "/": [
        (lambda a, da, b, db: (da * b - a * db) / b,
         "The quotient rule divides by b squared: (da*b - a*db) / b**2, not by b."),
        (lambda a, da, b, db: (a * db - da * b) / b ** 2,
         "The numerator of the quotient rule has the opposite sign: da*b - a*db."),
    ],
    "**": [
        (lambda a, da, b, db: b * a ** (b - 1) * da,
         "The exponent is a dual number too: add the term a**b * ln(a) * db (the power rule "
         "alone ignores how the exponent changes)."),
        (lambda a, da, b, db: a ** b * math.log(a) * db,
         "Add the power-rule term b * a**(b - 1) * da: the base changes too."),
    ],
    "tan": [(lambda a, da: da / math.sin(a) ** 2,
             "The derivative of tan is 1 / cos(a)**2 (sec squared), not 1 / sin(a)**2.")],
    "cos": [(lambda a, da: math.sin(a) * da,
             "Check the sign: the derivative of cos is -sin.")],
}

#: A derivative that forgot the chain rule: f'(a) alone, as if dvalue were 1.
_CHAIN_RULE = ("Multiply by the input's `dvalue` (the chain rule): f(x) for x = a + da ε is "
               "f(a) + f'(a) da ε.")


def _close(actual: float, expected: float, tolerance: float = TOLERANCE) -> bool:
    return abs(actual - expected) <= tolerance * max(1.0, abs(expected))


def _judge(actual: Pair, references: list[Pair], what: str, hints: list[str]) -> None:
    """The student's (value, dvalue) agree with every reference; a failure says which part and
    adds the hints that fit."""
    for reference in references:
        for part, got, expected in zip(("value", "dvalue (the derivative)"), actual, reference):
            if not _close(got, expected):
                message = (f"{what} gives the wrong {part}: off by {abs(got - expected):.3g} where "
                           f"the expected {part.split()[0]} is of size {abs(expected):.3g}.")
                raise core.CheckFailed(" ".join([message, *hints]))


def _mistake_hints(op: str, args: tuple[float, ...], dvalue: float, one: Pair | None) -> list[str]:
    """The hints of the typical mistakes the student's derivative matches. ``one`` is the
    reference with every input dvalue set to 1 (the value a derivative that skips the chain rule
    gives), when the inputs' dvalue is not 1."""
    hints = [hint for mistake, hint in _MISTAKES.get(op, []) if _close(dvalue, mistake(*args))]
    if one is not None and _close(dvalue, one[1]):
        hints.append(_CHAIN_RULE)
    return hints or ["Use the rule the notebook gives for it."]


def _expect_unchanged(obj: Any, before: Pair, what: str, name: str) -> None:
    if _pair(obj, name) != before:
        raise core.CheckFailed(
            f"{what} changed its operand {name} in place. Return a new DualNumber and leave the "
            "operands as they were (`return DualNumber(...)`, not `self.value += ...`)."
        )


# ---------------------------------------------------------------------------------------------
# Random dual numbers.



#: Per operator: its seed and how its operands are drawn. A power's base is positive (ln a).
_OPERAND_SEEDS = {"+": 2101, "-": 2102, "*": 2103, "/": 2104, "**": 2105}
CASES = 6


def _operands(op: str) -> list[tuple[float, float, float, float]]:
    gen = core.generator(_OPERAND_SEEDS[op])
    a = random_uniform(gen, CASES, 0.5, 2.0) if op == "**" else random_signed(gen, CASES)
    b = random_uniform(gen, CASES, -2.0, 2.0) if op == "**" else random_signed(gen, CASES)
    da, db = random_signed(gen, CASES), random_signed(gen, CASES)
    return list(zip(a, da, b, db))


# ---------------------------------------------------------------------------------------------
# The operators (exercise 1).


def check_operator(DualNumber: Any, op: str) -> None:
    """``x op y`` for random dual numbers x, y: value and derivative against both references,
    plain numbers, and operands left as they were."""
    for a, da, b, db in _operands(op):
        x, y = _make(DualNumber, a, da), _make(DualNumber, b, db)
        what = f"`x {op} y` for dual numbers x = a + da ε and y = b + db ε"
        z = core.attempt(what, lambda: _OPERATORS[op](x, y))
        actual = _pair(z, what)
        references = [_ANALYTIC[op](a, da, b, db),
                      _torch_forward(_TORCH[op], (a, da), (b, db))]
        hints = ([] if _close(actual[1], references[0][1])
                 else _mistake_hints(op, (a, da, b, db), actual[1], None))
        _judge(actual, references, what, hints)
        _expect_unchanged(x, (a, da), what, "x")
        _expect_unchanged(y, (b, db), what, "y")


def check_add(DualNumber: Any) -> None:
    check_operator(DualNumber, "+")


def check_sub(DualNumber: Any) -> None:
    check_operator(DualNumber, "-")


def check_div(DualNumber: Any) -> None:
    check_operator(DualNumber, "/")


def check_pow(DualNumber: Any) -> None:
    check_operator(DualNumber, "**")


#: Expressions of the operators and the given ``sin``, with a variable used twice (x*x, x - x:
#: a correct 0.0 must pass) and operators feeding each other; x > 0 so that it can be a base.
#: Each: the expression as the student reads it, how to build it from (x, y, sin), torch's.
_COMPOSITIONS: list[tuple[str, Callable[..., Any], Callable[..., torch.Tensor]]] = [
    ("x * x", lambda x, y, sin: x * x, lambda x, y: x * x),
    ("x + x", lambda x, y, sin: x + x, lambda x, y: x + x),
    ("x - x", lambda x, y, sin: x - x, lambda x, y: x - x),
    ("x / x", lambda x, y, sin: x / x, lambda x, y: x / x),
    ("x ** y", lambda x, y, sin: x ** y, lambda x, y: x ** y),
    ("(x * y) / (x + y)", lambda x, y, sin: (x * y) / (x + y), lambda x, y: (x * y) / (x + y)),
    ("x * y + sin(x)", lambda x, y, sin: x * y + sin(x), lambda x, y: x * y + torch.sin(x)),
    ("sin(x * y)", lambda x, y, sin: sin(x * y), lambda x, y: torch.sin(x * y)),
    ("sin(x) / y", lambda x, y, sin: sin(x) / y, lambda x, y: torch.sin(x) / y),
    ("x ** sin(y) - y", lambda x, y, sin: x ** sin(y) - y, lambda x, y: x ** torch.sin(y) - y),
]


def check_compositions(DualNumber: Any, sin: Any) -> None:
    """Expressions combining the operators (and the given ``sin``), including a variable used
    twice: each operator's rule must hold wherever its operands come from."""
    sin = core.require_function(sin, "sin")
    gen = core.generator(2106)
    a, b = random_uniform(gen, 3, 0.5, 2.0), random_signed(gen, 3)
    # y stays away from -x, so that x + y (a denominator) is not near zero.
    b = [bi if abs(ai + bi) > 0.25 else -bi for ai, bi in zip(a, b)]
    da, db = random_signed(gen, 3), random_signed(gen, 3)
    for name, student, reference in _COMPOSITIONS:
        for case in zip(a, da, b, db):
            x, y = _make(DualNumber, case[0], case[1]), _make(DualNumber, case[2], case[3])
            what = f"`{name}` for dual numbers x and y"
            actual = _pair(core.attempt(what, lambda: student(x, y, sin)), what)
            expected = _torch_forward(reference, case[:2], case[2:])
            hint = ("Each operator must apply its own rule to whatever dual numbers it gets: "
                    "the product rule d(a*b) = da*b + a*db (the given `__mul__`), the sum and "
                    "difference, the quotient and the power rules.")
            _judge(actual, [expected], what, [hint])


# ---------------------------------------------------------------------------------------------
# The functions (exercise 2).

_FUNCTION_RANGES = {"cos": (-3.0, 3.0), "tan": (-1.2, 1.2), "exp": (-2.0, 2.0)}
_FUNCTION_SEEDS = {"cos": 2201, "tan": 2202, "exp": 2203}


def check_function(DualNumber: Any, fn: Any, name: str) -> None:
    """``name(x)`` for random dual numbers: value and derivative (the original lab checked
    values only), a plain number each, against both references; x left as it was."""
    fn = core.require_function(fn, name)
    gen = core.generator(_FUNCTION_SEEDS[name])
    values = random_uniform(gen, CASES, *_FUNCTION_RANGES[name])
    dvalues = random_signed(gen, CASES)
    for a, da in zip(values, dvalues):
        x = _make(DualNumber, a, da)
        what = f"`{name}(x)` for a dual number x = a + da ε"
        actual = _pair(core.attempt(what, lambda: fn(x)), what)
        references = [_ANALYTIC[name](a, da), _torch_forward(_TORCH[name], (a, da))]
        hints = [] if _close(actual[1], references[0][1]) else _mistake_hints(
            name, (a, da), actual[1], None if _close(da, 1.0) else _ANALYTIC[name](a, 1.0))
        _judge(actual, references, what, hints)
        _expect_unchanged(x, (a, da), f"`{name}(x)`", "x")


def check_cos(DualNumber: Any, cos: Any) -> None:
    check_function(DualNumber, cos, "cos")


def check_tan(DualNumber: Any, tan: Any) -> None:
    check_function(DualNumber, tan, "tan")


def check_exp(DualNumber: Any, exp: Any) -> None:
    check_function(DualNumber, exp, "exp")


def check_function_compositions(DualNumber: Any, sin: Any, cos: Any, tan: Any, exp: Any) -> None:
    """Functions applied to each other's results (the chain rule through several steps), on
    random dual numbers. Only functions: the operators are the first exercise's."""
    functions = {name: core.require_function(fn, name)
                 for name, fn in (("sin", sin), ("cos", cos), ("tan", tan), ("exp", exp))}
    chains = [("cos", "sin"), ("exp", "cos"), ("tan", "sin"), ("sin", "exp"), ("exp", "tan"),
              ("cos", "exp")]
    gen = core.generator(2204)
    values, dvalues = random_uniform(gen, len(chains), -1.2, 1.2), random_signed(gen, len(chains))
    for (outer, inner), a, da in zip(chains, values, dvalues):
        x = _make(DualNumber, a, da)
        what = f"`{outer}({inner}(x))` for a dual number x"
        actual = _pair(core.attempt(what, lambda: functions[outer](functions[inner](x))), what)
        f, g = getattr(torch, outer), getattr(torch, inner)
        expected = _torch_forward(lambda t: f(g(t)), (a, da))
        _judge(actual, [expected], what, [
            "Each function must multiply its own derivative by its input's `dvalue` (the chain "
            "rule), so that functions of functions are differentiated correctly."])


# ---------------------------------------------------------------------------------------------
# The stored results (exercises 3 and 5).


def _z_references() -> list[tuple[float, float, float]]:
    """z = x*y + sin(x) at (X0, Y0), dz/dx and dz/dy: by hand (y + cos x and x), and by torch's
    forward mode seeded once with x, once with y."""
    def z(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return x * y + torch.sin(x)

    value, dzdx = _torch_forward(z, (X0, 1.0), (Y0, 0.0))
    _, dzdy = _torch_forward(z, (X0, 0.0), (Y0, 1.0))
    return [(X0 * Y0 + math.sin(X0), Y0 + math.cos(X0), X0), (value, dzdx, dzdy)]


def _matches(number: float, part: int, tolerance: float = TOLERANCE) -> bool:
    """``number`` agrees with every reference's ``part`` (0: z, 1: dz/dx, 2: dz/dy)."""
    return all(_close(number, reference[part], tolerance) for reference in _z_references())


def check_z_value(z: Any) -> None:
    """``z.value`` is x*y + sin(x) at x = 0.5, y = 4.2."""
    z = core.stored(z, "z")
    value = _read(z, "value", "`z`")
    if not _matches(value, 0):
        raise core.CheckFailed(
            "`z.value` is not x*y + sin(x) at x = 0.5, y = 4.2 (about 2.5794). Build z from "
            "`x = DualNumber(0.5, ...)` and `y = DualNumber(4.2, ...)` as `x * y + sin(x)`."
        )


def check_z_derivative(z: Any) -> None:
    """``z.dvalue`` is dz/dx = y + cos(x) at x = 0.5, y = 4.2: x seeded with dvalue 1, y with 0."""
    z = core.stored(z, "z")
    dvalue = _read(z, "dvalue", "`z`")
    if _matches(dvalue, 1):
        return
    if _matches(dvalue, 2):
        hint = "that is dz/dy: seed x (dvalue 1) and give y dvalue 0 to get dz/dx."
    elif _close(dvalue, Y0 + math.cos(X0) + X0):
        hint = "that is dz/dx + dz/dy: only x gets dvalue 1, y gets 0."
    elif _close(dvalue, 0.0):
        hint = "seed x: `x = DualNumber(0.5, 1.0)` (dx/dx = 1)."
    else:
        hint = "seed x with dvalue 1 and y with dvalue 0."
    raise core.CheckFailed(f"`z.dvalue` is not dz/dx at x = 0.5, y = 4.2 (about 5.0776): {hint}")


def check_dzdy(dzdy: Any) -> None:
    """``dzdy`` is a plain float equal to dz/dy = x = 0.5. The exact value is representable and
    the notebook's computation reaches it exactly (0 * 4.2 + 0.5 * 1 + cos(0.5) * 0); the
    tolerance only forgives another float route to it."""
    dzdy = core.stored(dzdy, "dzdy")
    if not isinstance(dzdy, float):
        raise core.CheckFailed(
            f"`dzdy` is {core.number_kind(dzdy)}; store the derivative itself, a Python float: "
            "the `.dvalue` of z computed with y seeded (not the DualNumber z)."
        )
    if not _matches(dzdy, 2, STORED_TOLERANCE):
        hint = (" That is dz/dx: seed y instead (dvalue 1) and give x dvalue 0."
                if _matches(dzdy, 1) else
                " Seed y with dvalue 1 and x with dvalue 0, then read z's dvalue.")
        raise core.CheckFailed(f"`dzdy` is not dz/dy at x = 0.5, y = 4.2.{hint}")
