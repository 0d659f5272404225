"""A pre-started interpreter that forks one confined process per notebook.

Starting Python and importing torch costs seconds; forking a process that already has them costs
milliseconds. The server imports what notebooks of this lab use, runs no torch operation (thread
pools do not survive a fork) and never touches CUDA, then waits for jobs on a Unix socket. Each job
arrives with three file descriptors (the grader's connection to the new process, the pipe for its
printed output, and the notebook, opened); the server forks, and the child confines itself and runs the notebook
(``labkit.sandbox.runner``). The server never reads tests or autograders: a child inherits nothing
secret from it.

One server serves a whole grading run: the grader starts it first (``SharedForkServer``, below),
so that its imports run while the workers start, and every worker connects to its listening
socket, in a folder only the grading user can open and no sandbox can see. Its preloaded memory is
then held once, not once per worker. A worker that cannot reach it starts a server of its own.

Started by the grader (``start``) as an isolated interpreter with an environment of its own
(``server_environment``), never the grader's: what the notebooks are forked from holds no secret,
no variable of the TA's and no path of the class. The server ends when its owner connection closes.
"""

from __future__ import annotations

import array
import importlib.util
import json
import os
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from labkit.datafiles import MAX_DATA_FILES
from . import confine


@dataclass(frozen=True)
class Preload:
    """What the notebooks of the lab being graded use, loaded once in the server rather than in
    every notebook: their modules (the lab's ``lab.toml``: ``preload``) and a few lines run after
    them (``warm_up``, e.g. a first operation on meta tensors, which imports some 800 modules).
    Nothing in it may start a thread pool or CUDA: the server forks."""

    modules: tuple[str, ...] = ()
    warm_up: str = ""

    def to_json(self) -> str:
        return json.dumps({"modules": list(self.modules), "warm_up": self.warm_up})

    @classmethod
    def from_json(cls, text: str) -> "Preload":
        data = json.loads(text)
        return cls(tuple(data.get("modules", ())), str(data.get("warm_up", "")))


def _preload(lab: Preload) -> None:
    import IPython.core.interactiveshell  # noqa: F401
    import numpy  # noqa: F401
    import otter  # noqa: F401  (the notebooks' first cell imports it)
    import torch  # noqa: F401
    import torch.nn.functional  # noqa: F401

    for module in lab.modules:
        importlib.import_module(module)
    if lab.warm_up:
        exec(compile(lab.warm_up, "<lab.toml warm_up>", "exec"), {"torch": torch})

    # Everything of the kit that a confined process runs: its folder is covered there. The
    # seccomp library is loaded here too (finding it runs ldconfig, which the sandbox lacks).
    from labkit import notebooks, paths  # noqa: F401
    from labkit.checks import descent  # noqa: F401
    from . import runner, namespaces, protocol, confine  # noqa: F401

    try:
        import pyseccomp  # noqa: F401
    except (ImportError, RuntimeError, OSError):
        pass  # no libseccomp on this machine: the sandbox records that it has no filter


#: A job's descriptors: the grader's connection, the output pipe and the notebook, then one per
#: data file the job names (``job["data"]``, at most ``MAX_DATA_FILES``), then up to this many
#: ``cgroup.procs`` files to place the new process in (one per cgroup hierarchy).
MAX_PLACEMENT = 4


def _receive_job(control: socket.socket) -> tuple[dict, list[int]] | None:
    fds = array.array("i")
    message, ancillary, _, _ = control.recvmsg(
        65536, socket.CMSG_SPACE((3 + MAX_DATA_FILES + MAX_PLACEMENT) * fds.itemsize))
    if not message:
        return None
    for level, kind, data in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(data[: len(data) - (len(data) % fds.itemsize)])
    return json.loads(message.decode("utf-8")), list(fds)


#: The top-level packages the server imports before it forks (``_preload``): the folders they come
#: from are the only ones of the grader's ``sys.path`` the server's interpreter is given.
PRELOADED = ("labkit", "torch", "numpy", "otter", "IPython", "pyseccomp")
#: How the server's interpreter starts: isolated (``-I``: no PYTHONPATH, no user site folder, not
#: the current folder), with the folders the grader chose put first on its path.
_BOOT = ("import json, sys; sys.path[:0] = json.loads(sys.argv.pop(1)); "
         "from labkit.sandbox.forkserver import main; main()")


def package_folders(names: tuple[str, ...] = PRELOADED) -> list[str]:
    """The folders of this interpreter's ``sys.path`` that the packages ``names`` are imported
    from (found without importing them): a grader started with PYTHONPATH pointing at packages
    carried to the machine passes those on, and nothing else of that variable."""
    folders: list[str] = []
    for name in names:
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError):
            spec = None
        origin = spec.origin if spec is not None and spec.has_location else None
        locations = [origin] if origin else list(spec.submodule_search_locations or []) \
            if spec is not None else []
        for location in locations:
            here = Path(location).resolve()
            for entry in sys.path:
                if not entry or not Path(entry).is_dir():
                    continue
                folder = Path(entry).resolve()
                if folder in here.parents and str(folder) not in folders:
                    folders.append(str(folder))
                    break
    return folders


def server_environment() -> dict[str, str]:
    """All the variables the server's interpreter starts with: what Python, matplotlib and CUDA
    need, and nothing else of the grader's (no grading secret, no token of the TA's shell, no
    path of the class): every notebook is forked from this process, and a process can read all
    of its own memory, the strings of its first environment included."""
    environment = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "MPLBACKEND": "Agg",
        "OMP_NUM_THREADS": "1",
        # Should anything here ask whether CUDA is there, NVML answers without starting CUDA: a
        # CUDA started before a fork is broken in every child.
        "PYTORCH_NVML_BASED_CUDA_CHECK": "1",
    }
    # Where matplotlib keeps its font cache (rebuilt at every start without it), and the GPU's.
    kept = ("HOME", "MPLCONFIGDIR", "XDG_CACHE_HOME", *confine.KEPT_VARIABLES)
    environment.update({k: os.environ[k] for k in kept if k in os.environ})
    return environment


def start(listener: socket.socket | None = None, preload: Preload = Preload(),
          ) -> tuple[subprocess.Popen, socket.socket]:
    """Start a server (this module, in a new isolated interpreter with ``server_environment``,
    in /); returns it and the grader's end of its owner connection. With ``listener``, grader
    processes may also connect to that socket."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    fds = [theirs.fileno(), *([listener.fileno()] if listener is not None else [])]
    folders = package_folders(PRELOADED + tuple(m.split(".")[0] for m in preload.modules))
    process = subprocess.Popen(
        [sys.executable, "-I", "-c", _BOOT, json.dumps(folders), preload.to_json(),
         *map(str, fds)],
        pass_fds=fds, stdin=subprocess.DEVNULL, env=server_environment(), cwd="/")
    theirs.close()
    return process, ours


class SharedForkServer:
    """The grading run's one fork server, started before the workers (``with`` it): its address
    is a Unix socket in a new folder that only the grading user can open, under the system's
    temporary folder, which every sandbox replaces with its own."""

    def __init__(self, preload: Preload = Preload()) -> None:
        self.preload = preload

    @property
    def folder(self) -> Path:
        """Where its socket lies: a folder no sandbox may be given (``hidden``)."""
        return Path(self._folder)

    def __enter__(self) -> str:
        self._folder = tempfile.mkdtemp(prefix="labkit-forkserver-")
        self.address = os.path.join(self._folder, "socket")
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(self.address)
        listener.listen(64)
        # Its owner connection: closing it ends the server.
        self._process, self._owner = start(listener, self.preload)
        listener.close()
        return self.address

    def __exit__(self, *exc: object) -> None:
        self._owner.close()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        shutil.rmtree(self._folder, ignore_errors=True)


def _run_job(control: socket.socket, job: dict, fds: list[int], others: list[socket.socket]) -> None:
    """Fork the confined process of one job and tell ``control`` its pid. The child closes every
    connection of this server (``others``) before anything else: it must never hold a way to ask
    for processes of its own."""
    names = job.get("data", [])
    count = len(names) if isinstance(names, list) and len(names) <= MAX_DATA_FILES else -1
    if count < 0 or not 3 + count <= len(fds) <= 3 + count + MAX_PLACEMENT:
        for fd in fds:
            os.close(fd)
        control.sendall(json.dumps({"error": "a job needs three descriptors and one per data "
                                             "file"}).encode() + b"\n")
        return
    data, placement = fds[3:3 + count], fds[3 + count:]
    unshared_read, unshared_write = os.pipe()
    go_read, go_write = os.pipe()
    pid = os.fork()
    if pid == 0:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        for connection in others:
            connection.close()
        for fd in (unshared_read, go_write, *placement):
            os.close(fd)
        from . import runner

        runner.main(socket.socket(fileno=fds[0]), fds[1], fds[2], job, (unshared_write, go_read),
                    data)
    # In the notebook's cgroups before it goes on: it waits for "go" (``map_user``) first.
    try:
        for fd in placement:
            os.write(fd, str(pid).encode())
    except OSError:
        os.kill(pid, signal.SIGKILL)  # never run a notebook outside its limits
    for fd in (*fds, unshared_write, go_read):
        os.close(fd)
    confine.map_user(pid, unshared_read, go_write)
    control.sendall(json.dumps({"pid": pid}).encode() + b"\n")


def serve(owner: socket.socket, listener: socket.socket | None = None,
          ready: bytes = b"") -> None:
    """Serve jobs from ``owner`` and, when given a listening socket, from every grader process
    that connects to it (each is sent ``ready`` first), one job at a time: a fork takes
    milliseconds. Returns when ``owner`` closes its end."""
    # Children are reaped automatically; the grader watches them through their connections.
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    selector = selectors.DefaultSelector()
    selector.register(owner, selectors.EVENT_READ)
    if listener is not None:
        selector.register(listener, selectors.EVENT_READ)
    connections = [owner, *([listener] if listener is not None else [])]
    while True:
        for key, _ in selector.select():
            connection = key.fileobj
            if connection is listener:
                accepted, _ = listener.accept()
                try:
                    accepted.sendall(ready)
                except OSError:
                    accepted.close()
                    continue
                selector.register(accepted, selectors.EVENT_READ)
                connections.append(accepted)
                continue
            try:
                received = _receive_job(connection)
            except (OSError, ValueError):
                received = None
            if received is None:
                if connection is owner:
                    return
                selector.unregister(connection)
                connections.remove(connection)
                connection.close()
                continue
            try:
                _run_job(connection, *received, connections)
            except OSError:  # that grader process is gone; the others go on
                pass


def main() -> None:
    preload = Preload.from_json(sys.argv[1])
    owner = socket.socket(fileno=int(sys.argv[2]))
    listener = socket.socket(fileno=int(sys.argv[3])) if len(sys.argv) > 3 else None
    _preload(preload)
    import torch

    # The grader checks this: a fork server that has started CUDA would hand every notebook a
    # broken CUDA.
    ready = json.dumps({"ready": True, "cuda_initialized": bool(torch.cuda.is_initialized()),
                        "interpreter": confine.interpreter_paths()}).encode() + b"\n"
    owner.sendall(ready)
    serve(owner, listener, ready)
    os._exit(0)  # nothing to flush or clean up: skip the interpreter's slow teardown of torch


if __name__ == "__main__":
    main()
