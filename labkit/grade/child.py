"""The sandboxed side: run a student's notebook, then answer the grader's requests.

This module runs inside the confined process, next to student code, so it holds nothing secret:
no test, no reference, no expected value. It executes the notebook's code cells through IPython
(magics work as in Jupyter), reports each cell as it starts so that the grader can tell which cell
hung or crashed, and then serves two requests: read a variable, and call a function on inputs the
grader sends. Results go back as plain tensors; the grader judges them outside this process.
"""

from __future__ import annotations

import json
import os
import socket
import sys
from pathlib import Path
from typing import Any

from ..notebooks import EXPORT_MARKER
from . import protocol, sandbox


def _code_cells(notebook_bytes: bytes) -> list[str]:
    nb = json.loads(notebook_bytes.decode("utf-8", errors="replace"))
    cells = []
    for cell in nb.get("cells", []):
        if cell.get("cell_type") != "code":
            continue
        source = cell.get("source", "")
        cells.append("".join(source) if isinstance(source, list) else str(source))
    return cells


def _error_text(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"[:2000]


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


def _changed(before: Any, after: Any) -> bool:
    import torch

    if not isinstance(before, torch.Tensor):
        return False
    if before.shape != after.shape or before.dtype != after.dtype:
        return True
    if before.device.type == "meta":
        return False
    return not torch.equal(before, after)


def _call(namespace: dict[str, Any], request: dict[str, Any]) -> dict[str, Any]:
    import torch

    fn = namespace.get(request["name"])
    if not callable(fn):
        return {"ok": False, "type": "NameError", "message": f"{request['name']} is not a function"}
    args = [protocol.decode(item) for item in request["args"]]
    snapshots = [a.detach().clone() if isinstance(a, torch.Tensor) else a for a in args]
    try:
        result = fn(*args)
    except BaseException as error:  # student code may raise anything, SystemExit included
        return {"ok": False, "type": type(error).__name__, "message": str(error)[:2000]}
    changed = {
        str(i): protocol.encode(arg) for i, (arg, before) in enumerate(zip(args, snapshots))
        if _changed(before, arg)
    }
    return {"ok": True, "result": protocol.encode(result), "changed": changed}


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
            elif op == "bye":
                return
            else:
                reply = {"ok": False, "type": "ProtocolError", "message": f"unknown op {op!r}"}
            protocol.send(conn, reply)
        except Exception as error:  # an answer that cannot be encoded, and the like
            protocol.send(conn, {"ok": False, "kind": "other", "type": type(error).__name__,
                                 "message": f"could not send the result back: {error}"[:2000]})


def main(conn: socket.socket, output_fd: int, job: dict[str, Any]) -> None:
    """Entry point in the freshly forked process; never returns."""
    code = 0
    try:
        os.dup2(output_fd, 1)
        os.dup2(output_fd, 2)
        os.close(output_fd)
        notebook_bytes = Path(job["notebook"]).read_bytes()
        limits = sandbox.Limits(**job.get("limits", {}))
        _, confinement = sandbox.enter(
            Path(job["workdir"]), notebook_bytes, job["notebook_name"], limits,
            [Path(p) for p in job.get("hidden", [])],
        )
        import torch

        torch.set_num_threads(1)
        protocol.send(conn, {"event": "started", "pid": os.getpid(),
                             "resident": sandbox.memory_usage()["VmRSS"],
                             "confinement": confinement.__dict__})
        cells = _code_cells(notebook_bytes)
        ran = _run_cells(conn, cells, set(job.get("skip", [])))
        sys.stdout.flush()
        sys.stderr.flush()
        protocol.send(conn, {"event": "done", "cells": len(cells),
                             "errors": {str(k): v for k, v in ran["errors"].items()}})
        serve(conn, ran["namespace"])
    except BaseException:  # the grader sees the closed connection and says what happened
        code = 1
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except BaseException:
            pass
        os._exit(code)
