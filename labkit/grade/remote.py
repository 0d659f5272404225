"""Stand-ins, in the grader, for what a student's notebook defines in its own process.

The released tests call ``pinv_svd(X)`` or read ``env.get("theta")`` as they would inside the
notebook; here those names resolve to proxies that send the inputs to the confined process and
rebuild what comes back as plain tensors. Every comparison then runs in the grader, on objects the
student's code never touched: patching torch or the checks inside the notebook changes nothing.
"""

from __future__ import annotations

import builtins
from typing import Any

from ..checks.core import CheckFailed
from . import protocol
from .engine import NotebookSession, SessionFailed

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


class RemoteFunction:
    """Calls the student's function of this name in the notebook's process.

    The arguments travel as copies: whatever the function does to them in place happens to the
    notebook's copies, never to the grader's, so a check may keep using its own tensors after a
    call. What the last call changed (values, shape, dtype, ``requires_grad`` or ``.grad``) is
    reported in ``modified_arguments``, for the check that inputs are left alone.
    """

    def __init__(self, session: NotebookSession, name: str):
        self._session, self.__name__ = session, name
        #: Indexes of the positional arguments the last call changed in place.
        self.modified_arguments: tuple[int, ...] = ()

    def __repr__(self) -> str:
        return f"<student function {self.__name__}>"

    def __call__(self, *args: Any) -> Any:
        request = {"op": "call", "name": self.__name__, "args": [protocol.encode(a) for a in args]}
        try:
            reply = self._session.request(request)
        except SessionFailed as failure:
            raise NotebookStopped(f"`{self.__name__}` stopped the notebook's process: {failure}") \
                from None
        self.modified_arguments = ()
        if not isinstance(reply, dict) or not reply.get("ok"):
            raise _rebuild_error(reply if isinstance(reply, dict) else {})
        changed = reply.get("changed")
        if isinstance(changed, list):
            self.modified_arguments = tuple(sorted(
                {i for i in changed if isinstance(i, int) and 0 <= i < len(args)}))
        return protocol.decode(reply.get("result"))


class RemoteEnv(dict):
    """The notebook's global names, fetched on demand (what otter's tests receive as ``env``)."""

    def __init__(self, session: NotebookSession):
        super().__init__()
        self._session = session

    def get(self, name: str, default: Any = None) -> Any:
        try:
            reply = self._session.request({"op": "get", "name": name})
        except SessionFailed:
            return default
        kind = reply.get("kind") if isinstance(reply, dict) else None
        if kind == "function":
            return RemoteFunction(self._session, name)
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
