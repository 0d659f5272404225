"""The sandboxed side: run a student's notebook's cells when the grader asks, then answer its requests.

This module runs inside the confined process, next to student code, so it holds nothing secret
(no test, no reference, no expected value) and decides nothing: student code can replace any of it,
so every message it sends is the notebook's answer, never a claim the grader believes. It runs
the code cell the grader names, through IPython (magics work as in Jupyter), and says when it
ended; it reads a variable; it calls a function on inputs the grader sends (twice on the same
objects, with the arguments as the calls left them, when asked); it runs a gradient descent
with a function of the notebook, sending back every theta it went through; and it answers
requests about objects it handed out as handles (``objects``: an attribute, a call, an operator,
``str()``). Results go back as plain tensors and values, other objects as handles; the grader
judges them, and measures time itself (``session``).
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import traceback
from pathlib import Path
from typing import Any

from labkit.checks import core, descent
from labkit.datafiles import check_names
from labkit.notebooks import code_cell_sources
from . import protocol, confine, objects

def _first_line(error: BaseException, prefix: str = "") -> str:
    """An error of student code as feedback shows it: the first line of its message, cut as
    every student error text is (``core.clip_error``: a long message could carry the hidden
    inputs)."""
    lines = str(error).strip().splitlines()
    return core.clip_error(prefix + (lines[0] if lines else ""))


def _error_text(error: BaseException) -> str:
    """A cell's error: its type and the first line of its message."""
    return _first_line(error, f"{type(error).__name__}: ").rstrip(": ")


class _Cells:
    """The notebook's code cells, run one at a time in one IPython shell when the grader asks."""

    def __init__(self, notebook_bytes: bytes):
        from IPython.core.interactiveshell import InteractiveShell

        self.sources = code_cell_sources(notebook_bytes)
        self.shell = InteractiveShell.instance(colors="NoColor")
        self.shell.history_manager.enabled = False

    @property
    def namespace(self) -> dict[str, Any]:
        return self.shell.user_ns

    def run(self, index: Any) -> dict[str, Any]:
        if not isinstance(index, int) or not 0 <= index < len(self.sources):
            return {"event": "cell", "index": index, "error": "no such cell"}
        # The grader's interrupt (SIGINT, as Jupyter's button) stops a cell that runs too long;
        # between cells it is ignored, so that a late one cannot break a message in two.
        signal.signal(signal.SIGINT, signal.default_int_handler)
        try:
            result = self.shell.run_cell(self.sources[index], store_history=False)
        finally:
            signal.signal(signal.SIGINT, signal.SIG_IGN)
        sys.stdout.flush()
        sys.stderr.flush()
        error = result.error_before_exec or result.error_in_exec
        return {"event": "cell", "index": index,
                "error": None if error is None else _error_text(error)}


#: The objects handed to the grader as handles, for the life of this process.
_objects = objects.ObjectTable()


def _describe_value(value: Any) -> dict[str, Any]:
    """A name's value: a function (called by its name), or data with handles for the rest."""
    import torch

    if isinstance(value, torch.Tensor):
        return {"kind": "tensor", "value": protocol.encode(value)}
    if callable(value):  # its handle too, for when the grader passes it as an argument
        return {"kind": "function", "object": _objects.keep(value)}
    return {"kind": "value", "value": _objects.encode(value)}


def _state(value: Any) -> Any:
    """An argument as a call left it, for the grader to compare with what it sent: a tensor's
    values (with shape and dtype), whether it requires grad, and its ``.grad``."""
    import torch

    if not isinstance(value, torch.Tensor):
        return None
    return {"values": protocol.encode(value), "requires_grad": bool(value.requires_grad),
            "grad": None if value.grad is None else protocol.encode(value.grad)}


#: Tensors the grader sent once and refers to by id in later calls (``labkit.grading.standins.KeptTensors``): the
#: first copy received, never handed to student code; each call gets a clone.
_kept: dict[int, Any] = {}


def _arguments(request: dict[str, Any]) -> list[Any]:
    """A call's arguments, taking kept tensors from ``_kept`` and keeping the ones the grader
    asks to keep."""
    for kept_id in request.get("drop", []):
        _kept.pop(kept_id, None)
    keep = {int(index): int(kept_id) for index, kept_id in request.get("keep", [])}
    args = []
    for index, item in enumerate(request["args"]):
        if isinstance(item, dict) and "__kept__" in item:
            args.append(_kept[int(item["__kept__"])].clone())
            continue
        try:
            value = _objects.decode(item)
        except LookupError as error:  # a handle this process never handed out
            raise _NoTarget({"ok": False, "type": "LookupError", "message": str(error)}) from None
        if index in keep:
            _kept[keep[index]] = value
            value = value.clone()
        args.append(value)
    return args


def _not_a_function(namespace: dict[str, Any], name: str) -> dict[str, Any] | None:
    """The reply to a request about a name the notebook does not define as a function."""
    if callable(namespace.get(name)):
        return None
    return {"ok": False, "type": "NameError", "message": f"{name} is not a function"}


class _NoTarget(Exception):
    """A request names no object this process holds; carries the reply."""

    def __init__(self, reply: dict[str, Any]):
        super().__init__(reply.get("message"))
        self.reply = reply


def _target(namespace: dict[str, Any], request: dict[str, Any]) -> Any:
    """The object a request is about: a handle this process handed out, or a function of the
    notebook by its name."""
    if "handle" in request:
        handle = request["handle"]
        if not isinstance(handle, int) or isinstance(handle, bool):
            raise _NoTarget({"ok": False, "type": "LookupError", "message": "a malformed handle"})
        try:
            return _objects.get(handle)
        except LookupError as error:
            raise _NoTarget({"ok": False, "type": "LookupError", "message": str(error)}) from None
    name = request.get("name")
    if not isinstance(name, str) or (refusal := _not_a_function(namespace, name)) is not None:
        raise _NoTarget(refusal or {"ok": False, "type": "NameError", "message": "no name"})
    return namespace[name]


def _keywords(request: dict[str, Any]) -> dict[str, Any]:
    keywords = request.get("kwargs") or {}
    if not isinstance(keywords, dict):
        raise TypeError("keyword arguments must be a mapping")
    return {str(key): _objects.decode(value) for key, value in keywords.items()}


def _student_error(error: BaseException) -> dict[str, Any]:
    return {"ok": False, "type": type(error).__name__, "message": _first_line(error)}


def _call(namespace: dict[str, Any], request: dict[str, Any]) -> dict[str, Any]:
    """Call a function of the notebook. With ``twice``, call it again on the same objects, and
    send the arguments as the first call left them (the grader compares them with its own). With
    ``firsts``, call it once for each of them as first argument, the rest fresh copies of ``args``."""
    args = _arguments(request)  # first: it also keeps and drops what the grader says
    fn = _target(namespace, request)
    firsts = request.get("firsts")
    try:
        if isinstance(firsts, list):  # one call per first argument, each on fresh copies
            return {"ok": True, "results": [
                protocol.encode(fn(protocol.decode(first, grad_flags=False),
                                   *map(descent.fresh, args))) for first in firsts]}
        result = fn(*args, **_keywords(request))
        if not request.get("twice"):
            return {"ok": True, "result": _objects.encode(result)}
        after = [_state(arg) for arg in args]
        again = fn(*args)
    except BaseException as error:  # student code may raise anything, SystemExit included
        return _student_error(error)
    return {"ok": True, "result": protocol.encode(result), "again": protocol.encode(again),
            "after": after}


def _about_object(namespace: dict[str, Any], request: dict[str, Any]) -> dict[str, Any]:
    """An attribute of an object, an operator applied to it, or its ``str()`` (``objects``)."""
    args = _arguments(request)
    obj = _target(namespace, request)
    op = request["op"]
    try:
        if op == "attribute":
            result = objects.attribute(obj, request)
        elif op == "operator":
            result = objects.apply_operator(obj, request, args)
        else:
            return {"ok": True, "result": objects.text(obj)}
        return {"ok": True, "result": _objects.encode(result)}
    except BaseException as error:  # student code may raise anything, SystemExit included
        return _student_error(error)


def _descend(namespace: dict[str, Any], request: dict[str, Any]) -> dict[str, Any]:
    """Gradient descent with a function of the notebook (``labkit.checks.descent``); the reply
    carries every theta it went through, and the step that was not a tensor like them."""
    args = _arguments(request)
    fn = _target(namespace, request)
    start = protocol.decode(request["start"], grad_flags=False)
    try:
        outcome = descent.descend(fn, start, args, alpha=float(request["alpha"]),
                                  steps=int(request["steps"]), seconds=float(request["seconds"]))
    except BaseException as error:  # student code may raise anything, SystemExit included
        return _student_error(error)
    reply = {"ok": True, "trajectory": protocol.encode(outcome.trajectory)}
    if outcome.bad_step is not None:
        reply["bad_step"] = protocol.encode(outcome.bad_step)
    return reply


def serve(conn: socket.socket, cells: _Cells) -> None:
    while True:
        try:
            request = protocol.receive(conn)
        except protocol.ChannelClosed:
            return
        op = request.get("op") if isinstance(request, dict) else None
        namespace = cells.namespace
        try:
            if op == "cell":
                reply = cells.run(request.get("index"))
            elif op == "get":
                name = request["name"]
                reply = (_describe_value(namespace[name]) if name in namespace
                         else {"kind": "missing"})
            elif op == "call":
                reply = _call(namespace, request)
            elif op in ("attribute", "operator", "str"):
                reply = _about_object(namespace, request)
            elif op == "descend":
                reply = _descend(namespace, request)
            elif op == "bye":
                return
            else:
                reply = {"ok": False, "type": "ProtocolError", "message": f"unknown op {op!r}"}
            protocol.send(conn, reply)
        except _NoTarget as refusal:
            protocol.send(conn, refusal.reply)
        except Exception as error:  # an answer that cannot be encoded or is too large
            protocol.send(conn, {"ok": False, "kind": "other", "type": type(error).__name__,
                                 "message": core.clip_error(
                                     f"could not send the result back: {error}")})


def _cap_gpu_memory(memory_bytes: int) -> None:
    """Let this notebook's PyTorch take at most ``memory_bytes`` of the GPU, so that notebooks
    graded side by side share it and one that allocates without bound fails in its own cell.

    Set when CUDA first starts in this process (never before: most notebooks never touch the
    GPU themselves). It bounds PyTorch's allocator only: code that calls the CUDA driver directly,
    or lifts the cap on purpose, is not held by it.
    """
    import torch

    def cap() -> None:
        total = torch.cuda.get_device_properties(torch.cuda.current_device()).total_memory
        torch.cuda.set_per_process_memory_fraction(min(1.0, memory_bytes / total))

    lazy_call = getattr(torch.cuda, "_lazy_call", None)
    if lazy_call is not None:
        lazy_call(cap)
    elif torch.cuda.is_available():
        cap()


def _read_all(fd: int) -> bytes:
    with os.fdopen(fd, "rb") as stream:
        return stream.read()


def main(conn: socket.socket, output_fd: int, notebook_fd: int, job: dict[str, Any],
         handshake: tuple[int, int], data_fds: list[int] = ()) -> None:
    """Entry point in the freshly forked process; never returns.

    The notebook arrives as an open file and the job names no path of the grader's: nothing in
    this process's memory says where the class's submissions or results are. So do the course's
    data files: one open file each (``data_fds``), in the order of ``job["data"]``, their names in
    the working folder. ``handshake`` holds this side's ends of the pipes through which the fork
    server maps the sandbox's user (``confine.map_user``).
    """
    code = 0
    try:
        os.dup2(output_fd, 1)
        os.dup2(output_fd, 2)
        os.close(output_fd)
        notebook_bytes = _read_all(notebook_fd)
        limits = confine.Limits(**job.get("limits", {}))
        notebook_name = str(job["notebook_name"])
        folders = [Path(p) for p in job.get("keep", [])]
        names = job.get("data", [])
        job.clear()  # the fork server's frame holds the same dict
        try:
            data = dict(zip(check_names(list(names)), data_fds, strict=True))
            _, confinement, host_pid = confine.enter(
                notebook_bytes, notebook_name, limits, folders, handshake, {conn.fileno()},
                data,
            )
        except BaseException as error:  # no student code has run yet: say what broke
            traceback.print_exc()
            protocol.send(conn, {"event": "failed",
                                 "reason": f"the sandbox failed: {type(error).__name__}: {error}"})
            raise
        import torch

        torch.set_num_threads(1)
        _cap_gpu_memory(limits.memory_bytes)
        cells = _Cells(notebook_bytes)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        protocol.send(conn, {"event": "started", "pid": host_pid,
                             "confinement": confinement.__dict__})
        serve(conn, cells)
    except BaseException:  # the grader sees the closed connection and says what happened
        traceback.print_exc()
        code = 1
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except BaseException:
            pass
        os._exit(code)
