"""The sandboxed side: run a student's notebook, then answer the grader's requests.

This module runs inside the confined process, next to student code, so it holds nothing secret:
no test, no reference, no expected value. It executes the notebook's code cells through IPython
(magics work as in Jupyter), reports each cell as it starts so that the grader can tell which cell
hung or crashed, and then serves two requests: read a variable, and call a function on inputs the
grader sends. Results go back as plain tensors; the grader judges them outside this process.
"""

from __future__ import annotations

import os
import socket
import sys
import traceback
from pathlib import Path
from typing import Any

from ..checks import descent
from ..notebooks import EXPORT_MARKER, code_cell_sources
from . import protocol, sandbox

#: The longest error text of student code that reaches the grader.
ERROR_CHARS = 200


def _first_line(error: BaseException, prefix: str = "") -> str:
    """An error of student code as feedback shows it: the first line of its message, at most
    ``ERROR_CHARS`` characters (a long message could carry the hidden inputs)."""
    lines = str(error).strip().splitlines()
    text = prefix + (lines[0] if lines else "")
    return text if len(text) <= ERROR_CHARS else text[: ERROR_CHARS - 1] + "…"


def _error_text(error: BaseException) -> str:
    """A cell's error: its type and the first line of its message."""
    return _first_line(error, f"{type(error).__name__}: ").rstrip(": ")


def _run_cells(conn: socket.socket, cells: list[str], skip: set[int]) -> dict[str, Any]:
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance(colors="NoColor")
    shell.history_manager.enabled = False
    errors: dict[int, str] = {}
    for index, source in enumerate(cells):
        if index in skip or EXPORT_MARKER in source:  # writing the zip acts outside the notebook
            continue
        protocol.send(conn, {"event": "cell", "index": index})
        result = shell.run_cell(source, store_history=False)
        error = result.error_before_exec or result.error_in_exec
        if error is not None:
            errors[index] = _error_text(error)
    return {"namespace": shell.user_ns, "errors": errors}


def _describe_value(value: Any) -> dict[str, Any]:
    import torch

    if isinstance(value, torch.Tensor):
        return {"kind": "tensor", "value": protocol.encode(value)}
    if callable(value):
        return {"kind": "function"}
    if value is None or isinstance(value, (bool, int, float, str, list, tuple, dict)):
        return {"kind": "value", "value": protocol.encode(value)}
    return {"kind": "other", "type": type(value).__name__}


def _state(value: Any) -> Any:
    """What a call must leave as it was: a tensor's values, shape, dtype and autograd state."""
    import torch

    if not isinstance(value, torch.Tensor):
        return None
    grad = value.grad.detach().clone() if value.grad is not None else None
    return value.detach().clone(), value.requires_grad, grad


def _changed(before: Any, after: Any) -> bool:
    import torch

    if before is None:
        return False
    values, requires_grad, grad = before
    if after.requires_grad != requires_grad:
        return True
    if (after.grad is None) != (grad is None):
        return True
    if after.shape != values.shape or after.dtype != values.dtype:
        return True
    if values.device.type == "meta":
        return False
    if grad is not None and not torch.equal(after.grad, grad):
        return True
    return not torch.equal(after.detach(), values)


#: Tensors the grader sent once and refers to by id in later calls (``remote.KeptTensors``): the
#: first copy received, never handed to student code; each call gets a clone.
_kept: dict[int, Any] = {}


def _arguments(request: dict[str, Any]) -> tuple[list[Any], list[Any]]:
    """A call's arguments, and the state each must keep (``_state``), taking kept tensors from
    ``_kept`` and keeping the ones the grader asks to keep."""
    for kept_id in request.get("drop", []):
        _kept.pop(kept_id, None)
    keep = {int(index): int(kept_id) for index, kept_id in request.get("keep", [])}
    args, before = [], []
    for index, item in enumerate(request["args"]):
        if isinstance(item, dict) and "__kept__" in item:
            pristine = _kept[int(item["__kept__"])]
            args.append(pristine.clone())
            before.append((pristine, False, None))
            continue
        value = protocol.decode(item)
        if index in keep:
            _kept[keep[index]] = value
            args.append(value.clone())
            before.append((value, False, None))
        else:
            args.append(value)
            before.append(_state(value))
    return args, before


def _not_a_function(namespace: dict[str, Any], name: str) -> dict[str, Any] | None:
    """The reply to a request about a name the notebook does not define as a function."""
    if callable(namespace.get(name)):
        return None
    return {"ok": False, "type": "NameError", "message": f"{name} is not a function"}


def _call(namespace: dict[str, Any], request: dict[str, Any]) -> dict[str, Any]:
    """Call a function of the notebook. The reply names the arguments the call changed (it does
    not carry them: the grader's own copies never change)."""
    args, before = _arguments(request)  # first: it also keeps and drops what the grader says
    if (refusal := _not_a_function(namespace, request["name"])) is not None:
        return refusal
    fn = namespace[request["name"]]
    try:
        result = fn(*args)
    except BaseException as error:  # student code may raise anything, SystemExit included
        return {"ok": False, "type": type(error).__name__, "message": _first_line(error)}
    changed = [i for i, (arg, state) in enumerate(zip(args, before)) if _changed(state, arg)]
    return {"ok": True, "result": protocol.encode(result), "changed": changed}


def _descend(namespace: dict[str, Any], request: dict[str, Any]) -> dict[str, Any]:
    """Gradient descent with a function of the notebook (``labkit.checks.descent``); the reply
    carries the final parameters, or the step that was not a tensor like them."""
    args, _ = _arguments(request)
    if (refusal := _not_a_function(namespace, request["name"])) is not None:
        return refusal
    fn = namespace[request["name"]]
    start = protocol.decode(request["start"])
    try:
        outcome = descent.descend(fn, start, args, alpha=float(request["alpha"]),
                                  steps=int(request["steps"]), seconds=float(request["seconds"]))
    except BaseException as error:  # student code may raise anything, SystemExit included
        return {"ok": False, "type": type(error).__name__, "message": _first_line(error)}
    reply = {"ok": True, "theta": protocol.encode(outcome.theta), "steps": outcome.steps,
             "seconds": outcome.seconds, "over_budget": outcome.over_budget}
    if outcome.bad_step is not None:
        reply["bad_step"] = protocol.encode(outcome.bad_step)
    return reply


def serve(conn: socket.socket, namespace: dict[str, Any]) -> None:
    while True:
        try:
            request = protocol.receive(conn)
        except protocol.ChannelClosed:
            return
        op = request.get("op")
        try:
            if op == "get":
                name = request["name"]
                reply = (_describe_value(namespace[name]) if name in namespace
                         else {"kind": "missing"})
            elif op == "call":
                reply = _call(namespace, request)
            elif op == "descend":
                reply = _descend(namespace, request)
            elif op == "bye":
                return
            else:
                reply = {"ok": False, "type": "ProtocolError", "message": f"unknown op {op!r}"}
            protocol.send(conn, reply)
        except Exception as error:  # an answer that cannot be encoded or is too large
            protocol.send(conn, {"ok": False, "kind": "other", "type": type(error).__name__,
                                 "message": f"could not send the result back: {error}"[:200]})


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
         handshake: tuple[int, int]) -> None:
    """Entry point in the freshly forked process; never returns.

    The notebook arrives as an open file and the job names no path of the grader's: nothing in
    this process's memory says where the class's submissions or results are. ``handshake`` holds
    this side's ends of the pipes through which the fork server maps the sandbox's user
    (``sandbox.map_user``).
    """
    code = 0
    try:
        os.dup2(output_fd, 1)
        os.dup2(output_fd, 2)
        os.close(output_fd)
        notebook_bytes = _read_all(notebook_fd)
        limits = sandbox.Limits(**job.get("limits", {}))
        notebook_name, skip = str(job["notebook_name"]), set(job.get("skip", []))
        folders = [Path(p) for p in job.get("keep", [])]
        job.clear()  # the fork server's frame holds the same dict
        try:
            _, confinement, host_pid = sandbox.enter(
                notebook_bytes, notebook_name, limits, folders, handshake, {conn.fileno()},
            )
        except BaseException as error:  # no student code has run yet: say what broke
            traceback.print_exc()
            protocol.send(conn, {"event": "failed",
                                 "reason": f"the sandbox failed: {type(error).__name__}: {error}"})
            raise
        import torch

        torch.set_num_threads(1)
        _cap_gpu_memory(limits.memory_bytes)
        protocol.send(conn, {"event": "started", "pid": host_pid,
                             "resident": sandbox.memory_usage()["VmRSS"],
                             "confinement": confinement.__dict__})
        cells = code_cell_sources(notebook_bytes)
        ran = _run_cells(conn, cells, skip)
        sys.stdout.flush()
        sys.stderr.flush()
        protocol.send(conn, {"event": "done", "cells": len(cells),
                             "errors": {str(k): v for k, v in ran["errors"].items()}})
        serve(conn, ran["namespace"])
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
