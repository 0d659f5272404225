"""Stand-ins, in the grader, for what a student's notebook defines in its own process.

The released tests call ``pinv_svd(X)`` or read ``env.get("theta")`` as they would inside the
notebook; here those names resolve to proxies that send the inputs to the confined process and
rebuild what comes back as plain tensors. Every comparison then runs in the grader, on objects the
student's code never touched: patching torch or the checks inside the notebook changes nothing.
"""

from __future__ import annotations

import builtins
import weakref
from typing import Any

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
    called: a failed check wherever it happens (never an inconclusive one, as on meta)."""


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

    def arguments(self, args: tuple[Any, ...]) -> dict[str, Any]:
        """The ``args``, ``keep`` and ``drop`` fields of a call request."""
        encoded, keep = [], []
        for index, value in enumerate(args):
            if not isinstance(value, torch.Tensor) or value.device.type == "meta" \
                    or value.numel() * value.element_size() < self.MIN_BYTES:
                encoded.append(protocol.encode(value))
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


class RemoteFunction:
    """Calls the student's function of this name in the notebook's process.

    The arguments travel as copies: whatever the function does to them in place happens to the
    notebook's copies, never to the grader's, so a check may keep using its own tensors after a
    call (``receives_copies``: ``core.call`` need not copy them first). What a call does to its
    arguments is asked for by ``call_twice``, which brings them back as data for the grader to
    compare with its own: the process is never asked whether they changed.
    """

    receives_copies = True

    def __init__(self, session: NotebookSession, name: str, kept: KeptTensors):
        self._session, self.__name__, self._kept = session, name, kept

    def __repr__(self) -> str:
        return f"<student function {self.__name__}>"

    def _request(self, op: str, args: tuple[Any, ...], wait: float | None = None,
                 **fields: Any) -> dict[str, Any]:
        """Send one request about this function with ``args`` (kept tensors by reference), wait
        ``wait`` seconds at most (default: the call limit), and return its successful reply; a
        student error is raised as rebuilt, a stopped process as ``NotebookStopped``."""
        try:
            self._session.ensure_running()
            self._kept.reset(self._session.generation)
            request = {"op": op, "name": self.__name__, **fields, **self._kept.arguments(args)}
            reply = self._session.request(request, wait)
        except SessionFailed as failure:
            raise self._stopped(failure) from None
        if not isinstance(reply, dict) or not reply.get("ok"):
            raise _rebuild_error(reply if isinstance(reply, dict) else {})
        return reply

    def _stopped(self, failure: SessionFailed) -> NotebookStopped:
        return NotebookStopped(f"`{self.__name__}` stopped the notebook's process: {failure}")

    def _wrong(self) -> NotebookStopped:
        return NotebookStopped(f"`{self.__name__}`: the notebook's process answered wrongly")

    def __call__(self, *args: Any) -> Any:
        return protocol.decode(self._request("call", args).get("result"))

    def call_each(self, firsts: list[torch.Tensor], rest: tuple[Any, ...]) -> list[Any]:
        """``fn(first, *rest)`` for each of ``firsts``, each on fresh copies, in one request:
        the replayed steps of a descent (``core.verify_trajectory``)."""
        reply = self._request("call", tuple(rest), firsts=[protocol.encode(f) for f in firsts])
        results = reply.get("results")
        if not isinstance(results, list) or len(results) != len(firsts):
            raise self._wrong()
        return [protocol.decode(result) for result in results]

    def cpu_seconds(self) -> float:
        """The CPU time of the notebook's processes so far, as the kernel counts it: what a loop
        run here over calls of this function spends there."""
        return self._session.cpu_seconds()

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
            return RemoteFunction(self._session, name, self._kept)
        if kind in ("tensor", "value"):
            return protocol.decode(reply.get("value"))
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
