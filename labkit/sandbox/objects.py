"""The notebook's objects the grader holds handles to, and the requests it may make about them.

Runs inside the confined process, beside ``runner``. An object that is not a plain value (a
tensor, a number, a string, None, or a list, tuple or dict of these) does not cross the boundary:
it stays here, in ``ObjectTable``, and the grader gets a handle (a number, and its type's name as
display text). The grader may then read an attribute of it, call it (a function, a bound method, a
class: construction), apply an operator of ``OPERATORS`` to it, ask for ``str()`` of it, or ask
whether a value is an instance of it (a class); what comes back is again data or a handle. Nothing here decides anything: the grader judges what it
receives, and this module, like the runner, may be rewritten by student code.

Objects are never released while the process lives: releasing one runs its ``__del__``, which is
student code, in whatever request came next, so a hostile finaliser would cost a check that never
touched the object. They go with the process (``os._exit`` runs no finaliser).
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

import torch

from . import protocol

#: At most this many objects are kept for the grader in one process; past it a request that
#: would keep another fails (that check only).
MAX_OBJECTS = 100_000
#: The longest ``str()`` of an object that is sent back.
STR_CHARS = 10_000

#: The operators the grader may apply, by the names requests carry. A reflected request computes
#: ``op(other, obj)``, so Python's own dispatch (``__radd__`` and the like) decides as it would.
OPERATORS: dict[str, Callable[..., Any]] = {
    "add": operator.add, "sub": operator.sub, "mul": operator.mul,
    "truediv": operator.truediv, "pow": operator.pow, "neg": operator.neg,
    "eq": operator.eq, "ne": operator.ne, "lt": operator.lt, "le": operator.le,
    "gt": operator.gt, "ge": operator.ge,
}
_UNARY = {"neg"}


def type_name(value: Any) -> str:
    """The name of ``value``'s type, read from the type itself (a metaclass's ``__name__``
    property is not consulted), cut to ``protocol.TYPE_NAME_CHARS``."""
    name = type.__dict__["__name__"].__get__(type(value), type)
    return str.__str__(name)[: protocol.TYPE_NAME_CHARS] if isinstance(name, str) else "object"


class Graph:
    """A result's autograd graph, kept for the grader: the result, and the arguments of the
    request that made it (the leaves its gradients are asked for)."""

    def __init__(self, output: Any, inputs: list[Any]):
        self.output, self.inputs = output, inputs


def gradients(graph: Graph, grad_output: Any) -> list[Any]:
    """The gradient of ``sum(grad_output * graph.output)`` with respect to each of the graph's
    inputs: a tensor for an input that requires grad and was used, else None. The graph is
    kept (``retain_graph``): the grader may ask again, as autograd would allow twice."""
    output, inputs = graph.output, graph.inputs
    leaves = [i for i, value in enumerate(inputs)
              if isinstance(value, torch.Tensor) and value.requires_grad]
    found: list[Any] = [None] * len(inputs)
    if not leaves or not isinstance(grad_output, torch.Tensor):
        return found
    grad_output = grad_output.to(device=output.device, dtype=output.dtype)
    computed = torch.autograd.grad(output, [inputs[i] for i in leaves], grad_output,
                                   retain_graph=True, allow_unused=True)
    for index, grad in zip(leaves, computed):
        found[index] = grad
    return found


class ObjectTable:
    """The objects handed to the grader, by handle; the same object keeps its first handle."""

    def __init__(self) -> None:
        self._objects: dict[int, Any] = {}
        self._handles: dict[int, int] = {}  # id() of a kept object -> its handle

    def keep(self, value: Any) -> dict[str, Any]:
        """Keep ``value`` and return its handle entry (``protocol.handle_entry``)."""
        handle = self._handles.get(id(value))
        if handle is None:
            if len(self._objects) >= MAX_OBJECTS:
                raise MemoryError(f"more than {MAX_OBJECTS} objects handed to the grader")
            handle = len(self._objects)
            self._objects[handle] = value
            self._handles[id(value)] = handle
        return protocol.handle_entry(handle, type_name(value))

    def get(self, handle: int, _type_name: str = "") -> Any:
        """The object of ``handle``; ``LookupError`` for one this process never handed out."""
        if handle not in self._objects:
            raise LookupError(f"no object with handle {handle} in this process")
        return self._objects[handle]

    def encode(self, value: Any, inputs: list[Any] | None = None) -> Any:
        """``value`` as a reply carries it: data, with handles for every other object. With
        ``inputs`` (the request's arguments), a tensor that carries autograd history comes with
        the handle of its ``Graph``, for the grader to ask gradients through it: only when one
        of them requires grad (otherwise no gradient could reach the grader, and the graph is
        not kept)."""
        leaves = inputs is not None and any(isinstance(i, torch.Tensor) and i.requires_grad
                                            for i in inputs)
        graph = (lambda tensor: self.keep(Graph(tensor, inputs))) if leaves else None
        return protocol.encode(value, self.keep, graph)

    def decode(self, item: Any) -> Any:
        """An argument sent by the grader: data (a tensor that required grad there is a leaf
        that requires grad here), kept objects for handles."""
        return protocol.decode(item, grad_flags=True, handle=self.get)


def attribute(obj: Any, request: dict[str, Any]) -> Any:
    name = request.get("attribute")
    if not isinstance(name, str):
        raise TypeError("an attribute name must be a string")
    return getattr(obj, name)


def apply_operator(obj: Any, request: dict[str, Any], args: list[Any]) -> Any:
    name = request.get("operator")
    if name not in OPERATORS:
        raise TypeError(f"the operator {str(name)[:40]!r} is not allowed")
    if name in _UNARY:
        return OPERATORS[name](obj)
    if len(args) != 1:
        raise TypeError(f"the operator {name} takes one other operand")
    return OPERATORS[name](args[0], obj) if request.get("reflected") else OPERATORS[name](obj,
                                                                                          args[0])


def instance_check(cls: Any, value: Any) -> bool:
    """``isinstance(value, cls)`` for a class of the notebook (its metaclass may answer: this
    is the notebook's word, fit for a public check's message, never for a point)."""
    if not isinstance(cls, type):
        raise TypeError("isinstance() arg 2 must be a type")
    return isinstance(value, cls) is True


def text(obj: Any) -> str:
    """``str(obj)``, cut to ``STR_CHARS`` characters (a str subclass is read as a plain str)."""
    result = str(obj)
    return str.__str__(result)[:STR_CHARS]
