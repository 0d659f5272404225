"""The grader's side of execution: start confined notebook processes and talk to them.

``ForkServer`` keeps one pre-started interpreter (``labkit.grade.forkserver``) and restarts it if
it dies. ``NotebookSession`` runs one notebook in a fresh confined process, under a per-cell and a
per-notebook time limit, a memory limit and an output cap; if a cell hangs, exits the process or
crashes it, the session says which cell and runs the notebook again without it, so that what does
not depend on that cell can still be graded.
"""

from __future__ import annotations

import array
import json
import os
import select
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from collections.abc import Iterator
from typing import Any

import psutil

from ..notebooks import EXPORT_MARKER, code_cell_sources
from . import forkserver, protocol
from .sandbox import Limits, interpreter_folders, memory_usage

#: How often resident memory is sampled while a notebook runs.
_MEMORY_POLL_SECONDS = 0.05
#: At most this many cells are dropped from one notebook before the rest is graded as it stands.
MAX_FATAL_CELLS = 3
#: How long a cell interrupted for time has to stop before its process is stopped instead.
INTERRUPT_GRACE_SECONDS = 5.0


def _descends_from(pid: int, ancestor: int | None) -> bool:
    """Whether ``pid`` is ``ancestor`` or one of its descendants, as the kernel says (the pid the
    notebook's process reports is its claim; the grader signals only a process it started)."""
    if ancestor is None:
        return False
    try:
        return pid == ancestor or any(
            child.pid == pid for child in psutil.Process(ancestor).children(recursive=True))
    except psutil.Error:
        return False


class ForkServer:
    """A connection to a pre-started interpreter (``labkit.grade.forkserver``), shared by every
    thread of this process.

    With ``address`` it connects to the grading run's shared server; without one, or when the
    shared server cannot be reached, it starts a server of its own (and again if that one dies).
    """

    def __init__(self, address: str | None = None) -> None:
        self._lock = threading.Lock()
        self._address = address
        self._process: subprocess.Popen | None = None
        self._control: socket.socket | None = None
        self._reader = None

    def _start_own(self) -> None:
        self._process, self._control = forkserver.start()

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

    def _running(self) -> bool:
        if self._control is None:
            return False
        return self._process is None or self._process.poll() is None

    def spawn(self, job: dict[str, Any], connection_fd: int, output_fd: int, notebook_fd: int) -> int:
        """Fork a confined process for ``job``; returns its pid."""
        with self._lock:
            for attempt in (1, 2):
                if not self._running():
                    self._start()
                try:
                    self._control.sendmsg(
                        [json.dumps(job).encode("utf-8")],
                        [(socket.SOL_SOCKET, socket.SCM_RIGHTS,
                          array.array("i", [connection_fd, output_fd, notebook_fd]))],
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
    """A student's notebook running in a confined process, ready for the grader's requests."""

    def __init__(self, server: ForkServer, notebook: Path, notebook_name: str, limits: Limits,
                 hidden: list[Path]):
        self.server, self.notebook, self.notebook_name = server, notebook, notebook_name
        self.limits, self.hidden = limits, hidden
        self.report = RunReport()
        self.deadline = time.monotonic() + limits.notebook_seconds
        self._conn: socket.socket | None = None
        self._pid: int | None = None
        #: The process whose memory is watched: the one running the cells (inside the sandbox's
        #: pid namespace it is not the process the grader started).
        self._watch_pid: int | None = None
        self._cells = code_cell_sources(notebook.read_bytes())
        self._drain: _OutputDrain | None = None
        self._memory_exceeded = False
        # Resident memory allowed: what the process holds at start plus the limit.
        self._memory_ceiling = limits.memory_bytes + (1 << 30)
        self._keep = [str(folder) for folder in interpreter_folders(hidden)]
        #: Counts the processes started for this notebook: what one process was sent (tensors it
        #: keeps, see ``remote``) is unknown to the next.
        self.generation = 0

    # -- process lifetime -------------------------------------------------------------------

    def _spawn(self) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        read_fd, write_fd = os.pipe()
        job = {"notebook_name": self.notebook_name, "skip": sorted(self.report.fatal),
               "keep": self._keep, "limits": self.limits.__dict__}
        notebook_fd = os.open(self.notebook, os.O_RDONLY)
        try:
            self._pid = self.server.spawn(job, theirs.fileno(), write_fd, notebook_fd)
        finally:
            theirs.close()
            os.close(write_fd)
            os.close(notebook_fd)
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

    # -- messages -----------------------------------------------------------------------------

    def _wait_readable(self, seconds: float) -> bool:
        """Wait for a message, watching memory; False when ``seconds`` pass first."""
        end = time.monotonic() + max(0.0, seconds)
        while True:
            left = end - time.monotonic()
            if left <= 0:
                return False
            ready, _, _ = select.select([self._conn], [], [], min(left, _MEMORY_POLL_SECONDS))
            if ready:
                return True
            if self._watch_pid and memory_usage(self._watch_pid)["VmRSS"] > self._memory_ceiling:
                self._memory_exceeded = True
                return False

    def _receive(self, seconds: float) -> Any:
        """The next message, within ``seconds`` and the notebook's deadline, on the grader's
        clock alone: a message that starts in time but trickles in is cut off all the same."""
        seconds = min(seconds, self.deadline - time.monotonic())
        if not self._wait_readable(seconds):
            raise TimeoutError
        return protocol.receive(self._conn, deadline=time.monotonic() + max(seconds, 1.0))

    def _why_stopped(self, what: str, seconds: float) -> str:
        if self._memory_exceeded:
            return f"{what} used more than {self.limits.memory_bytes >> 20} MB of memory"
        if time.monotonic() >= self.deadline:
            return f"the notebook ran longer than {self.limits.notebook_seconds:.0f} s in all"
        return f"{what} ran longer than {seconds:.0f} s"

    # -- running the notebook -----------------------------------------------------------------

    def _started(self) -> None:
        started = self._receive(30.0)
        if not isinstance(started, dict) or started.get("event") == "failed":
            reason = started.get("reason") if isinstance(started, dict) else None
            raise ProtocolViolation(str(reason or "the notebook's process could not start"))
        pid = started.get("pid")
        if started.get("event") != "started" or not isinstance(pid, int) or pid <= 0:
            raise ProtocolViolation("the notebook's process started wrongly")
        if not _descends_from(pid, self._pid):
            raise ProtocolViolation("the notebook's process named another process as its own")
        self._watch_pid = pid
        confinement = started.get("confinement")
        self.report.confinement = confinement if isinstance(confinement, dict) else {}
        resident = started.get("resident")
        self._memory_ceiling = (resident if isinstance(resident, int) else 0) \
            + self.limits.memory_bytes

    def _runnable_after(self, current: int | None) -> Iterator[int]:
        """The cells the runner announces after ``current``: all but the dropped ones and the
        export cell (``child._run_cells`` skips the same)."""
        for index in range((-1 if current is None else current) + 1, len(self._cells)):
            if index not in self.report.fatal and EXPORT_MARKER not in self._cells[index]:
                yield index

    def _next_cell(self, message: Any, current: int | None) -> int:
        """The index of the cell a "cell" event announces, which must be the next cell to run:
        events that repeat or skip a cell (to reset the cell timer) are student code writing to
        the connection."""
        index = message.get("index")
        expected = next((i for i in self._runnable_after(current)), None)
        if not isinstance(index, int) or index != expected:
            raise ProtocolViolation(f"a forged message during code cell {(current or 0) + 1}")
        return index

    def _finished(self, message: Any, current: int | None) -> None:
        remaining = list(self._runnable_after(current))
        errors = message.get("errors", {})
        if message.get("cells") != len(self._cells) or remaining or not isinstance(errors, dict):
            raise ProtocolViolation("a forged end of the notebook")
        self.report.cells = len(self._cells)
        self.report.errors = {int(k): str(v)[:300] for k, v in errors.items()
                              if str(k).isdigit()}

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
        except (TimeoutError, OSError, protocol.ChannelClosed, protocol.BadMessage):
            return None
        self.report.interrupted[current] = reason
        return message

    def start(self) -> None:
        """Run the notebook's cells, dropping cells that hang or kill the process (re-running
        without them); raises ``SessionFailed`` when nothing more can run.

        Time is the grader's: each cell gets ``cell_seconds`` from the moment its start is
        announced, the whole notebook ``notebook_seconds``, and the announcements must follow
        the notebook's cells in order.
        """
        while True:
            self._spawn()
            current: int | None = None
            try:
                self._started()
                while True:
                    try:
                        message = self._receive(self.limits.cell_seconds)
                    except TimeoutError:
                        if current is None:
                            raise
                        message = self._interrupt(current, self._why_stopped(
                            f"code cell {current + 1}", self.limits.cell_seconds))
                        if message is None:
                            raise
                    event = message.get("event") if isinstance(message, dict) else None
                    if event == "cell":
                        current = self._next_cell(message, current)
                    elif event == "done":
                        self._finished(message, current)
                        return
                    else:
                        raise ProtocolViolation(f"an unknown message during code cell "
                                                f"{(current or 0) + 1}")
            except ProtocolViolation as violation:
                self.kill()
                raise SessionFailed(f"the notebook's process was stopped: {violation}") from None
            except TimeoutError:
                reason = self._why_stopped(f"code cell {current + 1}" if current is not None
                                           else "starting", self.limits.cell_seconds)
            except protocol.BadMessage as error:
                self.kill()
                raise SessionFailed(f"the notebook's process sent a message the grader does not "
                                    f"accept ({error}); it was stopped") from None
            except (protocol.ChannelClosed, OSError):
                reason = (f"code cell {current + 1} ended the notebook's process (it exited or crashed)"
                          if current is not None else "the notebook's process ended at start")
            self.kill()
            if current is None or time.monotonic() >= self.deadline \
                    or len(self.report.fatal) >= MAX_FATAL_CELLS:
                raise SessionFailed(reason)
            self.report.fatal[current] = reason

    def ensure_running(self) -> None:
        """Start the notebook again if an earlier call ended its process."""
        if self._conn is None:
            self.start()

    def request(self, message: dict[str, Any], seconds: float | None = None) -> Any:
        """Send one request and wait for its answer; restarts the notebook if it died earlier."""
        seconds = self.limits.call_seconds if seconds is None else seconds
        self.ensure_running()
        try:
            protocol.send(self._conn, message)
            return self._receive(seconds)
        except TimeoutError:
            reason = self._why_stopped("the call", seconds)
        except protocol.BadMessage as error:
            reason = f"the call's reply was not accepted ({error})"
        except (protocol.ChannelClosed, OSError):
            reason = "the call ended the notebook's process (it exited or crashed)"
        self.kill()
        raise SessionFailed(reason)
