"""Answer variants for 2.1 (forward mode with dual numbers): typical mistakes and correct
alternatives, as in Lab 1's answers.py files (docs/instructors.md, "Answer banks").

Each source is run after the master's own code (its solutions included), in the notebook's
namespace (``math``, ``DualNumber``, ``sin``, ... defined), and redefines its question's names, so
that every other question keeps the master's answer: a wrong variant must lose points in its own
question only (tests/test_lab2_content.py).
"""

#: The given class with the student's methods as in the master; a variant replaces some of them.
_METHODS = {
    "__mul__": "return DualNumber(self.value * other.value,\n"
               "                  self.dvalue * other.value + self.value * other.dvalue)",
    "__add__": "return DualNumber(self.value + other.value, self.dvalue + other.dvalue)",
    "__sub__": "return DualNumber(self.value - other.value, self.dvalue - other.dvalue)",
    "__truediv__": "a, da, b, db = self.value, self.dvalue, other.value, other.dvalue\n"
                   "return DualNumber(a / b, (da * b - a * db) / b ** 2)",
    "__pow__": "a, da, b, db = self.value, self.dvalue, other.value, other.dvalue\n"
               "return DualNumber(a ** b, b * a ** (b - 1) * da + a ** b * math.log(a) * db)",
}


def _dual_class(**replaced: str) -> str:
    """The source of ``class DualNumber`` with the methods in ``replaced`` (by name without the
    underscores: ``add=...``) written as given."""
    methods = {**_METHODS, **{f"__{name}__": body for name, body in replaced.items()}}
    lines = ["class DualNumber:",
             "    def __init__(self, value, dvalue):",
             "        self.value = value",
             "        self.dvalue = dvalue",
             "    def __str__(self):",
             "        return f'{self.value} + {self.dvalue}e'"]
    for name, body in methods.items():
        lines.append(f"    def {name}(self, other):")
        lines.extend("        " + line for line in body.splitlines())
    return "\n".join(lines) + "\n"


_FUNCTIONS = {
    "cos": "DualNumber(math.cos(x.value), -math.sin(x.value) * x.dvalue)",
    "tan": "DualNumber(math.tan(x.value), x.dvalue / math.cos(x.value) ** 2)",
    "exp": "DualNumber(math.exp(x.value), math.exp(x.value) * x.dvalue)",
}


def _functions(**replaced: str) -> str:
    """``cos``, ``tan`` and ``exp`` as in the master, with the returns in ``replaced``."""
    chosen = {**_FUNCTIONS, **replaced}
    return "".join(f"def {name}(x):\n    return {body}\n" for name, body in chosen.items())


WRONG = {
    "dual_operators": {
        "product_rule_sign_error": _dual_class(mul=(
            "return DualNumber(self.value * other.value,\n"
            "                  self.dvalue * other.value - self.value * other.dvalue)")),
        "sub_adds_derivatives": _dual_class(sub=(
            "return DualNumber(self.value - other.value, self.dvalue + other.dvalue)")),
        "quotient_rule_without_b_squared": _dual_class(truediv=(
            "a, da, b, db = self.value, self.dvalue, other.value, other.dvalue\n"
            "return DualNumber(a / b, (da * b - a * db) / b)")),
        "quotient_rule_numerator_swapped": _dual_class(truediv=(
            "a, da, b, db = self.value, self.dvalue, other.value, other.dvalue\n"
            "return DualNumber(a / b, (a * db - da * b) / b ** 2)")),
        "pow_ignores_ln_term": _dual_class(pow=(
            "a, da, b, db = self.value, self.dvalue, other.value, other.dvalue\n"
            "return DualNumber(a ** b, b * a ** (b - 1) * da)")),
        "add_changes_self_in_place": _dual_class(add=(
            "self.value += other.value\n"
            "self.dvalue += other.dvalue\n"
            "return self")),
        "add_returns_a_tuple": _dual_class(add=(
            "return (self.value + other.value, self.dvalue + other.dvalue)")),
    },
    "dual_functions": {
        "tan_derivative_one_over_sin_squared": _functions(
            tan="DualNumber(math.tan(x.value), x.dvalue / math.sin(x.value) ** 2)"),
        "cos_derivative_plus_sin": _functions(
            cos="DualNumber(math.cos(x.value), math.sin(x.value) * x.dvalue)"),
        "exp_without_chain_rule": _functions(exp="DualNumber(math.exp(x.value), math.exp(x.value))"),
        "cos_returns_a_float": _functions(cos="math.cos(x.value)"),
    },
    "z_and_dzdx": {
        "y_seeded_not_x": "x = DualNumber(0.5, 0.0)\ny = DualNumber(4.2, 1.0)\nz = x * y + sin(x)\n",
        "nothing_seeded": "x = DualNumber(0.5, 0.0)\ny = DualNumber(4.2, 0.0)\nz = x * y + sin(x)\n",
        "sin_of_y": "x = DualNumber(0.5, 1.0)\ny = DualNumber(4.2, 0.0)\nz = x * y + sin(y)\n",
    },
    "dzdy": {
        "x_seeded": "dzdy = (DualNumber(0.5, 1.0) * DualNumber(4.2, 0.0) + sin(DualNumber(0.5, 1.0))).dvalue\n",
        "the_dual_number_not_its_derivative": (
            "x, y = DualNumber(0.5, 0.0), DualNumber(4.2, 1.0)\ndzdy = x * y + sin(x)\n"),
        "both_seeded": (
            "x, y = DualNumber(0.5, 1.0), DualNumber(4.2, 1.0)\ndzdy = (x * y + sin(x)).dvalue\n"),
        "value_not_derivative": (
            "x, y = DualNumber(0.5, 0.0), DualNumber(4.2, 1.0)\ndzdy = (x * y + sin(x)).value\n"),
    },
}

CORRECT = {
    "dual_operators": {
        "pow_through_exp_and_log": _dual_class(pow=(
            "a, da, b, db = self.value, self.dvalue, other.value, other.dvalue\n"
            "p = math.exp(b * math.log(a))\n"
            "return DualNumber(p, p * (b * da / a + math.log(a) * db))")),
        "quotient_as_two_terms": _dual_class(truediv=(
            "a, da, b, db = self.value, self.dvalue, other.value, other.dvalue\n"
            "return DualNumber(a / b, da / b - a * db / (b * b))")),
        "sub_as_add_of_negation": _dual_class(sub=(
            "return self + DualNumber(-other.value, -other.dvalue)")),
        "operators_accepting_plain_numbers": _dual_class(
            add=("other = other if isinstance(other, DualNumber) else DualNumber(other, 0.0)\n"
                 "return DualNumber(self.value + other.value, self.dvalue + other.dvalue)"),
            pow=("if not isinstance(other, DualNumber):\n"
                 "    return DualNumber(self.value ** other, other * self.value ** (other - 1) * self.dvalue)\n"
                 "a, da, b, db = self.value, self.dvalue, other.value, other.dvalue\n"
                 "return DualNumber(a ** b, b * a ** (b - 1) * da + a ** b * math.log(a) * db)")),
    },
    "dual_functions": {
        "tan_derivative_one_plus_tan_squared": _functions(
            tan="DualNumber(math.tan(x.value), (1 + math.tan(x.value) ** 2) * x.dvalue)"),
        "exp_as_power_of_e": _functions(exp="DualNumber(math.e ** x.value, math.e ** x.value * x.dvalue)"),
        "cos_through_the_given_sin": _functions(
            cos="sin(DualNumber(math.pi / 2 - x.value, -x.dvalue))"),
    },
    "z_and_dzdx": {
        "terms_in_another_order": "x = DualNumber(0.5, 1.0)\ny = DualNumber(4.2, 0.0)\nz = sin(x) + y * x\n",
    },
    "dzdy": {
        "rebuilt_with_new_names": (
            "a, b = DualNumber(0.5, 0.0), DualNumber(4.2, 1.0)\ndzdy = float((a * b + sin(a)).dvalue)\n"),
    },
}

#: Wrong variants that must lose exactly the points of these hidden tests (by the test's name after
#: the question's): a mistake of one operator or function costs that one's point.
FAILS = {
    "dual_operators": {
        "product_rule_sign_error": {"compositions"},
        "sub_adds_derivatives": {"sub", "compositions"},
        "quotient_rule_without_b_squared": {"div", "compositions"},
        "quotient_rule_numerator_swapped": {"div", "compositions"},
        "pow_ignores_ln_term": {"pow", "compositions"},
        "add_changes_self_in_place": {"add"},
        "add_returns_a_tuple": {"add", "compositions"},
    },
    "dual_functions": {
        "tan_derivative_one_over_sin_squared": {"tan", "compositions"},
        "cos_derivative_plus_sin": {"cos", "compositions"},
        "exp_without_chain_rule": {"exp", "compositions"},
        "cos_returns_a_float": {"cos", "compositions"},
    },
    "z_and_dzdx": {
        "y_seeded_not_x": {"derivative"},
        "nothing_seeded": {"derivative"},
        "sin_of_y": {"value", "derivative"},
    },
    "dzdy": {name: {"value"} for name in WRONG["dzdy"]},
}

#: The words a TA would use for each wrong answer: the messages of its failed hidden tests must
#: contain each of them (case-insensitive).
WORDS = {
    "dual_operators": {
        "product_rule_sign_error": ("product rule",),
        "sub_adds_derivatives": ("da - db",),
        "quotient_rule_without_b_squared": ("b squared",),
        "quotient_rule_numerator_swapped": ("opposite sign",),
        "pow_ignores_ln_term": ("ln(a)",),
        "add_changes_self_in_place": ("in place",),
        "add_returns_a_tuple": ("should be a DualNumber",),
    },
    "dual_functions": {
        "tan_derivative_one_over_sin_squared": ("1 / cos(a)**2",),
        "cos_derivative_plus_sin": ("sign",),
        "exp_without_chain_rule": ("chain rule",),
        "cos_returns_a_float": ("should be a DualNumber",),
    },
    "z_and_dzdx": {
        "y_seeded_not_x": ("dz/dy",),
        "nothing_seeded": ("seed x",),
        "sin_of_y": ("x*y + sin(x)",),
    },
    "dzdy": {
        "x_seeded": ("dz/dx", "seed y"),
        "the_dual_number_not_its_derivative": ("python float",),
        "both_seeded": ("seed y",),
        "value_not_derivative": ("seed y",),
    },
}
