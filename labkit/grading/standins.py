"""Stand-ins, in the grader, for what a student's notebook defines in its own process.

The released tests call ``f(X)`` or read ``env.get("theta")`` as they would inside the
notebook; here those names resolve to proxies that send the inputs to the confined process and
rebuild what comes back as plain tensors. Every comparison then runs in the grader, on objects the
student's code never touched: patching torch or the checks inside the notebook changes nothing.

An object that is not a plain value (an instance, a class, a module, a bound method) stays in the
notebook's process and is stood for here by a ``RemoteObject`` holding its handle: a check written
for local objects (``obj.attr``, ``obj(x)``, ``Cls(a, b)``, ``a + b``, ``2 * a``, ``-a``, ``a < b``,
``str(a)``) runs unchanged on it, each operation one request, each answer again data to judge or
another handle. A check never learns a notebook object's truth, hash, length or items: those raise
``NotebookObjectMisused``, so that it compares plain numbers it read instead. A handle is good
only for the process that handed it out: once that process is stopped or restarted, using it
fails its check (``NotebookStopped``).
"""

from __future__ import annotations

import builtins
import weakref
from collections.abc import Callable
from typing import Any, NoReturn

import torch

from labkit.checks import descent
from labkit.checks.core import CheckFailed
from labkit.sandbox import protocol
from labkit.sandbox.session import NotebookSession, SessionFailed

#: Exception types rebuilt by name, so that checks can tell a device error from other errors.
_REBUILT = {
    name: getattr(builtins, name)
    for name in ("TypeError", "RuntimeError", "NotImplementedError", "ValueError", "IndexError",
                 "KeyError", "AttributeError", "NameError", "ZeroDivisionError", "AssertionError",
                 "OverflowError", "ArithmeticError", "LookupError", "MemoryError", "TimeoutError")
}


class StudentError(Exception):
    """An exception raised by student code of a type the grader does not rebuild."""


class NotebookStopped(CheckFailed):
    """The notebook's process ended, hung or broke the protocol while a function of it was being
    called, or a handle of a process that has ended was used: a failed check wherever it happens
    (never an inconclusive one, as on meta)."""


class NotebookObjectMisused(TypeError):
    """A check asked an object of the notebook for what only the notebook would answer, and
    nothing in the grader could verify: its truth, hash, length or items."""


def _rebuild_error(reply: dict[str, Any]) -> Exception:
    kind, message = str(reply.get("type", "Exception"))[:80], str(reply.get("message", ""))[:300]
    if kind in _REBUILT:
        return _REBUILT[kind](message)
    return StudentError(f"{kind}: {message}" if message else kind)


#: How long the grader waits past a descent's budget for the step in progress.
DESCENT_GRACE_SECONDS = 5.0


class KeptTensors:
    """The grader's tensors that the notebook's process already holds, so that a training loop's
    data (the same X and y at every step) crosses the connection once, not at every call.

    A tensor is referred to by the object itself, while it lives and is unchanged (its version
    counter): a tensor changed in place, or a new one with the same values, is sent again. The
    process keeps the first copy it received untouched and hands each call a fresh clone of it,
    so a function that changes its argument in place changes nothing later calls see. Ids of
    tensors the grader has dropped go with the next call, and the process drops them too.
    """

    #: Smaller tensors are sent every time: their copies cost less than the bookkeeping.
    MIN_BYTES = 4096

    def __init__(self) -> None:
        self._held: dict[int, tuple[weakref.ref, int, int]] = {}
        self._dropped: list[int] = []
        self._next_id = 0
        self.generation = -1

    def reset(self, generation: int) -> None:
        """A new process holds nothing yet."""
        if generation != self.generation:
            self._held.clear()
            self._dropped.clear()
            self.generation = generation

    def _forget(self, key: int, kept_id: int) -> None:
        held = self._held.get(key)
        if held is not None and held[2] == kept_id:
            del self._held[key]
            self._dropped.append(kept_id)

    def arguments(self, args: tuple[Any, ...],
                  encode: Callable[[Any], Any] = protocol.encode) -> dict[str, Any]:
        """The ``args``, ``keep`` and ``drop`` fields of a call request; ``encode`` sends what is
        not kept."""
        encoded, keep = [], []
        for index, value in enumerate(args):
            if not isinstance(value, torch.Tensor) or value.device.type == "meta" \
                    or value.numel() * value.element_size() < self.MIN_BYTES:
                encoded.append(encode(value))
                continue
            held = self._held.get(id(value))
            if held is not None and held[0]() is value and held[1] == value._version:
                encoded.append({"__kept__": held[2]})
                continue
            kept_id, self._next_id = self._next_id, self._next_id + 1
            key = id(value)
            self._held[key] = (weakref.ref(value, lambda _, k=key, i=kept_id: self._forget(k, i)),
                               value._version, kept_id)
            encoded.append(protocol.encode(value))
            keep.append([index, kept_id])
        dropped, self._dropped = self._dropped, []
        return {"args": encoded, "keep": keep, "drop": dropped}


#: The longest ``str()`` of a notebook's object that a check receives.
STR_CHARS = 10_000


def _misused(what: str) -> NoReturn:
    raise NotebookObjectMisused(
        f"a check asked an object of the notebook for its {what}, which only the notebook would "
        f"answer: read plain numbers or tensors from it (an attribute, a call) and compare those")


class NotebookObject:
    """What the grader can ask about one object of the notebook's, each in one request under the
    call limit: an attribute (``obj.attr``), a call (``obj(...)``: a function, a bound method, a
    class), an operator of ``labkit.sandbox.objects.OPERATORS`` (``a + b``, ``2 * a``, ``-a``,
    ``a < b``...) and ``str(obj)``. Arguments may be data, tensors (kept ones by reference) or
    other such objects; answers are data, or objects of this kind again.

    The arguments travel as copies: whatever the notebook does to them in place happens to the
    notebook's copies, never to the grader's (``receives_copies``: ``core.call`` need not copy
    them first). Truth, hashing, length and iteration raise ``NotebookObjectMisused``: the answer
    would be the notebook's word, where a check must judge values itself.
    """

    receives_copies = True
    #: The attributes of the stand-in itself: never asked of the notebook.
    _OWN = frozenset({"_session", "_kept", "_generation", "_handle", "_type_name", "_object"})

    _session: NotebookSession
    _kept: KeptTensors

    # -- what each kind of stand-in says about itself ---------------------------------------

    def _label(self) -> str:
        """The object as messages name it."""
        raise NotImplementedError

    def _address(self) -> dict[str, Any]:
        """The request's fields that name the object; the process is running when it returns."""
        raise NotImplementedError

    def _reference(self) -> dict[str, Any]:
        """The object as an argument of a request (a handle entry)."""
        raise NotImplementedError

    # -- requests ---------------------------------------------------------------------------

    def _request(self, op: str, args: tuple[Any, ...], wait: float | None = None,
                 **fields: Any) -> dict[str, Any]:
        """Send one request about this object with ``args`` (kept tensors by reference), wait
        ``wait`` seconds at most (default: the call limit), and return its successful reply; a
        student error is raised as rebuilt, a stopped process as ``NotebookStopped``."""
        try:
            address = self._address()
            self._kept.reset(self._session.generation)
            request = {"op": op, **address, **fields,
                       **self._kept.arguments(args, _argument_encoder(self._session))}
            reply = self._session.request(request, wait)
        except SessionFailed as failure:
            raise self._stopped(failure) from None
        if not isinstance(reply, dict) or not reply.get("ok"):
            raise _rebuild_error(reply if isinstance(reply, dict) else {})
        return reply

    def _stopped(self, failure: SessionFailed) -> NotebookStopped:
        return NotebookStopped(f"{self._label()} stopped the notebook's process: {failure}")

    def _wrong(self) -> NotebookStopped:
        return NotebookStopped(f"{self._label()}: the notebook's process answered wrongly")

    def _answer(self, op: str, args: tuple[Any, ...] = (), **fields: Any) -> Any:
        """The result of one request: data, with stand-ins for the process's objects."""
        reply = self._request(op, args, **fields)
        return _decode_result(self._session, self._kept, reply.get("result"))

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        fields = {"kwargs": {str(k): _argument_encoder(self._session)(v)
                             for k, v in kwargs.items()}} if kwargs else {}
        return self._answer("call", args, **fields)

    def __getattr__(self, name: str) -> Any:
        if name in NotebookObject._OWN or name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        return self._answer("attribute", attribute=name)

    def cpu_seconds(self) -> float:
        """The CPU time of the notebook's processes so far, as the kernel counts it: what a loop
        run here over calls of this function (or requests about this object) spends there."""
        return self._session.cpu_seconds()

    def __str__(self) -> str:
        text = self._request("str", ()).get("result")
        if not isinstance(text, str):
            raise self._wrong()
        return text[:STR_CHARS]

    def _operator(self, name: str, *other: Any, reflected: bool = False) -> Any:
        return self._answer("operator", other, operator=name,
                            **({"reflected": True} if reflected else {}))

    def __copy__(self) -> NotebookObject:
        return self  # a stand-in refers to the notebook's object; it is never copied here

    def __deepcopy__(self, memo: dict[int, Any]) -> NotebookObject:
        return self

    def __bool__(self) -> bool:
        _misused("truth")

    def __hash__(self) -> int:
        _misused("hash")

    def __len__(self) -> int:
        _misused("length")

    def __iter__(self) -> Any:
        _misused("items")

    def __contains__(self, item: Any) -> bool:
        _misused("items")


#: The notebook's operators a check may apply to its objects (the runner's allow-list): each
#: binary one with its reflected form (``2 * obj``), and unary minus.
BINARY_OPERATORS = ("add", "sub", "mul", "truediv", "pow")
COMPARISONS = ("eq", "ne", "lt", "le", "gt", "ge")


def _binary(name: str, reflected: bool) -> Callable[[NotebookObject, Any], Any]:
    def apply(self: NotebookObject, other: Any) -> Any:
        return self._operator(name, other, reflected=reflected)
    apply.__name__ = f"__{'r' if reflected else ''}{name}__"
    return apply


for _name in BINARY_OPERATORS:
    setattr(NotebookObject, f"__{_name}__", _binary(_name, False))
    setattr(NotebookObject, f"__r{_name}__", _binary(_name, True))
for _name in COMPARISONS:
    setattr(NotebookObject, f"__{_name}__", _binary(_name, False))
NotebookObject.__neg__ = lambda self: self._operator("neg")  # type: ignore[method-assign]


class RemoteObject(NotebookObject):
    """An object the notebook's process handed out as a handle: good only while that process
    runs (a restarted notebook holds other objects under the same numbers)."""

    def __init__(self, session: NotebookSession, kept: KeptTensors, generation: int, handle: int,
                 type_name: str):
        self._session, self._kept = session, kept
        self._generation, self._handle, self._type_name = generation, handle, type_name

    def __repr__(self) -> str:
        return f"<notebook object {self._type_name}>"

    @property
    def __notebook_type__(self) -> str:
        """The object's type in the notebook (``core.NOTEBOOK_TYPE``): what a check's message
        names, never this stand-in's own class."""
        return self._type_name

    def _label(self) -> str:
        return f"the notebook's {self._type_name} object"

    def _address(self) -> dict[str, Any]:
        if not self._session.running or self._session.generation != self._generation:
            raise NotebookStopped(
                f"{self._label()} is gone: the notebook's process that held it was stopped or "
                f"restarted since (an earlier error, a hang or a crash)")
        return {"handle": self._handle}

    def _reference(self) -> dict[str, Any]:
        self._address()
        return protocol.handle_entry(self._handle, self._type_name)


def _argument_encoder(session: NotebookSession) -> Callable[[Any], Any]:
    """How a request carries an argument: stand-ins of the notebook's objects by their handles
    (only those of the running process), all else as ``protocol.encode`` does."""

    def encode(value: Any) -> Any:
        if isinstance(value, NotebookObject):
            if value._session is not session:
                raise TypeError("an object of another notebook cannot be an argument here")
            return value._reference()
        if isinstance(value, (list, tuple)):
            return {"__seq__": [encode(v) for v in value], "tuple": isinstance(value, tuple)}
        if isinstance(value, dict) and all(isinstance(k, str) for k in value):
            return {"__map__": [[k, encode(v)] for k, v in value.items()]}
        return protocol.encode(value)

    return encode


def _decode_result(session: NotebookSession, kept: KeptTensors, value: Any) -> Any:
    """A value the running process sent: data, with ``RemoteObject`` for its handles."""
    generation = session.generation
    return protocol.decode(value, handle=lambda handle, type_name: RemoteObject(
        session, kept, generation, handle, type_name))


class RemoteFunction(NotebookObject):
    """Calls the student's function of this name in the notebook's process (its current one:
    a name, unlike a handle, lives on when the notebook is run again).

    What a call does to its arguments is asked for by ``call_twice``, which brings them back as
    data for the grader to compare with its own: the process is never asked whether they
    changed.
    """

    def __init__(self, session: NotebookSession, name: str, kept: KeptTensors,
                 handle: dict[str, Any] | None = None):
        self._session, self.__name__, self._kept = session, name, kept
        self._object = None
        try:  # the runner's word: a handle entry, or nothing to keep
            entry = protocol.decode(handle, handle=protocol.handle_entry)
        except protocol.BadMessage:
            entry = None
        if isinstance(entry, dict) and "__handle__" in entry:
            self._object = (session.generation, entry)

    def __repr__(self) -> str:
        return f"<student function {self.__name__}>"

    def _label(self) -> str:
        return f"`{self.__name__}`"

    def _address(self) -> dict[str, Any]:
        self._session.ensure_running()
        return {"name": self.__name__}

    def _reference(self) -> dict[str, Any]:
        """The function's handle in the running process, asked for again after a restart."""
        if self._object is None or self._object[0] != self._session.generation \
                or not self._session.running:
            try:
                self._session.ensure_running()
                reply = self._session.request({"op": "get", "name": self.__name__})
            except SessionFailed as failure:
                raise self._stopped(failure) from None
            again = RemoteFunction(self._session, self.__name__, self._kept,
                                   reply.get("object") if isinstance(reply, dict) else None)
            if again._object is None or reply.get("kind") != "function":
                raise TypeError(f"`{self.__name__}` is no longer a function of the notebook")
            self._object = again._object
        return self._object[1]

    def call_each(self, firsts: list[torch.Tensor], rest: tuple[Any, ...]) -> list[Any]:
        """``fn(first, *rest)`` for each of ``firsts``, each on fresh copies, in one request:
        the replayed steps of a descent (``core.verify_trajectory``)."""
        reply = self._request("call", tuple(rest), firsts=[protocol.encode(f) for f in firsts])
        results = reply.get("results")
        if not isinstance(results, list) or len(results) != len(firsts):
            raise self._wrong()
        return [protocol.decode(result) for result in results]

    def call_twice(self, *args: Any) -> tuple[Any, Any, list[Any]]:
        """Call the function, then again on the same objects (as a training loop does), in the
        notebook's process; returns both results and each argument as the first call left it
        (``core.snapshot``'s form: values, ``requires_grad``, ``.grad``; None for what is not a
        tensor), for ``core.expect_unmodified`` to judge here."""
        reply = self._request("call", args, twice=True)
        after = reply.get("after")
        if not isinstance(after, list) or len(after) != len(args):
            raise self._wrong()
        states = []
        for state in after:
            if state is None:
                states.append(None)
                continue
            values = protocol.decode(state.get("values")) if isinstance(state, dict) else None
            grad = protocol.decode(state.get("grad")) if isinstance(state, dict) else None
            if not isinstance(values, torch.Tensor) or not (grad is None or isinstance(
                    grad, torch.Tensor)):
                raise self._wrong()
            states.append((values, bool(state.get("requires_grad")), grad))
        return (protocol.decode(reply.get("result")), protocol.decode(reply.get("again")), states)

    def descend(self, start: torch.Tensor, args: tuple[Any, ...], *, alpha: float, steps: int,
                seconds: float) -> descent.Descent:
        """Gradient descent with this function, run in the notebook's process
        (``labkit.checks.descent``): one round trip rather than one per step. The process stops
        the loop at ``seconds`` of its CPU time; the grader waits at most the descent's wall-clock
        limit and ``DESCENT_GRACE_SECONDS`` more for a step in progress, then stops the process.
        The returned ``seconds`` are the CPU time the kernel counted for the notebook's
        processes during the request, not the process's own count; the trajectory is checked by
        ``core.verify_trajectory``."""
        try:
            self._session.ensure_running()  # a process started now counts from here
        except SessionFailed as failure:
            raise self._stopped(failure) from None
        before = self._session.cpu_seconds()
        reply = self._request("descend", tuple(args),
                              descent.WALL_FACTOR * seconds + DESCENT_GRACE_SECONDS,
                              start=protocol.encode(start), alpha=alpha, steps=steps,
                              seconds=seconds)
        spent = self._session.cpu_seconds() - before
        trajectory = protocol.decode(reply.get("trajectory"))
        if not isinstance(trajectory, torch.Tensor) or trajectory.dim() != start.dim() + 1 \
                or not 1 <= trajectory.shape[0] <= steps + 1:
            raise self._wrong()
        return descent.Descent(trajectory=trajectory, seconds=max(spent, 0.0),
                               bad_step=protocol.decode(reply["bad_step"]) if "bad_step" in reply
                               else None)


class RemoteEnv(dict):
    """The notebook's global names, fetched on demand (what otter's tests receive as ``env``)."""

    def __init__(self, session: NotebookSession):
        super().__init__()
        self._session = session
        self._kept = KeptTensors()

    def get(self, name: str, default: Any = None) -> Any:
        try:
            reply = self._session.request({"op": "get", "name": name})
        except SessionFailed:
            return default
        kind = reply.get("kind") if isinstance(reply, dict) else None
        if kind == "function":
            handle = reply.get("object")
            return RemoteFunction(self._session, name, self._kept,
                                  handle if isinstance(handle, dict) else None)
        if kind in ("tensor", "value"):
            return _decode_result(self._session, self._kept, reply.get("value"))
        if kind == "other":
            return protocol.Opaque(str(reply.get("type", "object")))
        return default

    def __getitem__(self, name: str) -> Any:
        value = self.get(name, _MISSING)
        if value is _MISSING:
            raise KeyError(name)
        return value

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name, _MISSING) is not _MISSING


_MISSING = object()
