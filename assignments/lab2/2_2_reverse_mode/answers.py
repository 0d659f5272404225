"""Answer variants for 2.2 (reverse mode with ``Var``): typical mistakes and correct
alternatives, as in Lab 1's answers.py files (docs/instructors.md, "Answer banks").

Each source is run after the master's own code (its solutions included), in the notebook's
namespace (``math``, ``Var``, ``sin``, ... defined), and redefines its question's names, so that
every other question keeps the master's answer: a wrong variant must lose points in its own
question only (tests/test_lab2_content.py).
"""

#: The given class with the student's methods as in the master; a variant replaces some of them.
_METHODS = {
    "grad": ("(self)", "if self.grad_value is None:\n"
                       "    self.grad_value = sum(w * child.grad() for w, child in self.children)\n"
                       "return self.grad_value"),
    "seed": ("(self)", "self.grad_value = 1.0"),
    "__mul__": ("(self, other)", "z = Var(self.value * other.value)\n"
                                 "self.children.append((other.value, z))\n"
                                 "other.children.append((self.value, z))\n"
                                 "return z"),
    "__add__": ("(self, other)", "z = Var(self.value + other.value)\n"
                                 "self.children.append((1.0, z))\n"
                                 "other.children.append((1.0, z))\n"
                                 "return z"),
    "__sub__": ("(self, other)", "z = Var(self.value - other.value)\n"
                                 "self.children.append((1.0, z))\n"
                                 "other.children.append((-1.0, z))\n"
                                 "return z"),
    "__truediv__": ("(self, other)", "a, b = self.value, other.value\n"
                                     "z = Var(a / b)\n"
                                     "self.children.append((1 / b, z))\n"
                                     "other.children.append((-a / b ** 2, z))\n"
                                     "return z"),
    "__pow__": ("(self, other)", "a, b = self.value, other.value\n"
                                 "z = Var(a ** b)\n"
                                 "self.children.append((b * a ** (b - 1), z))\n"
                                 "other.children.append((a ** b * math.log(a), z))\n"
                                 "return z"),
}


def _var_class(**replaced: str) -> str:
    """The source of ``class Var`` with the bodies of the methods in ``replaced`` (by name without
    the underscores: ``add=...``, ``grad=...``) written as given."""
    methods = {name: body for name, (_, body) in _METHODS.items()}
    for name, body in replaced.items():
        methods[name if name in methods else f"__{name}__"] = body
    lines = ["class Var:",
             "    def __init__(self, value):",
             "        self.value = value",
             "        self.children = []",
             "        self.grad_value = None",
             "    def __str__(self):",
             "        return f'Var({self.value})'"]
    for name, body in methods.items():
        lines.append(f"    def {name}{_METHODS[name][0]}:")
        lines.extend("        " + line for line in body.splitlines())
    return "\n".join(lines) + "\n"


_FUNCTIONS = {
    "cos": ("math.cos(x.value)", "-math.sin(x.value)"),
    "tan": ("math.tan(x.value)", "1 / math.cos(x.value) ** 2"),
    "exp": ("math.exp(x.value)", "math.exp(x.value)"),
}


def _functions(**replaced: tuple[str, str]) -> str:
    """``cos``, ``tan`` and ``exp`` as in the master, with (value, local derivative) replaced."""
    chosen = {**_FUNCTIONS, **replaced}
    return "".join(f"def {name}(x):\n    z = Var({value})\n"
                   f"    x.children.append(({weight}, z))\n    return z\n"
                   for name, (value, weight) in chosen.items())


#: The algorithm of exercise 5 up to the loop, on Vars.
_LOOP = ("x = Var(0.5)\nz = Var(1.0)\nfor i in range(2):\n"
         "    z = (z + Var(float(i))) * x * x\n")

WRONG = {
    "var_operators": {
        "grad_overwrites_instead_of_summing": _var_class(grad=(
            "if self.grad_value is None:\n"
            "    for w, child in self.children:\n"
            "        self.grad_value = w * child.grad()\n"
            "    if self.grad_value is None:\n"
            "        self.grad_value = 0.0\n"
            "return self.grad_value")),
        "sub_weights_swapped": _var_class(sub=(
            "z = Var(self.value - other.value)\n"
            "self.children.append((-1.0, z))\n"
            "other.children.append((1.0, z))\n"
            "return z")),
        "quotient_without_b_squared": _var_class(truediv=(
            "a, b = self.value, other.value\n"
            "z = Var(a / b)\n"
            "self.children.append((1 / b, z))\n"
            "other.children.append((-a / b, z))\n"
            "return z")),
        "pow_ignores_ln_term": _var_class(pow=(
            "a, b = self.value, other.value\n"
            "z = Var(a ** b)\n"
            "self.children.append((b * a ** (b - 1), z))\n"
            "return z")),
        "add_records_self_only": _var_class(add=(
            "z = Var(self.value + other.value)\n"
            "self.children.append((1.0, z))\n"
            "return z")),
        "add_keeps_one_child_per_var": _var_class(add=(
            "z = Var(self.value + other.value)\n"
            "self.children = [(1.0, z)]\n"
            "other.children = other.children + [(1.0, z)]\n"
            "return z")),
    },
    "var_functions": {
        "tan_derivative_one_over_sin_squared": _functions(
            tan=("math.tan(x.value)", "1 / math.sin(x.value) ** 2")),
        "cos_derivative_plus_sin": _functions(cos=("math.cos(x.value)", "math.sin(x.value)")),
        "exp_records_in_the_result": (
            _functions() + "def exp(x):\n    z = Var(math.exp(x.value))\n"
            "    z.children.append((math.exp(x.value), x))\n    return z\n"),
    },
    "dzdy": {
        "dz_dx_instead": "x, y = Var(0.5), Var(4.2)\nz = x * y + sin(x)\nz.seed()\ndzdy = x.grad()\n",
        "the_var_not_its_gradient": "dzdy = y\n",
        "grad_value_before_grad": (
            "x, y = Var(0.5), Var(4.2)\nz = x * y + sin(x)\nz.seed()\ndzdy = y.grad_value\n"),
    },
    "grad": {
        "gradient_of_the_output": _LOOP + "z.seed()\ngrad = z.grad()\n",
        "loop_runs_once": ("x = Var(0.5)\nz = Var(1.0)\nz = (z + Var(0.0)) * x * x\n"
                           "z.seed()\ngrad = x.grad()\n"),
        "the_var_not_its_gradient": _LOOP + "z.seed()\nx.grad()\ngrad = x\n",
    },
}

CORRECT = {
    "var_operators": {
        "grad_without_caching": _var_class(grad=(
            "if self.grad_value is not None:\n"
            "    return self.grad_value\n"
            "return sum(w * child.grad() for w, child in self.children)")),
        "children_recorded_first": _var_class(
            add=("z = Var(self.value + other.value)\n"
                 "other.children.insert(0, (1.0, z))\n"
                 "self.children.insert(0, (1.0, z))\n"
                 "return z"),
            mul=("z = Var(self.value * other.value)\n"
                 "other.children.insert(0, (self.value, z))\n"
                 "self.children.insert(0, (other.value, z))\n"
                 "return z")),
        "grad_as_an_explicit_loop": _var_class(grad=(
            "if self.grad_value is None:\n"
            "    total = 0.0\n"
            "    for w, child in self.children:\n"
            "        total += w * child.grad()\n"
            "    self.grad_value = total\n"
            "return self.grad_value")),
        "pow_through_exp_and_log": _var_class(pow=(
            "a, b = self.value, other.value\n"
            "p = math.exp(b * math.log(a))\n"
            "z = Var(p)\n"
            "self.children.append((p * b / a, z))\n"
            "other.children.append((p * math.log(a), z))\n"
            "return z")),
    },
    "var_functions": {
        "tan_derivative_one_plus_tan_squared": _functions(
            tan=("math.tan(x.value)", "1 + math.tan(x.value) ** 2")),
        "exp_reusing_its_value": (
            _functions() + "def exp(x):\n    z = Var(math.exp(x.value))\n"
            "    x.children.append((z.value, z))\n    return z\n"),
    },
    "dzdy": {
        "a_fresh_graph": "a, b = Var(0.5), Var(4.2)\nc = a * b + sin(a)\nc.seed()\ndzdy = float(b.grad())\n",
    },
    "grad": {
        "unrolled_loop": ("x = Var(0.5)\nz = (Var(1.0) + Var(0.0)) * x * x\n"
                          "z = (z + Var(1.0)) * x * x\nz.seed()\ngrad = x.grad()\n"),
    },
}

#: Wrong variants that must lose exactly the points of these hidden tests (by the test's name after
#: the question's).
FAILS = {
    "var_operators": {
        "grad_overwrites_instead_of_summing": {"used_twice", "diamond", "order"},
        "sub_weights_swapped": {"sub", "diamond"},
        "quotient_without_b_squared": {"div", "used_twice", "diamond"},
        "pow_ignores_ln_term": {"pow", "used_twice"},
        "add_records_self_only": {"add", "used_twice", "diamond", "order"},
        "add_keeps_one_child_per_var": {"order"},
    },
    "var_functions": {
        "tan_derivative_one_over_sin_squared": {"tan", "compositions"},
        "cos_derivative_plus_sin": {"cos", "compositions"},
        "exp_records_in_the_result": {"exp", "compositions"},
    },
    "dzdy": {name: {"value"} for name in WRONG["dzdy"]},
    "grad": {name: {"value"} for name in WRONG["grad"]},
}

#: The words a TA would use for each wrong answer: the messages of its failed hidden tests must
#: contain each of them (case-insensitive).
WORDS = {
    "var_operators": {
        "grad_overwrites_instead_of_summing": ("sum",),
        "sub_weights_swapped": ("-1",),
        "quotient_without_b_squared": ("b squared",),
        "pow_ignores_ln_term": ("ln(a)",),
        "add_records_self_only": ("both operands",),
        "add_keeps_one_child_per_var": ("order in which",),
    },
    "var_functions": {
        "tan_derivative_one_over_sin_squared": ("1 / cos(a)**2",),
        "cos_derivative_plus_sin": ("sign",),
        "exp_records_in_the_result": ("x.children.append",),
    },
    "dzdy": {
        "dz_dx_instead": ("dz/dx", "y.grad()"),
        "the_var_not_its_gradient": ("python float",),
        "grad_value_before_grad": ("python float",),
    },
    "grad": {
        "gradient_of_the_output": ("dz/dz",),
        "loop_runs_once": ("whole loop",),
        "the_var_not_its_gradient": ("python float",),
    },
}
