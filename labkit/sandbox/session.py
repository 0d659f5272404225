"""The grader's side of execution: start confined notebook processes and talk to them.

``ForkServerClient`` keeps one pre-started interpreter (``labkit.sandbox.forkserver``) and restarts it if
it dies. ``NotebookSession`` runs one notebook in a fresh confined process, under a per-cell and a
per-notebook time limit, a memory limit and an output cap; if a cell hangs, exits the process or
crashes it, the session says which cell and runs the notebook again without it, so that what does
not depend on that cell can still be graded.
"""

from __future__ import annotations

import array
import atexit
import fcntl
import multiprocessing.util
import json
import os
import select
import signal
import socket
import struct
import subprocess
import termios
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from collections.abc import Iterator, Mapping
from typing import Any

import psutil

from labkit.datafiles import check_names
from labkit.notebooks import binds, code_cell_names, code_cell_sources, is_export_source
from . import cgroups, forkserver, protocol
from .confine import Limits, interpreter_folders, memory_usage, process_tree

#: How often resident memory is sampled while a notebook runs.
_MEMORY_POLL_SECONDS = 0.05
#: At most this many cells are dropped from one notebook before the rest is graded as it stands.
MAX_FATAL_CELLS = 3
#: How long a cell interrupted for time has to stop before its process is stopped instead.
INTERRUPT_GRACE_SECONDS = 5.0
#: A notebook's sandbox is started at most this many times before grading gives up on it (a
#: failure before any student code runs is the grader's: a fork server gone, memory short).
START_ATTEMPTS = 3


def _descends_from(pid: int, ancestor: int | None) -> bool:
    """Whether ``pid`` is ``ancestor`` or one of its descendants, as the kernel says (the pid the
    notebook's process reports is its claim; the grader signals only a process it started)."""
    return ancestor is not None and any(process.pid == pid for process in process_tree(ancestor))


_GROUPS: dict[str, Any] = {}


def notebook_groups() -> cgroups.RunGroups | None:
    """This process's cgroups for its notebooks (one ``cgroups.RunGroups``, made on first use and
    removed when the process ends), or None where none can be made (``cgroups.probe`` says why;
    the grader says it at start): memory is then limited per process only."""
    if "groups" not in _GROUPS:
        groups = None
        if cgroups.probe() is None:
            try:
                cgroups.RunGroups.remove_stale()  # left by workers that were killed
                groups = cgroups.RunGroups.create(f"grader-{os.getpid()}")
            except cgroups.CgroupsUnavailable:
                groups = None
        _GROUPS["groups"] = groups
        if groups is not None:
            atexit.register(groups.close)
            multiprocessing.util.Finalize(groups, groups.close, exitpriority=5)
    return _GROUPS["groups"]


class ForkServerClient:
    """A connection to a pre-started interpreter (``labkit.sandbox.forkserver``), shared by every
    thread of this process.

    With ``address`` it connects to the grading run's shared server; without one, or when the
    shared server cannot be reached, it starts a server of its own (and again if that one dies).
    """

    def __init__(self, address: str | None = None,
                 preload: forkserver.Preload = forkserver.Preload()) -> None:
        self._lock = threading.Lock()
        self._address = address
        self._preload = preload
        self._process: subprocess.Popen | None = None
        self._control: socket.socket | None = None
        self._reader = None
        self._folders: dict[tuple, list[str]] = {}

    def _start_own(self) -> None:
        self._process, self._control = forkserver.start(preload=self._preload)

    def _connect(self) -> bool:
        control = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            control.connect(self._address)
        except OSError:
            control.close()
            return False
        self._control = control
        return True

    def _start(self) -> None:
        if self._address is None or not self._connect():
            self._address = None  # from now on, a server of its own
            self._start_own()
        self._reader = self._control.makefile("rb")
        try:
            ready = json.loads(self._reader.readline() or b"{}")
        except ValueError:
            ready = {}
        if not ready.get("ready"):
            raise RuntimeError("the grading interpreter failed to start")
        #: Whether the server had started CUDA before forking (it must never have).
        self.cuda_initialized = bool(ready.get("cuda_initialized"))
        #: Where the server's (isolated) interpreter reads code from (``confine.interpreter_paths``).
        interpreter = ready.get("interpreter")
        self.interpreter = interpreter if isinstance(interpreter, dict) else None

    def folders(self, hidden: list[Path]) -> list[str]:
        """The folders a notebook forked from this server is given (``interpreter_folders`` of
        the server's own interpreter, less ``hidden``)."""
        with self._lock:
            if not self._running():
                self._start()
            interpreter = self.interpreter
            key = (json.dumps(interpreter, sort_keys=True), tuple(map(str, hidden)))
            if key not in self._folders:  # the same for every notebook of a run
                self._folders[key] = [str(folder) for folder in interpreter_folders(
                    hidden, interpreter=interpreter)]
            return self._folders[key]

    def _running(self) -> bool:
        if self._control is None:
            return False
        return self._process is None or self._process.poll() is None

    def spawn(self, job: dict[str, Any], connection_fd: int, output_fd: int, notebook_fd: int,
              placement: list[int] = (), data: list[int] = ()) -> int:
        """Fork a confined process for ``job``; returns its pid. ``placement`` are descriptors of
        ``cgroup.procs`` files the server writes the new process's pid into before it runs
        anything (``cgroups.NotebookGroup.procs_descriptors``); ``data``, one open file per name
        of ``job["data"]``, in that order."""
        with self._lock:
            for attempt in (1, 2):
                if not self._running():
                    self._start()
                try:
                    self._control.sendmsg(
                        [json.dumps(job).encode("utf-8")],
                        [(socket.SOL_SOCKET, socket.SCM_RIGHTS,
                          array.array("i", [connection_fd, output_fd, notebook_fd,
                                            *data, *placement]))],
                    )
                    reply = json.loads(self._reader.readline() or b"{}")
                    if "pid" in reply:
                        return int(reply["pid"])
                except (OSError, ValueError):
                    pass
                self.close()  # broken: start it again once (a server of its own)
                self._address = None
            raise RuntimeError("the grading interpreter keeps failing")

    def close(self) -> None:
        if self._control is not None:
            try:
                self._control.close()
            except OSError:
                pass
        if self._process is not None:
            try:
                self._process.kill()
                self._process.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                pass
        self._process, self._control = None, None


class SessionFailed(RuntimeError):
    """The notebook process is gone or stuck; the message says what happened, in words."""


class GraderFailure(SessionFailed):
    """The grader could not start a sandbox for the notebook, before any of the student's code
    ran, even after trying again: the grader's failure, never charged to the student."""


class NotebookRejected(SessionFailed):
    """The notebook's process broke the grader's protocol while its cells ran (a forged or
    malformed message): it was stopped, and none of the notebook is graded, since nothing it
    answered, before or after, can be told from what it forged."""


class StartFailed(RuntimeError):
    """One attempt to start a notebook's sandbox failed before any student code ran."""


class ProtocolViolation(SessionFailed):
    """The notebook's process sent what its runner never sends: student code wrote to the
    grader's connection. The notebook is stopped and not run again."""


@dataclass
class RunReport:
    """What happened while the notebook's cells ran (for the student's notes)."""

    cells: int = 0
    errors: dict[int, str] = field(default_factory=dict)
    fatal: dict[int, str] = field(default_factory=dict)
    #: Cells stopped for time by an interrupt, after which the notebook went on in the same
    #: process (no re-run): index -> why.
    interrupted: dict[int, str] = field(default_factory=dict)
    output_bytes: int = 0
    output_head: str = ""
    confinement: dict[str, Any] = field(default_factory=dict)
    problem: str | None = None


class _OutputDrain(threading.Thread):
    """Reads a process's printed output, keeping at most ``cap`` bytes of it."""

    def __init__(self, fd: int, cap: int):
        super().__init__(daemon=True)
        self.fd, self.cap, self.total, self.head = fd, cap, 0, bytearray()

    def run(self) -> None:
        with os.fdopen(self.fd, "rb", buffering=0) as stream:
            while chunk := stream.read(1 << 16):
                self.total += len(chunk)
                if len(self.head) < self.cap:
                    self.head += chunk[: self.cap - len(self.head)]


class NotebookSession:
    """A student's notebook running in a confined process, ready for the grader's requests.

    The grader drives it: it sends each code cell to run, one at a time, then its calls. Every
    clock is the grader's, and a request's clock starts only once the notebook's process has read
    the request, as the kernel counts the bytes it has not read on the connection (``_unread``):
    a cell that says it has ended while it goes on running leaves the next request unread, and
    the time keeps counting. CPU time is read from the kernel too (``cpu_seconds``), never from
    what the process reports.
    """

    def __init__(self, server: ForkServerClient, notebook: Path, notebook_name: str, limits: Limits,
                 hidden: list[Path], data: Mapping[str, Path] | None = None):
        self.server, self.notebook, self.notebook_name = server, notebook, notebook_name
        self.limits, self.hidden = limits, hidden
        #: The course's data files: name in the notebook's working folder -> the grader's file.
        #: Each is opened here and copied by the sandbox into a read-only place of that folder
        #: (``confine``), so that a cell reads the course's file and no cell can change it.
        self.data = dict(data or {})
        check_names(list(self.data))  # the runner checks them again, before it lays them
        self.report = RunReport()
        self.deadline = time.monotonic() + limits.notebook_seconds
        self._conn: socket.socket | None = None
        self._pid: int | None = None
        #: The process whose memory is watched and which an interrupt is sent to: the one running
        #: the cells (inside the sandbox's pid namespace it is not the process the grader started).
        self._watch_pid: int | None = None
        content = notebook.read_bytes()
        self._cells = code_cell_sources(content)
        #: How the notes name each code cell (its heading and first line, see notebooks).
        self._names = code_cell_names(content)
        self._binding: dict[str, list[int]] = {}
        #: The code cells the grader has asked to run: those before this index (None: all of
        #: them, as a notebook no one has asked to run yet is run when first needed), and those
        #: of them the running process has run (``run_to``).
        self._position: int | None = None
        self._asked = False
        self._ran = 0
        self._drain: _OutputDrain | None = None
        self._memory_exceeded = False
        self._memory_ceiling = limits.memory_bytes + (1 << 30)
        #: The running process's cgroup (``cgroups.NotebookGroup``), where the kernel counts and
        #: bounds the memory, processes and CPU time of everything the notebook starts.
        self._group: cgroups.NotebookGroup | None = None
        #: Counts the processes started for this notebook: what one process was sent (tensors it
        #: keeps, see ``labkit.grading.standins``) is unknown to the next.
        self.generation = 0

    # -- process lifetime -------------------------------------------------------------------

    def _spawn(self) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        read_fd, write_fd = os.pipe()
        job = {"notebook_name": self.notebook_name, "keep": self.server.folders(self.hidden),
               "limits": self.limits.__dict__, "data": list(self.data)}
        notebook_fd = os.open(self.notebook, os.O_RDONLY)
        data_fds: list[int] = []
        placement: list[int] = []
        try:
            for source in self.data.values():
                data_fds.append(os.open(source, os.O_RDONLY | os.O_NOFOLLOW))
            groups = notebook_groups()
            self._group = None if groups is None else groups.notebook(self.limits.memory_bytes,
                                                                      self.limits.processes)
            placement = [] if self._group is None else self._group.procs_descriptors()
            self._pid = self.server.spawn(job, theirs.fileno(), write_fd, notebook_fd, placement,
                                          data_fds)
        except BaseException:
            ours.close()
            os.close(read_fd)
            raise
        finally:
            theirs.close()
            for fd in (write_fd, notebook_fd, *data_fds, *placement):
                os.close(fd)
        self._conn = ours
        self._drain = _OutputDrain(read_fd, self.limits.output_bytes)
        self._drain.start()
        self._memory_exceeded = False
        self.generation += 1

    def kill(self) -> None:
        if self._pid is not None:
            for kill in (os.killpg, os.kill):
                try:
                    kill(self._pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
        if self._group is not None:
            try:
                self._memory_exceeded = self._memory_exceeded or self._group.out_of_memory()
                self._group.end()  # every process of the notebook, whoever started it
            except OSError:
                pass
            self._group = None
        if self._conn is not None:
            self._conn.close()
        if self._drain is not None:
            self._drain.join(timeout=5)
            self.report.output_bytes += self._drain.total
            if not self.report.output_head:
                self.report.output_head = self._drain.head.decode("utf-8", errors="replace")
        self._pid, self._watch_pid, self._conn, self._drain = None, None, None, None

    def close(self) -> None:
        if self._conn is not None:
            try:
                protocol.send(self._conn, {"op": "bye"})
            except OSError:
                pass
        self.kill()

    def cpu_seconds(self) -> float:
        """CPU time used so far by every process of the running notebook, as the kernel counts it
        (``/proc``, read here, never reported by the notebook): the processes alive, and those
        that ended and were reaped by one of them."""
        if self._group is not None:
            return self._group.cpu_seconds()
        if self._pid is None:
            return 0.0
        total = 0.0
        for process in process_tree(self._pid):
            try:
                times = process.cpu_times()
            except psutil.Error:
                continue
            total += times.user + times.system + times.children_user + times.children_system
        return total

    # -- messages -----------------------------------------------------------------------------

    def _unread(self) -> int:
        """Bytes the grader sent that the notebook's process has not read yet (the kernel's
        count of what is queued on the connection)."""
        try:
            count = fcntl.ioctl(self._conn.fileno(), termios.TIOCOUTQ, b"\0\0\0\0")
        except OSError:
            return 0
        return struct.unpack("i", count)[0]

    def _over_memory(self) -> bool:
        """Whether the notebook went over its memory: as its cgroup's kernel count says (every
        process, memfd, shared memory and tmpfs), else by its main process's resident memory."""
        if self._group is not None:
            if self._group.out_of_memory():
                self._memory_exceeded = True
        elif self._watch_pid and memory_usage(self._watch_pid)["VmRSS"] > self._memory_ceiling:
            self._memory_exceeded = True
        return self._memory_exceeded

    def _receive(self, seconds: float) -> Any:
        """The reply to the request just sent, within ``seconds`` of the moment the notebook's
        process read it and within the notebook's deadline, on the grader's clock alone: a reply
        that starts in time but trickles in is cut off all the same. A request left unread as
        long (the process is still busy with what came before, whatever it said) ends the wait
        as a forged end (``ProtocolViolation``)."""
        sent = time.monotonic()
        read = None
        while True:
            now = time.monotonic()
            if read is None and self._unread() == 0:
                read = now
            if now >= self.deadline:
                raise TimeoutError
            if read is None and now - sent >= seconds:
                raise ProtocolViolation("its process said a step had ended while it went on "
                                        "running (it left the grader's next request unread)")
            if read is not None and now - read >= seconds:
                raise TimeoutError
            ready, _, _ = select.select([self._conn], [], [], _MEMORY_POLL_SECONDS)
            if ready:
                if read is None and self._unread() != 0:
                    raise ProtocolViolation("its process answered a request it had not read")
                break
            if self._over_memory():
                raise TimeoutError
        left = min(seconds, self.deadline - time.monotonic())
        return protocol.receive(self._conn, deadline=time.monotonic() + max(left, 1.0))

    def _why_stopped(self, what: str, seconds: float) -> str:
        if self._memory_exceeded:
            return f"{what} used more than {self.limits.memory_bytes >> 20} MB of memory"
        if time.monotonic() >= self.deadline:
            return f"the notebook ran longer than {self.limits.notebook_seconds:.0f} s in all"
        return f"{what} ran longer than {seconds:.0f} s"

    def cell_name(self, index: int) -> str:
        """Code cell ``index`` (from 0) as the notes name it: by its heading and first line,
        which a student can find in Jupyter, rather than by a number Jupyter does not show."""
        return self._names[index] if 0 <= index < len(self._names) else f"code cell {index + 1}"

    def binding_cells(self, name: str) -> list[int]:
        """The code cells that assign or define ``name`` (by their source), in order; worked
        out once per name."""
        if name not in self._binding:
            self._binding[name] = [index for index, source in enumerate(self._cells)
                                   if binds(source, name)]
        return self._binding[name]

    # -- running the notebook -----------------------------------------------------------------

    def _started(self) -> None:
        """Wait for the runner's first message. Nothing of the student's has run before it, so
        a failure here is the grader's own (``StartFailed``)."""
        try:
            started = self._receive(30.0)
        except (TimeoutError, protocol.ChannelClosed, protocol.BadMessage, OSError,
                ProtocolViolation) as error:
            raise StartFailed(f"the sandbox did not start ({type(error).__name__})") from None
        if not isinstance(started, dict) or started.get("event") == "failed":
            reason = started.get("reason") if isinstance(started, dict) else None
            raise StartFailed(str(reason or "the notebook's process could not start"))
        pid = started.get("pid")
        if started.get("event") != "started" or not isinstance(pid, int) or pid <= 0:
            raise StartFailed("the notebook's process started wrongly")
        if not _descends_from(pid, self._pid):
            raise StartFailed("the notebook's process named another process as its own")
        self._watch_pid = pid
        confinement = started.get("confinement")
        self.report.confinement = confinement if isinstance(confinement, dict) else {}
        self._memory_ceiling = memory_usage(pid)["VmRSS"] + self.limits.memory_bytes

    def _launch(self) -> None:
        """Start a confined process for the notebook, trying again (with a fresh fork server if
        need be) when it fails before any of the student's code ran: such a failure is never the
        student's."""
        for attempt in range(1, START_ATTEMPTS + 1):
            try:
                self._spawn()
                self._started()
                return
            except (StartFailed, RuntimeError, OSError) as error:
                self.kill()
                if attempt == START_ATTEMPTS or time.monotonic() >= self.deadline:
                    raise GraderFailure(f"the grader could not start this notebook's sandbox "
                                        f"({error}); please report it") from None

    def runnable(self) -> list[int]:
        """The code cells the grader runs: all but the dropped ones and otter's export cell
        (which writes a zip and acts outside the notebook)."""
        return [index for index, source in enumerate(self._cells)
                if index not in self.report.fatal and not is_export_source(source)]

    def _run_cell(self, index: int) -> None:
        protocol.send(self._conn, {"op": "cell", "index": index})
        try:
            message = self._receive(self.limits.cell_seconds)
        except TimeoutError:
            message = self._interrupt(index, self._why_stopped(
                self.cell_name(index), self.limits.cell_seconds))
            if message is None:
                raise
        if not isinstance(message, dict) or message.get("event") != "cell" \
                or message.get("index") != index:
            raise ProtocolViolation(f"a forged message during {self.cell_name(index)}")
        if self._over_memory():  # the kernel stopped one of its processes while the cell ran
            raise TimeoutError
        error = message.get("error")
        if isinstance(error, str):
            self.report.errors[index] = error[:300]

    def _interrupt(self, current: int, reason: str) -> Any:
        """Stop a cell that ran out of time the way Jupyter's interrupt does (SIGINT: a
        ``KeyboardInterrupt`` in the cell), so that the notebook goes on in the same process
        rather than running again without the cell. Returns the runner's next message, or None
        when the cell did not stop within ``INTERRUPT_GRACE_SECONDS`` (then the process is
        stopped as before)."""
        if self._memory_exceeded or self._watch_pid is None \
                or time.monotonic() >= self.deadline:
            return None
        try:
            os.kill(self._watch_pid, signal.SIGINT)
            message = self._receive(INTERRUPT_GRACE_SECONDS)
        except (TimeoutError, OSError, protocol.ChannelClosed, protocol.BadMessage,
                ProtocolViolation):
            return None
        self.report.interrupted[current] = reason
        return message

    @property
    def sources(self) -> list[str]:
        """The source of each code cell, as the notebook's process runs them."""
        return list(self._cells)

    @property
    def position(self) -> int:
        """How far the notebook has been run: the code cells before this index."""
        return len(self._cells) if self._position is None else self._position

    def start(self) -> None:
        """Run every code cell of the notebook (``run_to``)."""
        self.run_to(None)

    def run_to(self, end: int | None) -> None:
        """Run the notebook's code cells before index ``end`` (None: all of them) that have not
        run yet, dropping cells that hang or kill the process (re-running the notebook without
        them, up to ``end``); raises ``SessionFailed`` when nothing more can run. The grader
        judges each question on the notebook as it stands after its check cell, so it runs the
        notebook in stretches, from one check cell to the next; a process started again later
        (a call crashed it) runs the same cells again, up to where the notebook had got.

        Time is the grader's: each cell gets ``cell_seconds`` from the moment the notebook's
        process reads the request to run it, the whole notebook ``notebook_seconds``.
        """
        if end is None or (self._asked and self._position is None):
            self._position = None
        else:
            end = min(end, len(self._cells))
            self._position = max(self._position, end) if self._asked else end
        self._asked = True
        stop = self.position
        while True:
            if self._conn is None:
                self._launch()
                self._ran = 0
            current: int | None = None
            try:
                for current in self.runnable():
                    if self._ran <= current < stop:
                        self._run_cell(current)
                        self._ran = current + 1
                self._ran = max(self._ran, stop)
                if stop == len(self._cells):
                    self.report.cells = len(self._cells)
                return
            except ProtocolViolation as violation:
                self.kill()
                raise NotebookRejected(f"the notebook's process was stopped: {violation}") \
                    from None
            except TimeoutError:
                reason = self._why_stopped(self.cell_name(current) if current is not None
                                           else "starting", self.limits.cell_seconds)
            except protocol.BadMessage as error:
                self.kill()
                raise NotebookRejected(f"the notebook's process sent a message the grader does "
                                       f"not accept ({error}); it was stopped") from None
            except (protocol.ChannelClosed, OSError):
                reason = (self._why_stopped(self.cell_name(current), self.limits.cell_seconds)
                          if current is not None and self._over_memory() else
                          f"{self.cell_name(current)} ended the notebook's process (it exited or crashed)"
                          if current is not None else "the notebook's process ended at start")
            self.kill()
            if current is None or time.monotonic() >= self.deadline \
                    or len(self.report.fatal) >= MAX_FATAL_CELLS:
                raise SessionFailed(reason)
            self.report.fatal[current] = reason

    @property
    def running(self) -> bool:
        """Whether a process of the notebook is running now (requests would not start one)."""
        return self._conn is not None

    def ensure_running(self) -> None:
        """Start the notebook again if an earlier call ended its process, and run it as far as
        it had been run."""
        if self._conn is None:
            self.run_to(self._position)

    def request(self, message: dict[str, Any], seconds: float | None = None) -> Any:
        """Send one request and wait for its answer; restarts the notebook if it died earlier."""
        seconds = self.limits.call_seconds if seconds is None else seconds
        self.ensure_running()
        try:
            protocol.send(self._conn, message)
            reply = self._receive(seconds)
            if isinstance(reply, dict) and reply.get("ok") is False and self._over_memory():
                raise TimeoutError  # it failed because the kernel stopped a process of it
            return reply
        except TimeoutError:
            reason = self._why_stopped("the call", seconds)
        except protocol.BadMessage as error:
            reason = f"the call's reply was not accepted ({error})"
        except ProtocolViolation as violation:
            reason = f"the call was not answered as asked: {violation}"
        except (protocol.ChannelClosed, OSError):
            reason = (self._why_stopped("the call", seconds) if self._over_memory()
                      else "the call ended the notebook's process (it exited or crashed)")
        self.kill()
        raise SessionFailed(reason)
