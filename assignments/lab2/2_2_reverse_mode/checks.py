"""Hidden checks of assignment 2.2 (reverse-mode automatic differentiation with ``Var``).

The answers are a class (``Var``), functions of ``Var`` and stored floats, all living in the
student's notebook. The grader reaches them through handles: it can construct the class, combine
instances with operators, call methods and the notebook's functions and read attributes, and gets
plain numbers back (it cannot set attributes, hence the given ``z.seed()``). So every check here
builds its own graphs from random values (drawn under the grading key, ``core.generator``), seeds
the output, asks each input for ``.grad()``, makes sure the numbers are real numbers, and compares
them in float64 with two independent references: the derivative written by hand (``_ANALYTIC``)
and torch's own reverse-mode autograd, computed here.

Graphs are chosen to probe what a reverse pass must get right: a variable used twice (x * x,
sin(x) * x) sums both paths, a shared subexpression (s = x * y; z = s * s + s) is counted once per
path, and the answer does not depend on the order in which children were recorded.

The release copies this file into the autograder zip as ``labkit/checks/reverse_mode.py``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch

from labkit.checks import core
from labkit.checks.graded import random_signed, random_uniform

#: Every correct answer computes a value or a gradient with a few float64 operations on inputs of
#: size 0.5 to 2, each rounding by at most 2**-53 (1.1e-16) relative; equivalent formulas (a**b
#: as exp(b ln a), 1/cos^2 as 1 + tan^2, gradients summed in another order) differ by at most
#: about 100 ulps of terms below 100, about 1e-12. A wrong local derivative or a lost path is off
#: by 1e-2 or more on some of a check's random inputs (a wrong formula agrees with the right one
#: only on a thin set, such as b = 1 for a quotient without b^2 or a = pi/4 for tan' as 1/sin^2,
#: near which a check's draws do not all fall). 1e-9, relative to the expected size with
#: a floor of 1, lies between with a thousandfold margin above the first and ten millionfold below
#: the second.
TOLERANCE = 1e-9
#: The stored results are judged against their exact values: 0.5 and 1.5 are floats, and the
#: notebook's reverse pass reaches them exactly (dz/dy = 0.5 * 1 * 1.0; the algorithm's gradient
#: sums products of 0.5, 0.25, 1 and 1.25, all sums of powers of two). 1e-12 only forgives another
#: float route to them (a few ulps).
STORED_TOLERANCE = 1e-12

#: The point the notebook evaluates z = x*y + sin(x) at, and the algorithm's x, as it states them.
X0, Y0 = 0.5, 4.2
ALGORITHM_X = 0.5

# ---------------------------------------------------------------------------------------------
# Reading the student's objects.


#: Where the numbers a check reads come from, for the message when one is not a plain number,
#: and what a None most likely means.
_NUMBERS = ("Values and gradients are Python numbers (results of `math` functions and of `+ - * /` "
            "on floats), not Vars, tensors or tuples.")
_NONE = "did you forget `return`, or to call `.grad()`?"


def _number(value: Any, what: str) -> float:
    """``value`` as a float, once it is known to be a real number: an int or a float (not a bool,
    a tensor or a Var), and finite. A gradient may be the int 0 (``sum`` of no children)."""
    return core.plain_number(value, what, _NUMBERS, _NONE)


def _value(var: Any, what: str) -> float:
    if var is None:
        raise core.CheckFailed(f"{what} gave None: return the new Var (did you forget `return`?).")
    value = core.attempt(f"Reading `.value` of {what} (it should be a Var)", lambda: var.value)
    return _number(value, f"`.value` of {what}")


def _grad(var: Any, name: str, what: str) -> float:
    """``var.grad()``: dz/d``name`` once the output z of ``what`` is seeded."""
    result = core.attempt(f"`{name}.grad()` for {what}", lambda: var.grad())
    return _number(result, f"`{name}.grad()` for {what}")


def _make(Var: Any, value: float) -> Any:
    if isinstance(Var, core.MissingName):
        raise core.CheckFailed(Var.absent("class named `Var`",
                                          "Run the cell that defines it, and keep its name."))
    Var = core.require_function(Var, "Var")
    return core.attempt("`Var(value)`", lambda: Var(value))


def _seed(z: Any, what: str) -> None:
    core.attempt(f"`z.seed()` for {what} (the given method that sets dz/dz = 1)",
                 lambda: z.seed())


def _close(actual: float, expected: float, tolerance: float = TOLERANCE) -> bool:
    return abs(actual - expected) <= tolerance * max(1.0, abs(expected))


def _mismatch(actual: float, expected: float, what: str) -> str:
    return (f"{what} is wrong: off by {abs(actual - expected):.3g} where the expected number is "
            f"of size {abs(expected):.3g}.")


# ---------------------------------------------------------------------------------------------
# References: by hand, and torch's reverse-mode autograd.


def _torch_reverse(f: Callable[..., torch.Tensor], *values: float) -> tuple[float, list[float]]:
    """(value, gradient with respect to each input) of ``f``, by torch's autograd in float64."""
    inputs = [torch.tensor(v, dtype=torch.float64, requires_grad=True) for v in values]
    out = f(*inputs)
    grads = torch.autograd.grad(out, inputs, allow_unused=True)
    return float(out.detach()), [0.0 if g is None else float(g) for g in grads]


#: Value and partial derivatives of each operation written by hand, as the notebook states them.
_ANALYTIC: dict[str, Callable[..., tuple[float, list[float]]]] = {
    "+": lambda a, b: (a + b, [1.0, 1.0]),
    "-": lambda a, b: (a - b, [1.0, -1.0]),
    "*": lambda a, b: (a * b, [b, a]),
    "/": lambda a, b: (a / b, [1 / b, -a / b ** 2]),
    "**": lambda a, b: (a ** b, [b * a ** (b - 1), a ** b * math.log(a)]),
    "cos": lambda a: (math.cos(a), [-math.sin(a)]),
    "tan": lambda a: (math.tan(a), [1 / math.cos(a) ** 2]),
    "exp": lambda a: (math.exp(a), [math.exp(a)]),
}

_TORCH: dict[str, Callable[..., torch.Tensor]] = {
    **core.BINARY_OPERATORS,
    "cos": torch.cos,
    "tan": torch.tan,
    "exp": torch.exp,
}

_OPERATORS = core.BINARY_OPERATORS

#: Typical wrong local derivatives (per input), each with the hint a TA would give when the
#: student's gradient matches it.
_MISTAKES: dict[str, list[tuple[int, Callable[..., float], str]]] = {
    "+": [(1, lambda a, b: 0.0, "Record the child in both operands: `other.children.append((1.0, "
           "z))` too.")],
    "-": [(1, lambda a, b: 1.0, "The local derivative of a - b with respect to b is -1."),
          (0, lambda a, b: -1.0, "The local derivative of a - b with respect to a is 1 and with "
           "respect to b is -1 (not the other way round).")],
    "/": [(1, lambda a, b: -a / b, "The local derivative of a / b with respect to b is -a / b**2 "
           "(b squared)."),
          (1, lambda a, b: a / b ** 2, "Check the sign: d(a/b)/db = -a / b**2.")],
    "**": [(1, lambda a, b: 0.0, "The exponent is a Var too: record a**b * ln(a) for it."),
           (1, lambda a, b: b * a ** (b - 1), "The local derivative with respect to the exponent "
            "is a**b * ln(a).")],
    "tan": [(0, lambda a: 1 / math.sin(a) ** 2,
             "The derivative of tan is 1 / cos(a)**2 (sec squared), not 1 / sin(a)**2.")],
    "cos": [(0, lambda a: math.sin(a), "Check the sign: the derivative of cos is -sin.")],
}

_NOT_RECORDED = ("Record the local derivative in the input's children: "
                 "`x.children.append((local_derivative, z))`, as the given `sin` does.")


def _hints(op: str, which: int, args: tuple[float, ...], got: float) -> list[str]:
    hints = [hint for index, mistake, hint in _MISTAKES.get(op, [])
             if index == which and _close(got, mistake(*args))]
    if not hints and _close(got, 0.0):
        hints.append(_NOT_RECORDED)
    return hints or ["Use the local derivative the notebook gives for it."]


# ---------------------------------------------------------------------------------------------
# Random inputs.



_OPERAND_SEEDS = {"+": 2301, "-": 2302, "*": 2303, "/": 2304, "**": 2305}
CASES = 6


def _operands(op: str) -> list[tuple[float, float]]:
    """A power's base is positive (ln a)."""
    gen = core.generator(_OPERAND_SEEDS[op])
    a = random_uniform(gen, CASES, 0.5, 2.0) if op == "**" else random_signed(gen, CASES)
    b = random_uniform(gen, CASES, -2.0, 2.0) if op == "**" else random_signed(gen, CASES)
    return list(zip(a, b))


# ---------------------------------------------------------------------------------------------
# The operators (exercise 1).


def check_operator(Var: Any, op: str) -> None:
    """``z = x op y`` for random Vars: z's value and, once z is seeded, ``x.grad()`` and
    ``y.grad()``, plain numbers, against both references."""
    for a, b in _operands(op):
        x, y = _make(Var, a), _make(Var, b)
        what = f"z = x {op} y"
        z = core.attempt(f"`x {op} y` for Vars x and y", lambda: _OPERATORS[op](x, y))
        value = _value(z, f"`x {op} y`")
        references = [_ANALYTIC[op](a, b), _torch_reverse(_TORCH[op], a, b)]
        for expected, _ in references:
            if not _close(value, expected):
                raise core.CheckFailed(_mismatch(value, expected, f"The value of `x {op} y`"))
        _seed(z, what)
        for which, (var, name) in enumerate(((x, "x"), (y, "y"))):
            got = _grad(var, name, what)
            for _, grads in references:
                if not _close(got, grads[which]):
                    raise core.CheckFailed(" ".join([
                        _mismatch(got, grads[which], f"`{name}.grad()` for {what}"),
                        *_hints(op, which, (a, b), got)]))


def check_add(Var: Any) -> None:
    check_operator(Var, "+")


def check_sub(Var: Any) -> None:
    check_operator(Var, "-")


def check_div(Var: Any) -> None:
    check_operator(Var, "/")


def check_pow(Var: Any) -> None:
    check_operator(Var, "**")


Graph = tuple[str, Callable[..., Any], Callable[..., torch.Tensor]]

#: A variable used twice: its gradient sums both paths (x - x and x / x: a correct 0.0 passes).
_USED_TWICE: list[Graph] = [
    ("z = x * x", lambda x, y, sin: x * x, lambda x, y: x * x),
    ("z = x + x", lambda x, y, sin: x + x, lambda x, y: x + x),
    ("z = x - x", lambda x, y, sin: x - x, lambda x, y: x - x),
    ("z = x / x", lambda x, y, sin: x / x, lambda x, y: x / x),
    ("z = x ** x", lambda x, y, sin: x ** x, lambda x, y: x ** x),
    ("z = sin(x) * x", lambda x, y, sin: sin(x) * x, lambda x, y: torch.sin(x) * x),
    ("z = x * y + x", lambda x, y, sin: x * y + x, lambda x, y: x * y + x),
    ("z = x * y + sin(x)", lambda x, y, sin: x * y + sin(x), lambda x, y: x * y + torch.sin(x)),
]


def _diamond_s_s_plus_s(x: Any, y: Any, sin: Any) -> Any:
    s = x * y
    return s * s + s


def _diamond_sin_s_over_s(x: Any, y: Any, sin: Any) -> Any:
    s = x + y
    return sin(s) / s


def _diamond_two_branches(x: Any, y: Any, sin: Any) -> Any:
    s = x * y
    return (s + x) * (s - y)


#: A shared subexpression s feeding z by two paths (a diamond): each path counted once.
_DIAMONDS: list[Graph] = [
    ("s = x * y, z = s * s + s", _diamond_s_s_plus_s,
     lambda x, y: (x * y) * (x * y) + x * y),
    ("s = x + y, z = sin(s) / s", _diamond_sin_s_over_s,
     lambda x, y: torch.sin(x + y) / (x + y)),
    ("s = x * y, z = (s + x) * (s - y)", _diamond_two_branches,
     lambda x, y: (x * y + x) * (x * y - y)),
]


def _orders_of_s_s_plus_s(x: Any, y: Any, sin: Any) -> Any:
    s = y * x
    return s + s * s


def _orders_sin_first(x: Any, y: Any, sin: Any) -> Any:
    first = sin(x)
    return first + y * x


#: The same functions as above with operands and terms recorded in other orders.
_REORDERED: list[Graph] = [
    ("z = sin(x) + y * x (x * y + sin(x) built in another order)", _orders_sin_first,
     lambda x, y: x * y + torch.sin(x)),
    ("s = y * x, z = s + s * s (s * s + s built in another order)", _orders_of_s_s_plus_s,
     lambda x, y: (x * y) * (x * y) + x * y),
    ("z = x + y * x (x * y + x built in another order)", lambda x, y, sin: x + y * x,
     lambda x, y: x * y + x),
    ("z = x * sin(x) (sin(x) * x built in another order)", lambda x, y, sin: x * sin(x),
     lambda x, y: torch.sin(x) * x),
]


def _check_graphs(Var: Any, sin: Any, graphs: list[Graph], seed: int, hint: str) -> None:
    sin = core.require_function(sin, "sin")
    gen = core.generator(seed)
    # x > 0 so that it can be a base; y away from -x so that x + y (a denominator) is not 0.
    a, b = random_uniform(gen, 3, 0.5, 2.0), random_signed(gen, 3)
    b = [bi if abs(ai + bi) > 0.25 else -bi for ai, bi in zip(a, b)]
    for name, student, reference in graphs:
        for case in zip(a, b):
            x, y = _make(Var, case[0]), _make(Var, case[1])
            what = name
            z = core.attempt(f"`{name}` for Vars x and y", lambda: student(x, y, sin))
            value, grads = _torch_reverse(reference, *case)
            got = _value(z, f"`{name}`")
            if not _close(got, value):
                raise core.CheckFailed(_mismatch(got, value, f"The value of `{name}`"))
            _seed(z, what)
            for var, var_name, expected in ((x, "x", grads[0]), (y, "y", grads[1])):
                got = _grad(var, var_name, what)
                if not _close(got, expected):
                    raise core.CheckFailed(
                        _mismatch(got, expected, f"`{var_name}.grad()` for {what}") + " " + hint)


def check_used_twice(Var: Any, sin: Any) -> None:
    """A variable used twice (x * x, x - x, sin(x) * x, ...): its gradient sums both paths."""
    _check_graphs(Var, sin, _USED_TWICE, 2306,
                  "A variable used in several places gets the sum of the derivatives through each "
                  "of them: every use must record its own child, with the local derivative of the "
                  "table, and `grad` must add up weight * child.grad() over all children (not keep "
                  "only one).")


def check_diamond(Var: Any, sin: Any) -> None:
    """A shared subexpression (s = x * y; z = s * s + s): each path through s counted once."""
    _check_graphs(Var, sin, _DIAMONDS, 2307,
                  "A shared intermediate s reaches z by several paths: s's gradient sums them, and "
                  "x and y get theirs through s, each operation recording the local derivatives of "
                  "the table (each path counted once: cache `grad_value` or recompute, but do not "
                  "add a path twice).")


def check_order(Var: Any, sin: Any) -> None:
    """The same functions built with operands and terms in other orders: the gradients must not
    depend on the order in which children were recorded."""
    _check_graphs(Var, sin, _REORDERED, 2308,
                  "The gradient must not depend on the order in which expressions were built: "
                  "sum over all children, whatever their order.")


# ---------------------------------------------------------------------------------------------
# The functions (exercise 2).

_FUNCTION_RANGES = {"cos": (-3.0, 3.0), "tan": (-1.2, 1.2), "exp": (-2.0, 2.0)}
_FUNCTION_SEEDS = {"cos": 2401, "tan": 2402, "exp": 2403}


def check_function(Var: Any, fn: Any, name: str) -> None:
    """``z = name(x)`` for random Vars: z's value, and ``x.grad()`` once z is seeded (the
    original lab checked values only), against both references."""
    fn = core.require_function(fn, name)
    for a in random_uniform(core.generator(_FUNCTION_SEEDS[name]), CASES, *_FUNCTION_RANGES[name]):
        x = _make(Var, a)
        what = f"z = {name}(x)"
        z = core.attempt(f"`{name}(x)` for a Var x", lambda: fn(x))
        value = _value(z, f"`{name}(x)`")
        references = [_ANALYTIC[name](a), _torch_reverse(_TORCH[name], a)]
        for expected, _ in references:
            if not _close(value, expected):
                raise core.CheckFailed(_mismatch(value, expected, f"The value of `{name}(x)`"))
        _seed(z, what)
        got = _grad(x, "x", what)
        for _, (expected,) in references:
            if not _close(got, expected):
                raise core.CheckFailed(" ".join([_mismatch(got, expected, f"`x.grad()` for {what}"),
                                                 *_hints(name, 0, (a,), got)]))


def check_cos(Var: Any, cos: Any) -> None:
    check_function(Var, cos, "cos")


def check_tan(Var: Any, tan: Any) -> None:
    check_function(Var, tan, "tan")


def check_exp(Var: Any, exp: Any) -> None:
    check_function(Var, exp, "exp")


def check_function_compositions(Var: Any, sin: Any, cos: Any, tan: Any, exp: Any) -> None:
    """Functions applied to each other's results: the gradient flows back through several
    recorded steps. Only functions: the operators are the first exercise's."""
    functions = {name: core.require_function(fn, name)
                 for name, fn in (("sin", sin), ("cos", cos), ("tan", tan), ("exp", exp))}
    chains = [("cos", "sin"), ("exp", "cos"), ("tan", "sin"), ("sin", "exp"), ("exp", "tan"),
              ("cos", "exp")]
    points = random_uniform(core.generator(2404), len(chains), -1.2, 1.2)
    for (outer, inner), a in zip(chains, points):
        x = _make(Var, a)
        what = f"z = {outer}({inner}(x))"
        z = core.attempt(f"`{outer}({inner}(x))` for a Var x",
                         lambda: functions[outer](functions[inner](x)))
        f, g = getattr(torch, outer), getattr(torch, inner)
        value, (expected,) = _torch_reverse(lambda t: f(g(t)), a)
        got = _value(z, f"`{outer}({inner}(x))`")
        if not _close(got, value):
            raise core.CheckFailed(_mismatch(got, value, f"The value of `{outer}({inner}(x))`"))
        _seed(z, what)
        got = _grad(x, "x", what)
        if not _close(got, expected):
            raise core.CheckFailed(
                _mismatch(got, expected, f"`x.grad()` for {what}") + " Each function must record "
                "its local derivative in its input's children, so that the gradient flows back "
                "through functions of functions.")


# ---------------------------------------------------------------------------------------------
# The stored results (exercises 3 and 5).


def _plain_float(value: Any, name: str, how: str) -> float:
    value = core.stored(value, name)
    if not isinstance(value, float):
        raise core.CheckFailed(f"`{name}` is {core.number_kind(value, _NONE)}; store the "
                               f"derivative itself, a Python float: {how}.")
    return value


def check_dzdy(dzdy: Any) -> None:
    """``dzdy`` is a plain float equal to dz/dy = x = 0.5 for z = x*y + sin(x) at (0.5, 4.2)."""
    dzdy = _plain_float(dzdy, "dzdy", "what `y.grad()` returns once z is seeded")
    _, (dzdx, expected) = _torch_reverse(lambda x, y: x * y + torch.sin(x), X0, Y0)
    for reference in (X0, expected):
        if not _close(dzdy, reference, STORED_TOLERANCE):
            hint = (" That is dz/dx: ask y, not x (`y.grad()`)." if _close(dzdy, dzdx)
                    else " Seed z (`z.seed()`), then ask `y.grad()`.")
            raise core.CheckFailed(f"`dzdy` is not dz/dy at x = 0.5, y = 4.2.{hint}")


def check_algorithm_grad(grad: Any) -> None:
    """``grad`` is a plain float equal to dz/dx = 4x^3 + 2x = 1.5 for the algorithm at x = 0.5
    (z = x^4 + x^2), by hand and by torch running the same loop."""
    grad = _plain_float(grad, "grad", "what `x.grad()` returns once the final z is seeded")

    def algorithm(x: torch.Tensor) -> torch.Tensor:
        z = torch.tensor(1.0, dtype=torch.float64)
        for i in range(2):
            z = (z + i) * x * x
        return z

    _, (by_torch,) = _torch_reverse(algorithm, ALGORITHM_X)
    by_hand = 4 * ALGORITHM_X ** 3 + 2 * ALGORITHM_X
    for reference in (by_hand, by_torch):
        if not _close(grad, reference, STORED_TOLERANCE):
            hint = (" That is dz/dz (the seed), or the derivative of x**2 alone: run the whole "
                    "loop (i = 0 and 1), seed the final z and store `x.grad()`."
                    if _close(grad, 1.0) else
                    " Run the loop on Vars from a fresh `x = Var(0.5)`, seed the final z "
                    "(`z.seed()`), then store `x.grad()`.")
            raise core.CheckFailed(f"`grad` is not dz/dx of the algorithm at x = 0.5.{hint}")
