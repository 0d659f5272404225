"""Mutation operators taken from the mistakes students make in tensor code.

Each operator maps a function definition (an ``ast.FunctionDef``) to its mutants: copies of it
with one mistake made at one place. Only nodes on the given lines are changed (the solution's
lines, not the code the notebook hands the student), and each mutant differs from the original at
exactly one site.

Why a small AST mutator rather than ``mutmut`` or ``cosmic-ray``: both mutate files on disk and
run a test command per mutant, with generic operators (``+`` to ``-``, ``<`` to ``<=``, integers
plus one, strings changed). The reference answers here live in notebook cells, are graded by
running a whole notebook in the sandbox, and the mistakes worth measuring are tensor mistakes
neither library has an operator for (sum for mean, the wrong ``dim``, a dropped transpose or
max-shift, a float32 cast, an in-place write to an argument, a tensor made on the CPU, the label
in place of the one-hot). ``ast`` and ``ast.unparse`` give exactly these in a few lines each, on
any function, with no file rewritten.
"""

from __future__ import annotations

import ast
import copy
from collections.abc import Callable, Iterator
from dataclasses import dataclass

#: Methods that take the dimension as their first positional argument.
_DIM_FIRST_METHODS = {"gather", "scatter", "scatter_", "scatter_add", "scatter_add_",
                      "index_select", "softmax", "log_softmax", "sum", "mean", "max", "min",
                      "amax", "amin", "argmax", "argmin", "logsumexp", "cumsum", "unsqueeze",
                      "squeeze", "norm", "prod", "std", "var"}
#: torch functions that take the dimension as their second positional argument.
_DIM_SECOND_FUNCTIONS = {"cat", "stack", "softmax", "log_softmax", "sum", "mean", "max", "min",
                         "amax", "amin", "argmax", "argmin", "logsumexp", "cumsum", "gather",
                         "unsqueeze", "squeeze", "index_select", "norm", "prod"}
#: Out-of-place methods with an in-place twin (``x.exp()`` -> ``x.exp_()``).
_IN_PLACE_METHODS = {"add", "sub", "mul", "div", "neg", "exp", "log", "sigmoid", "clamp", "abs",
                     "sqrt", "tanh", "relu", "unsqueeze", "squeeze", "t", "transpose", "float",
                     "pow", "reciprocal"}
#: ``torch.f(x, ...)`` calls with an in-place method ``x.f_(...)``.
_IN_PLACE_FUNCTIONS = {"exp", "log", "sigmoid", "neg", "abs", "sqrt", "tanh", "relu", "clamp",
                       "add", "sub", "mul", "div", "reciprocal"}
_IN_PLACE_BINOPS = {ast.Add: "add_", ast.Sub: "sub_", ast.Mult: "mul_", ast.Div: "div_"}
#: ``x.new_*`` factories and the ``torch`` factory making the same tensor on the CPU.
_NEW_FACTORIES = {"new_ones": "ones", "new_zeros": "zeros", "new_empty": "empty",
                  "new_full": "full", "new_tensor": "tensor"}
_LIKE_FACTORIES = {"zeros_like": "zeros", "ones_like": "ones", "empty_like": "empty",
                   "full_like": "full", "rand_like": "rand", "randn_like": "randn"}
_TRANSPOSE_ATTRIBUTES = {"T", "mT", "H", "mH"}


@dataclass(frozen=True)
class Operator:
    """A named kind of mistake and what makes its mutants."""

    name: str
    description: str
    mutate: Callable[[ast.FunctionDef, frozenset[int]], Iterator[ast.FunctionDef]]


# --- shared machinery ---------------------------------------------------------------------------

def _on_lines(node: ast.AST, lines: frozenset[int]) -> bool:
    return getattr(node, "lineno", None) in lines


def _attribute_call(node: ast.AST, names: set[str] | None = None) -> bool:
    """``<something>.<name>(...)``, with ``name`` in ``names`` if given."""
    return (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
            and (names is None or node.func.attr in names))


def _is_torch(node: ast.AST) -> bool:
    """``torch`` or ``torch.nn.functional``/``F`` (the receiver of a library function call)."""
    return (isinstance(node, ast.Name) and node.id in ("torch", "F")) or (
        isinstance(node, ast.Attribute) and ast.unparse(node) in ("torch.nn.functional",
                                                                  "torch.linalg"))


def _torch_call(node: ast.AST, names: set[str]) -> bool:
    return _attribute_call(node, names) and _is_torch(node.func.value)


def _replace_at(func: ast.FunctionDef, index: int,
                change: Callable[[ast.AST], ast.AST | None]) -> ast.FunctionDef | None:
    """A copy of ``func`` with its ``index``-th node (in ``ast.walk`` order) replaced by what
    ``change`` makes of it (a node, or None for no mutant at this site)."""
    mutant = copy.deepcopy(func)
    nodes = list(ast.walk(mutant))
    target = nodes[index]
    replacement = change(target)
    if replacement is None:
        return None
    if replacement is not target:
        for parent in nodes:
            for field, value in ast.iter_fields(parent):
                if value is target:
                    setattr(parent, field, replacement)
                elif isinstance(value, list):
                    for position, item in enumerate(value):
                        if item is target:
                            value[position] = replacement
    return ast.fix_missing_locations(mutant)


def _each_site(func: ast.FunctionDef, lines: frozenset[int], wanted: Callable[[ast.AST], bool],
               *changes: Callable[[ast.AST], ast.AST | None]) -> Iterator[ast.FunctionDef]:
    """One mutant per (site, change): every node on ``lines`` that ``wanted`` accepts."""
    for index, node in enumerate(ast.walk(func)):
        if _on_lines(node, lines) and wanted(node):
            for change in changes:
                mutant = _replace_at(func, index, change)
                if mutant is not None:
                    yield mutant


def _parameters(func: ast.FunctionDef) -> list[str]:
    return [arg.arg for arg in func.args.posonlyargs + func.args.args]


def _body_start(func: ast.FunctionDef) -> int:
    """Index of the first statement after the docstring."""
    body = func.body
    has_docstring = (body and isinstance(body[0], ast.Expr) and isinstance(body[0].value,
                     ast.Constant) and isinstance(body[0].value.value, str))
    return 1 if has_docstring else 0


def _call_method(receiver: ast.expr, method: str, *args: ast.expr) -> ast.Call:
    return ast.Call(func=ast.Attribute(value=receiver, attr=method, ctx=ast.Load()),
                    args=list(args), keywords=[])


def _int_constant(node: ast.AST | None) -> bool:
    return (isinstance(node, ast.Constant) and isinstance(node.value, int)
            and not isinstance(node.value, bool))


def _negative_int(node: ast.AST | None) -> int | None:
    """The value of ``3`` or ``-3`` written as a literal, else None."""
    if _int_constant(node):
        return node.value
    if (isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub)
            and _int_constant(node.operand)):
        return -node.operand.value
    return None


def _int_node(value: int) -> ast.expr:
    return ast.Constant(value) if value >= 0 else ast.UnaryOp(op=ast.USub(),
                                                              operand=ast.Constant(-value))


# --- the operators ------------------------------------------------------------------------------

def sum_mean(func: ast.FunctionDef, lines: frozenset[int]) -> Iterator[ast.FunctionDef]:
    """``.sum(...)`` becomes ``.mean(...)`` and back (methods and ``torch.sum``)."""
    swap = {"sum": "mean", "mean": "sum"}

    def change(node: ast.Call) -> ast.AST:
        node.func.attr = swap[node.func.attr]
        return node

    yield from _each_site(func, lines, lambda n: _attribute_call(n, set(swap)), change)


def _dim_position(node: ast.AST) -> tuple[str, int | str] | None:
    """Where a call holds its dimension: ("keyword", "dim") or ("positional", i)."""
    if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
        return None
    for keyword in node.keywords:
        if keyword.arg in ("dim", "axis") and _negative_int(keyword.value) is not None:
            return "keyword", keyword.arg
    position = 1 if _is_torch(node.func.value) and node.func.attr in _DIM_SECOND_FUNCTIONS else (
        0 if not _is_torch(node.func.value) and node.func.attr in _DIM_FIRST_METHODS else None)
    if position is not None and len(node.args) > position and \
            _negative_int(node.args[position]) is not None:
        return "positional", position
    return None


def _other_dim(value: int) -> int:
    """The dimension a student confuses with ``value``: rows for columns and back."""
    return {0: 1, 1: 0, -1: 0, -2: -1}.get(value, 0)


def dim(func: ast.FunctionDef, lines: frozenset[int]) -> Iterator[ast.FunctionDef]:
    """The ``dim`` of a reduction, softmax, concatenation or gather changed (0 for 1, 1 for 0,
    0 for -1), and ``keepdim=True`` dropped."""

    def change_dim(node: ast.Call) -> ast.AST:
        kind, where = _dim_position(node)
        if kind == "keyword":
            keyword = next(k for k in node.keywords if k.arg == where)
            keyword.value = _int_node(_other_dim(_negative_int(keyword.value)))
        else:
            node.args[where] = _int_node(_other_dim(_negative_int(node.args[where])))
        return node

    def drop_keepdim(node: ast.Call) -> ast.AST | None:
        kept = [k for k in node.keywords if not (k.arg == "keepdim" and isinstance(
            k.value, ast.Constant) and k.value.value is True)]
        if len(kept) == len(node.keywords):
            return None
        node.keywords = kept
        return node

    yield from _each_site(func, lines, lambda n: _dim_position(n) is not None, change_dim)
    yield from _each_site(func, lines, lambda n: isinstance(n, ast.Call), drop_keepdim)


def _is_transposed(node: ast.AST) -> bool:
    return (isinstance(node, ast.Attribute) and node.attr in _TRANSPOSE_ATTRIBUTES) or \
        _attribute_call(node, {"t", "transpose"})


def transpose(func: ast.FunctionDef, lines: frozenset[int]) -> Iterator[ast.FunctionDef]:
    """A transpose dropped (``X.T`` -> ``X``, ``x.t()``, ``x.transpose(...)``), or added to an
    operand of ``@`` that had none or to the returned value."""

    def drop(node: ast.AST) -> ast.AST:
        return node.value if isinstance(node, ast.Attribute) else node.func.value

    yield from _each_site(func, lines, _is_transposed, drop)

    def add_left(node: ast.BinOp) -> ast.AST | None:
        if _is_transposed(node.left):
            return None
        node.left = ast.Attribute(value=node.left, attr="T", ctx=ast.Load())
        return node

    def add_right(node: ast.BinOp) -> ast.AST | None:
        if _is_transposed(node.right):
            return None
        node.right = ast.Attribute(value=node.right, attr="T", ctx=ast.Load())
        return node

    yield from _each_site(func, lines, lambda n: isinstance(n, ast.BinOp) and isinstance(
        n.op, ast.MatMult), add_left, add_right)

    def transpose_result(node: ast.Return) -> ast.AST | None:
        if node.value is None or isinstance(node.value, ast.Tuple) or _is_transposed(node.value):
            return None
        node.value = ast.Attribute(value=node.value, attr="T", ctx=ast.Load())
        return node

    yield from _each_site(func, lines, lambda n: isinstance(n, ast.Return), transpose_result)


def sign(func: ast.FunctionDef, lines: frozenset[int]) -> Iterator[ast.FunctionDef]:
    """A sign flipped: ``a - b`` -> ``b - a``, ``a + b`` -> ``a - b``, ``-x`` -> ``x``, and the
    returned value negated."""

    def swap(node: ast.BinOp) -> ast.AST:
        node.left, node.right = node.right, node.left
        return node

    def subtract(node: ast.BinOp) -> ast.AST:
        node.op = ast.Sub()
        return node

    yield from _each_site(func, lines, lambda n: isinstance(n, ast.BinOp) and isinstance(
        n.op, ast.Sub), swap)
    yield from _each_site(func, lines, lambda n: isinstance(n, ast.BinOp) and isinstance(
        n.op, ast.Add), subtract)
    yield from _each_site(func, lines, lambda n: isinstance(n, ast.UnaryOp) and isinstance(
        n.op, ast.USub) and not _int_constant(n.operand), lambda n: n.operand)

    def negate(node: ast.Return) -> ast.AST | None:
        if node.value is None or (isinstance(node.value, ast.UnaryOp)
                                  and isinstance(node.value.op, ast.USub)):
            return None
        node.value = ast.UnaryOp(op=ast.USub(), operand=node.value)
        return node

    yield from _each_site(func, lines, lambda n: isinstance(n, ast.Return), negate)


def _holds_max(node: ast.AST) -> bool:
    return any(_attribute_call(inner, {"max", "amax"}) for inner in ast.walk(node))


def max_shift(func: ast.FunctionDef, lines: frozenset[int]) -> Iterator[ast.FunctionDef]:
    """The max-shift before an exponential dropped: ``Z - Z.max(...)`` -> ``Z``."""
    yield from _each_site(func, lines, lambda n: isinstance(n, ast.BinOp) and isinstance(
        n.op, ast.Sub) and _holds_max(n.right), lambda n: n.left)


def float32(func: ast.FunctionDef, lines: frozenset[int]) -> Iterator[ast.FunctionDef]:
    """A float32 cast: of the returned value, of a value assigned on the way (a float32 inner
    computation), or of an argument before any use."""

    def cast_return(node: ast.Return) -> ast.AST | None:
        if node.value is None:
            return None
        node.value = _call_method(node.value, "float")
        return node

    def cast_assigned(node: ast.Assign) -> ast.AST | None:
        if isinstance(node.value, ast.Tuple) or _attribute_call(node.value, {"float"}):
            return None
        node.value = _call_method(node.value, "float")
        return node

    yield from _each_site(func, lines, lambda n: isinstance(n, ast.Return), cast_return)
    yield from _each_site(func, lines, lambda n: isinstance(n, ast.Assign), cast_assigned)
    start = _body_start(func)
    if not lines or func.body[start:] and getattr(func.body[start], "lineno", 0) not in lines:
        return  # the arguments reach the solution through code the student was given
    for name in _parameters(func):
        mutant = copy.deepcopy(func)
        cast = ast.Assign(targets=[ast.Name(id=name, ctx=ast.Store())],
                          value=_call_method(ast.Name(id=name, ctx=ast.Load()), "float"))
        mutant.body.insert(start, cast)
        yield ast.fix_missing_locations(mutant)


def in_place(func: ast.FunctionDef, lines: frozenset[int]) -> Iterator[ast.FunctionDef]:
    """An argument changed in place: ``p - e`` -> ``p.sub_(e)``, ``e + p`` -> ``p.add_(e)``,
    ``e - p`` -> ``p.sub_(e).neg_()``, ``p.exp()`` -> ``p.exp_()``, ``torch.exp(p)`` ->
    ``p.exp_()``, where ``p`` is one of the function's arguments. The value is the same; the
    caller's tensor is overwritten."""
    parameters = set(_parameters(func))

    def is_parameter(node: ast.AST) -> bool:
        return isinstance(node, ast.Name) and node.id in parameters

    def binop(node: ast.BinOp) -> ast.AST | None:
        method = _IN_PLACE_BINOPS.get(type(node.op))
        if method is None:
            return None
        if is_parameter(node.left):
            return _call_method(node.left, method, node.right)
        if is_parameter(node.right):
            if isinstance(node.op, (ast.Add, ast.Mult)):
                return _call_method(node.right, method, node.left)
            if isinstance(node.op, ast.Sub):
                return _call_method(_call_method(node.right, "sub_", node.left), "neg_")
        return None

    def method(node: ast.Call) -> ast.AST:
        node.func.attr += "_"
        return node

    def function(node: ast.Call) -> ast.AST:
        return ast.Call(func=ast.Attribute(value=node.args[0], attr=node.func.attr + "_",
                                           ctx=ast.Load()), args=node.args[1:],
                        keywords=node.keywords)

    yield from _each_site(func, lines, lambda n: isinstance(n, ast.BinOp), binop)
    yield from _each_site(func, lines, lambda n: _attribute_call(n, _IN_PLACE_METHODS)
                          and is_parameter(n.func.value), method)
    yield from _each_site(func, lines, lambda n: _torch_call(n, _IN_PLACE_FUNCTIONS)
                          and n.args and is_parameter(n.args[0]), function)


def on_cpu(func: ast.FunctionDef, lines: frozenset[int]) -> Iterator[ast.FunctionDef]:
    """A tensor made on the CPU: ``x.new_ones(...)`` -> ``torch.ones(..., dtype=x.dtype)``,
    ``torch.zeros_like(x)`` -> ``torch.zeros(x.shape, dtype=x.dtype)``, ``.to(x.device)`` and
    ``device=...`` dropped."""

    def torch_factory(name: str, args: list[ast.expr], like: ast.expr,
                      keywords: list[ast.keyword]) -> ast.Call:
        dtype = ast.keyword(arg="dtype", value=ast.Attribute(value=like, attr="dtype",
                                                             ctx=ast.Load()))
        kept = [k for k in keywords if k.arg not in ("dtype", "device")]
        return ast.Call(func=ast.Attribute(value=ast.Name(id="torch", ctx=ast.Load()), attr=name,
                                           ctx=ast.Load()),
                        args=args, keywords=[*kept, dtype])

    def new_factory(node: ast.Call) -> ast.AST:
        return torch_factory(_NEW_FACTORIES[node.func.attr], node.args, node.func.value,
                             node.keywords)

    def like_factory(node: ast.Call) -> ast.AST:
        like = node.args[0]
        shape = ast.Attribute(value=like, attr="shape", ctx=ast.Load())
        return torch_factory(_LIKE_FACTORIES[node.func.attr], [shape, *node.args[1:]], like,
                             node.keywords)

    def drop_to(node: ast.Call) -> ast.AST:
        return node.func.value

    def drop_device(node: ast.Call) -> ast.AST:
        node.keywords = [k for k in node.keywords if k.arg != "device"]
        return node

    yield from _each_site(func, lines, lambda n: _attribute_call(n, set(_NEW_FACTORIES))
                          and not _is_torch(n.func.value), new_factory)
    yield from _each_site(func, lines, lambda n: _torch_call(n, set(_LIKE_FACTORIES))
                          and bool(n.args), like_factory)
    yield from _each_site(func, lines, lambda n: _attribute_call(n, {"to"}) and len(n.args) == 1
                          and not n.keywords and isinstance(n.args[0], ast.Attribute)
                          and n.args[0].attr == "device", drop_to)
    yield from _each_site(func, lines, lambda n: isinstance(n, ast.Call) and any(
        k.arg == "device" for k in n.keywords), drop_device)


def _moved(bound: ast.expr, by: int) -> ast.expr | None:
    """``bound`` moved by ``by``: literals folded (``-1`` + 1 is no bound at all, the end)."""
    value = _negative_int(bound)
    if value is not None:
        moved = value + by
        return None if value < 0 <= moved else _int_node(moved)
    return ast.BinOp(left=bound, op=ast.Add() if by > 0 else ast.Sub(), right=ast.Constant(1))


def slice_bound(func: ast.FunctionDef, lines: frozenset[int]) -> Iterator[ast.FunctionDef]:
    """A slice's boundary moved by one: ``[:n]`` -> ``[:n + 1]`` and ``[:n - 1]``, ``[:-1]`` ->
    ``[:-2]`` and ``[:]``."""

    def mover(which: str, by: int) -> Callable[[ast.Slice], ast.AST | None]:
        def change(node: ast.Slice) -> ast.AST | None:
            bound = getattr(node, which)
            if bound is None:
                return None
            setattr(node, which, _moved(bound, by))
            return node
        return change

    def is_slice(node: ast.AST) -> bool:
        return isinstance(node, ast.Slice) and node.step is None

    # ast.Slice has line numbers since Python 3.9; a slice on a solution line is a site.
    yield from _each_site(func, lines, is_slice, mover("lower", 1), mover("lower", -1),
                          mover("upper", 1), mover("upper", -1))


def _dim_or_slice_constants(func: ast.FunctionDef) -> set[int]:
    """ids of the literals other operators own: dims, keepdim, slice bounds."""
    owned: set[int] = set()
    for node in ast.walk(func):
        if (where := _dim_position(node)) is not None:
            kind, at = where
            value = next(k.value for k in node.keywords if k.arg == at) if kind == "keyword" \
                else node.args[at]
            owned.update(id(inner) for inner in ast.walk(value))
        if isinstance(node, ast.Slice):
            for bound in (node.lower, node.upper):
                if bound is not None and _negative_int(bound) is not None:
                    owned.update(id(inner) for inner in ast.walk(bound))
    return owned


def constant(func: ast.FunctionDef, lines: frozenset[int]) -> Iterator[ast.FunctionDef]:
    """A numeric constant changed: an integer by one either way, a float ten times larger or
    smaller (0.0 becomes 1.0). Dimensions and slice bounds are the other operators'."""
    owned = _dim_or_slice_constants(func)
    def numeric(node: ast.AST) -> bool:
        return (isinstance(node, ast.Constant) and isinstance(node.value, (int, float))
                and not isinstance(node.value, bool) and id(node) not in owned)

    def changes() -> list[Callable[[ast.Constant], ast.AST | None]]:
        def plus(node: ast.Constant) -> ast.AST | None:
            return ast.Constant(node.value + 1) if isinstance(node.value, int) else (
                ast.Constant(node.value * 10) if node.value else ast.Constant(1.0))

        def minus(node: ast.Constant) -> ast.AST | None:
            if isinstance(node.value, int):
                return ast.Constant(node.value - 1) if node.value > 0 else None
            return ast.Constant(node.value / 10) if node.value else None
        return [plus, minus]

    for index, node in enumerate(ast.walk(func)):
        if _on_lines(node, lines) and numeric(node):
            for change in changes():
                mutant = _replace_at(func, index, change)
                if mutant is not None:
                    yield mutant


def one_hot(func: ast.FunctionDef, lines: frozenset[int]) -> Iterator[ast.FunctionDef]:
    """The label used in place of its one-hot: ``zeros_like(P).scatter_(1, y, 1.0)`` and
    ``F.one_hot(y, K)`` become ``y``."""

    def is_one_hot(node: ast.AST) -> bool:
        if _attribute_call(node, {"scatter", "scatter_"}) and len(node.args) >= 2:
            return True
        return _attribute_call(node, {"one_hot"}) and bool(node.args)

    def label(node: ast.Call) -> ast.AST:
        return node.args[1] if node.func.attr.startswith("scatter") else node.args[0]

    yield from _each_site(func, lines, is_one_hot, label)


OPERATORS: tuple[Operator, ...] = (
    Operator("sum_mean", "sum and mean swapped", sum_mean),
    Operator("dim", "dim changed (or keepdim dropped)", dim),
    Operator("transpose", "transpose dropped or added", transpose),
    Operator("sign", "sign flipped", sign),
    Operator("max_shift", "max-shift dropped", max_shift),
    Operator("float32", "float32 cast", float32),
    Operator("in_place", "argument changed in place", in_place),
    Operator("on_cpu", "tensor made on the CPU", on_cpu),
    Operator("slice", "slice boundary moved by one", slice_bound),
    Operator("constant", "constant changed", constant),
    Operator("one_hot", "label used in place of the one-hot", one_hot),
)
BY_NAME = {operator.name: operator for operator in OPERATORS}


def mutants(func: ast.FunctionDef, lines: frozenset[int],
            operators: tuple[Operator, ...] = OPERATORS) -> Iterator[tuple[str, str]]:
    """(operator name, mutant source) for every mutant of ``func``, each source once and none
    equal to the original."""
    seen = {ast.unparse(func)}
    for operator in operators:
        for mutant in operator.mutate(func, lines):
            source = ast.unparse(mutant)
            if source not in seen:
                seen.add(source)
                yield operator.name, source
