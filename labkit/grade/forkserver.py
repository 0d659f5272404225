"""A pre-started interpreter that forks one confined process per notebook.

Starting Python and importing torch costs seconds; forking a process that already has them costs
milliseconds. The server imports what notebooks of this lab use, runs no torch operation (thread
pools do not survive a fork) and never touches CUDA, then waits for jobs on a Unix socket. Each job
arrives with three file descriptors (the grader's connection to the new process, the pipe for its
printed output, and the notebook, opened); the server forks, and the child confines itself and runs the notebook
(``labkit.grade.child``). The server never reads tests or autograders: a child inherits nothing
secret from it.

Run by the grader as ``python -m labkit.grade.forkserver FD``.
"""

from __future__ import annotations

import array
import json
import os
import signal
import socket
import sys

from . import sandbox


def _preload() -> None:
    os.environ.setdefault("MPLBACKEND", "Agg")
    # Should anything here ask whether CUDA is there, NVML answers without starting CUDA: a CUDA
    # started before a fork is broken in every child.
    os.environ["PYTORCH_NVML_BASED_CUDA_CHECK"] = "1"
    import IPython.core.interactiveshell  # noqa: F401
    import matplotlib.pyplot  # noqa: F401
    import numpy  # noqa: F401
    import otter  # noqa: F401  (the notebooks' first cell imports it)
    import sklearn.datasets  # noqa: F401
    import torch  # noqa: F401
    import torch.nn.functional  # noqa: F401

    # The first operation on meta tensors imports some 800 modules (about 1.5 s): do it once here
    # rather than in every notebook's device check. Meta tensors hold no data, so no thread pool
    # starts (the fork stays safe).
    probe = torch.empty(4, 3, device="meta")
    torch.linalg.svd(torch.cat((probe, probe.new_ones(4, 1)), dim=1) @ probe.new_ones(4, 2))

    # Everything of the kit that a confined process runs: its folder is covered there. The
    # seccomp library is loaded here too (finding it runs ldconfig, which the sandbox lacks).
    from .. import notebooks, paths  # noqa: F401
    from ..checks import descent  # noqa: F401
    from . import child, namespaces, protocol, sandbox  # noqa: F401

    try:
        import pyseccomp  # noqa: F401
    except (ImportError, RuntimeError, OSError):
        pass  # no libseccomp on this machine: the sandbox records that it has no filter


def _receive_job(control: socket.socket) -> tuple[dict, list[int]] | None:
    fds = array.array("i")
    message, ancillary, _, _ = control.recvmsg(65536, socket.CMSG_SPACE(3 * fds.itemsize))
    if not message:
        return None
    for level, kind, data in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(data[: len(data) - (len(data) % fds.itemsize)])
    return json.loads(message.decode("utf-8")), list(fds)


def serve(control: socket.socket) -> None:
    # Children are reaped automatically; the grader watches them through their connections.
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    while True:
        received = _receive_job(control)
        if received is None:
            return
        job, fds = received
        if len(fds) != 3:
            for fd in fds:
                os.close(fd)
            control.sendall(json.dumps({"error": "a job needs three descriptors"}).encode() + b"\n")
            continue
        unshared_read, unshared_write = os.pipe()
        go_read, go_write = os.pipe()
        pid = os.fork()
        if pid == 0:
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            control.close()
            os.close(unshared_read)
            os.close(go_write)
            from . import child

            child.main(socket.socket(fileno=fds[0]), fds[1], fds[2], job,
                       (unshared_write, go_read))
        for fd in (*fds, unshared_write, go_read):
            os.close(fd)
        sandbox.map_user(pid, unshared_read, go_write)
        control.sendall(json.dumps({"pid": pid}).encode() + b"\n")


def main() -> None:
    control = socket.socket(fileno=int(sys.argv[1]))
    _preload()
    import torch

    # The grader checks this: a fork server that has started CUDA would hand every notebook a
    # broken CUDA.
    ready = {"ready": True, "cuda_initialized": bool(torch.cuda.is_initialized())}
    control.sendall(json.dumps(ready).encode() + b"\n")
    serve(control)


if __name__ == "__main__":
    main()
