"""One cgroup per notebook, so that the kernel counts and bounds everything a notebook holds.

Per-process limits (``RLIMIT_AS``, a watch on one pid's resident memory) miss what a notebook
holds in its child processes and in shared memory (memfd files, ``/dev/shm``, tmpfs): a memory
cgroup is charged for all of it, by the kernel, and when the charge reaches the limit the
kernel's OOM killer acts inside that cgroup only, never on another notebook or on the grader.

What a notebook's group bounds and counts (v1: separate hierarchies; v2: the unified one):

| what                      | cgroup v1                           | cgroup v2                      |
|---------------------------|-------------------------------------|--------------------------------|
| memory, shmem included    | ``memory.limit_in_bytes`` and, where| ``memory.max``,                |
|                           | the kernel counts swap,             | ``memory.swap.max = 0``,       |
|                           | ``memory.memsw.limit_in_bytes``     | ``memory.oom.group = 1``       |
| processes                 | ``pids.max``                        | ``pids.max``                   |
| CPU time, every process   | ``cpuacct.usage`` (ns)              | ``cpu.stat`` ``usage_usec``    |
| OOM kills in the group    | ``memory.oom_control`` ``oom_kill`` | ``memory.events`` ``oom_kill`` |
| killing it all            | SIGKILL each, forks stopped first   | ``cgroup.kill`` (5.14+)        |
|                           | (``pids.max = 0``)                  |                                |

On v1 the OOM killer takes the largest process of the group only (v1 has no ``oom.group``):
the caller ends the rest of the notebook when ``out_of_memory()`` says so.  A file on a tmpfs
(``/dev/shm``) stays charged to the group after its writer dies, until the file goes: the
sandbox's private tmpfs goes with the notebook's mount namespace.

Rules kept everywhere (the cgroups above the grader belong to the machine):

* groups are created only beneath the cgroup the grading process is in, in each hierarchy;
* everything created is removed again (``NotebookGroup.remove``, ``RunGroups.close``);
* no limit of a cgroup this module did not create is ever written.  The one change made to a
  cgroup it did not create is on v2, and only where needed: the controllers ``memory`` and
  ``pids`` are enabled in the grader's own (delegated) cgroup's ``cgroup.subtree_control``, after
  the grader's own processes are moved into a leaf child ``labkit-grader`` (v2 lets only a cgroup
  without processes give controllers to its children).  That leaf stays: it holds the grader.

Who may do it: root, directly; an ordinary user (a TA) only in a subtree delegated to them.  On
v1 that is a cgroup in each of the ``memory``, ``pids`` and ``cpuacct`` hierarchies, chowned to
the user with its ``cgroup.procs`` and ``tasks`` files, that the grader is started in (the
kernel makes the files of groups the user creates there the user's own).  On v2 it is the user's
own delegated cgroup (``systemd-run --user --scope -p Delegate=yes ...``); root too should grade
from a cgroup of its own there (``systemd-run --scope -p Delegate=yes ...``), since every
process in the grader's cgroup is moved into the leaf.  ``probe`` tries it all in a throwaway
group and says why it cannot be done, and what to do, when it cannot.

How the grader uses it (one ``RunGroups`` per grading worker)::

    groups = RunGroups.create("worker-1")              # CgroupsUnavailable(reason) if it can't
    group = groups.notebook(memory_bytes=1 << 30, processes=64)
    fds = group.procs_descriptors()                    # sent to the fork server (SCM_RIGHTS),
    # which writes each freshly forked child's pid into every one before the child runs anything:
    #     for fd in fds: os.write(fd, str(pid).encode())
    ...                                                # the notebook runs
    group.cpu_seconds(), group.memory_bytes(), group.out_of_memory()
    group.remove()                                     # kill, wait until empty, rmdir
    groups.close()                                     # whatever is left, at the end of the run

A notebook must never reach the cgroup file systems writable: a TA's notebook runs as the TA,
who owns its group's files (the sandbox covers ``/sys/fs/cgroup`` with an empty read-only
tmpfs).

Both are also context managers.  ``prefer_for_oom_killer(pid)`` raises a process's
``oom_score_adj`` to 1000 (no privilege needed), so that under pressure on the whole machine the
kernel kills notebooks before the grader and the fork server.
"""

from __future__ import annotations

import errno
import itertools
import os
import re
import secrets
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

#: v1 hierarchies a notebook's group needs, each on its own or combined with others in a mount.
V1_CONTROLLERS = ("memory", "pids", "cpuacct")
#: v2 controllers a notebook's group needs; CPU time comes from the core ``cpu.stat``, which
#: "exists whether the controller is enabled or not" (cgroup-v2.rst), so ``cpu`` is not needed.
V2_CONTROLLERS = ("memory", "pids")
#: Where the grader's own processes go on v2 when its cgroup must give controllers to children.
V2_GRADER_LEAF = "labkit-grader"
#: How long ``remove`` waits for the kernel to empty a killed group before giving up.
REMOVE_SECONDS = 10.0
#: How often it looks meanwhile: a killed notebook's processes are usually gone within a
#: millisecond or two, and the grader's next notebook waits for it.
_POLL_SECONDS = 0.001
#: The highest ``oom_score_adj``: the OOM killer's first choice.
OOM_SCORE_ADJ_MAX = 1000

HOW_TO_ALLOW = (
    "per-notebook cgroups need a cgroup the grading user may write: grade as root; or, on "
    "cgroup v2, start the grader in a delegated scope (`systemd-run --user --scope -p "
    "Delegate=yes python -m labkit grade ...`); or, on cgroup v1, have root create a cgroup in "
    "each of the memory, pids and cpuacct hierarchies beneath the grader's, chown it and its "
    "cgroup.procs and tasks files to the grading user, and start the grader in it; without them "
    "a notebook's memory is bounded per process only (its child processes and shared memory "
    "are not counted)"
)

_SAFE_LABEL = re.compile(r"[^A-Za-z0-9_.-]+")


class CgroupsUnavailable(RuntimeError):
    """Per-notebook cgroups cannot be made here; ``str()`` says why and what to do."""


# -- where the grader's own cgroups are -------------------------------------------------------

@dataclass(frozen=True)
class _Mount:
    point: Path
    root: str
    fstype: str
    options: frozenset[str]


def _mounts() -> list[_Mount]:
    """The cgroup file systems this process sees (``/proc/self/mountinfo``)."""
    found = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        before, _, after = line.partition(" - ")
        fields, tail = before.split(), after.split()
        if len(fields) < 5 or len(tail) < 3 or tail[0] not in ("cgroup", "cgroup2"):
            continue
        point = fields[4].replace("\\040", " ")
        found.append(_Mount(Path(point), fields[3], tail[0], frozenset(tail[2].split(","))))
    return found


def _cgroup_paths() -> dict[str, str]:
    """This process's cgroup path per hierarchy (``/proc/self/cgroup``): controller -> path,
    with ``""`` for the unified (v2) hierarchy."""
    own = {}
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        for name in controllers.split(",") if controllers else [""]:
            own[name] = path
    return own


def _inside(mount: _Mount, path: str) -> Path | None:
    """Where cgroup ``path`` is in ``mount``, or None when the mount does not show it."""
    relative = path
    if mount.root != "/":
        if path != mount.root and not path.startswith(mount.root.rstrip("/") + "/"):
            return None
        relative = path[len(mount.root):]
    folder = mount.point / relative.lstrip("/")
    return folder if folder.is_dir() else None


def _v1_bases() -> dict[str, Path] | str:
    """The grader's own cgroup in each needed v1 hierarchy, or why there is none."""
    own, mounts = _cgroup_paths(), [m for m in _mounts() if m.fstype == "cgroup"]
    bases = {}
    for controller in V1_CONTROLLERS:
        mount = next((m for m in mounts if controller in m.options), None)
        if mount is None or controller not in own:
            return f"the cgroup v1 {controller} hierarchy is not mounted"
        folder = _inside(mount, own[controller])
        if folder is None:
            return f"this process's {controller} cgroup is not visible under {mount.point}"
        bases[controller] = folder
    return bases


def own_unified_cgroup() -> Path | str:
    """This process's own cgroup in the unified (v2) hierarchy, whatever controllers it
    offers, or why there is none.  A grader moved into its leaf by an earlier run is given the
    leaf's parent, so that runs never nest leaves."""
    own = _cgroup_paths()
    mount = next((m for m in _mounts() if m.fstype == "cgroup2"), None)
    if mount is None or "" not in own:
        return "no cgroup v2 hierarchy is mounted"
    folder = _inside(mount, own[""])
    if folder is None:
        return f"this process's cgroup is not visible under {mount.point}"
    return folder.parent if folder.name == V2_GRADER_LEAF else folder


def _v2_base() -> Path | str:
    """The grader's own v2 cgroup when it offers the needed controllers, or why not."""
    folder = own_unified_cgroup()
    if isinstance(folder, str):
        return folder
    offered = _read(folder / "cgroup.controllers").split()
    missing = [c for c in V2_CONTROLLERS if c not in offered]
    if missing:
        return f"the cgroup v2 controllers {', '.join(missing)} are not offered to {folder}"
    return folder


def own_cgroups() -> dict[str, Path] | str:
    """Where this process's groups would be made: its own cgroup, as ``{"": folder}`` on v2
    when the unified hierarchy offers the needed controllers, else its cgroup in each needed v1
    hierarchy (controller -> folder), or why neither can be had."""
    v2 = _v2_base()
    if isinstance(v2, Path):
        return {"": v2}
    v1 = _v1_bases()
    return v1 if isinstance(v1, dict) else f"{v1}, and {v2}"


# -- small file helpers ------------------------------------------------------------------------

def _read(path: Path) -> str:
    return path.read_text().strip()


def _write(path: Path, value: str | int) -> None:
    """One write, as the kernel wants it for a cgroup file (no buffering, no truncation)."""
    fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    try:
        os.write(fd, str(value).encode())
    finally:
        os.close(fd)


def _keyed(path: Path) -> dict[str, int]:
    """A flat-keyed cgroup file (``key value`` per line) as integers; {} if it is absent."""
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        return {}
    pairs = (line.split() for line in lines)
    return {pair[0]: int(pair[1]) for pair in pairs if len(pair) == 2 and pair[1].isdigit()}


def _pids_of(folders: Iterable[Path]) -> list[int]:
    found: set[int] = set()
    for folder in folders:
        try:
            found.update(int(p) for p in (folder / "cgroup.procs").read_text().split())
        except FileNotFoundError:
            pass
    return sorted(found)


def _signal_all(pids: Iterable[int]) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _rmdir(folder: Path, deadline: float) -> None:
    """Remove an emptied cgroup; the kernel may take a moment to let go of killed processes."""
    while True:
        try:
            folder.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError as error:
            if error.errno != errno.EBUSY or time.monotonic() > deadline:
                raise
            time.sleep(_POLL_SECONDS)


def prefer_for_oom_killer(pid: int | str = "self", score: int = OOM_SCORE_ADJ_MAX) -> None:
    """Make ``pid`` the OOM killer's first choice machine-wide (``oom_score_adj``; raising it
    needs no privilege, and children inherit it), so that when the whole machine runs short the
    kernel takes a notebook rather than the grader or the fork server."""
    _write(Path(f"/proc/{pid}/oom_score_adj"), score)


# -- a notebook's group ------------------------------------------------------------------------

@dataclass
class NotebookGroup:
    """The cgroup(s) of one notebook: one folder per hierarchy on v1, one folder on v2."""

    version: int
    folders: dict[str, Path]  # controller -> folder (v1); {"": folder} on v2
    removed: bool = field(default=False, init=False)
    #: Its notebook was stopped (``end``): the run removes it once the kernel has emptied it.
    ended: bool = field(default=False, init=False)

    def _unique(self) -> list[Path]:
        return list(dict.fromkeys(self.folders.values()))

    def _file(self, controller: str, name: str) -> Path:
        return self.folders["" if self.version == 2 else controller] / name

    def procs_descriptors(self) -> list[int]:
        """Write-only descriptors of each hierarchy's ``cgroup.procs`` (close-on-exec), for
        another process to put a pid in: ``os.write(fd, str(pid).encode())`` on each.  The fork
        server receives them (SCM_RIGHTS) and writes a freshly forked child's pid before the
        child runs anything, so nothing the notebook does is ever outside the group.  The
        caller closes them."""
        return [os.open(folder / "cgroup.procs", os.O_WRONLY | os.O_CLOEXEC)
                for folder in self._unique()]

    def add(self, pid: int) -> None:
        """Move ``pid`` (a whole process) into the group, in every hierarchy."""
        for fd in self.procs_descriptors():
            try:
                os.write(fd, str(pid).encode())
            finally:
                os.close(fd)

    def pids(self) -> list[int]:
        """The processes in the group now (in this process's pid namespace)."""
        return _pids_of(self._unique())

    def cpu_seconds(self) -> float:
        """CPU time used by every process ever in the group, counted by the kernel."""
        if self.version == 2:
            return _keyed(self._file("", "cpu.stat")).get("usage_usec", 0) / 1e6
        return int(_read(self._file("cpuacct", "cpuacct.usage"))) / 1e9

    def memory_bytes(self) -> int:
        """Memory charged to the group now: anonymous, page cache and shmem (memfd, tmpfs)."""
        name = "memory.current" if self.version == 2 else "memory.usage_in_bytes"
        return int(_read(self._file("memory", name)))

    def peak_memory_bytes(self) -> int | None:
        """The highest charge so far, where the kernel keeps it (v2 ``memory.peak`` is 5.19+)."""
        name = "memory.peak" if self.version == 2 else "memory.max_usage_in_bytes"
        try:
            return int(_read(self._file("memory", name)))
        except FileNotFoundError:
            return None

    def oom_kills(self) -> int:
        """How many processes the kernel's OOM killer killed in the group."""
        name = "memory.events" if self.version == 2 else "memory.oom_control"
        return _keyed(self._file("memory", name)).get("oom_kill", 0)

    def out_of_memory(self) -> bool:
        """Whether the group ran out of memory: the kernel's OOM killer killed in it, or it is
        out of memory now (v1 ``under_oom``; v2 an ``oom`` event).  A charge that merely met
        the limit and was met by reclaiming page cache is not (see ``limit_hits``).  On v1 the
        killer took one process: end the rest with ``kill``."""
        name = "memory.events" if self.version == 2 else "memory.oom_control"
        counts = _keyed(self._file("memory", name))  # one read: the grader asks after every reply
        if counts.get("oom_kill", 0):
            return True
        return counts.get("oom" if self.version == 2 else "under_oom", 0) > 0

    def limit_hits(self) -> int:
        """How often a charge met the limit (reclaim often follows, not always an OOM kill)."""
        if self.version == 2:
            return _keyed(self._file("memory", "memory.events")).get("max", 0)
        hits = int(_read(self._file("memory", "memory.failcnt")))
        swap_too = self._file("memory", "memory.memsw.failcnt")  # met first when both are set
        return hits + (int(_read(swap_too)) if swap_too.exists() else 0)

    def signal(self) -> None:
        """SIGKILL every process in the group now, without waiting for the kernel to end them
        (``remove`` later, once ``pids`` is empty, costs no wait)."""
        if self.version == 2 and self._file("", "cgroup.kill").exists():
            _write(self._file("", "cgroup.kill"), 1)
        else:
            _signal_all(self.pids())

    def end(self) -> None:
        """Stop its notebook: SIGKILL every process in it now, and leave the group to the run,
        which removes it at its next ``notebook`` (or ``close``) once the kernel has ended them:
        nobody waits the few milliseconds a process with a large address space takes to go."""
        self.ended = True
        self.signal()

    def kill(self) -> None:
        """SIGKILL every process in the group, and any it forks meanwhile."""
        if self.version == 2 and self._file("", "cgroup.kill").exists():
            _write(self._file("", "cgroup.kill"), 1)
            return
        stop_forks = self._file("pids", "pids.max")
        before = _read(stop_forks)
        _write(stop_forks, 0)  # a fork bomb cannot outrun the killing
        try:
            for _ in range(1000):
                pids = self.pids()
                if not pids:
                    break
                _signal_all(pids)
                time.sleep(0.001)
        finally:
            _write(stop_forks, before)

    def remove(self) -> None:
        """Kill everything in the group, wait until the kernel has emptied it, remove it from
        every hierarchy.  Safe to call twice."""
        if self.removed:
            return
        deadline = time.monotonic() + REMOVE_SECONDS
        if any(folder.exists() for folder in self._unique()):
            self.kill()
            while self.pids() and time.monotonic() < deadline:
                _signal_all(self.pids())
                time.sleep(_POLL_SECONDS)
        for folder in self._unique():
            _rmdir(folder, deadline)
        self.removed = True

    def __enter__(self) -> NotebookGroup:
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()


def _limit_v1(folders: dict[str, Path], memory_bytes: int, processes: int) -> None:
    memory = folders["memory"]
    _write(memory / "memory.limit_in_bytes", memory_bytes)
    if (memory / "memory.memsw.limit_in_bytes").exists():  # the kernel counts swap: bound it too
        _write(memory / "memory.memsw.limit_in_bytes", memory_bytes)
    else:  # it does not (swapaccount=0): at least reclaim at the limit never swaps the group out
        _write(memory / "memory.swappiness", 0)
    _write(folders["pids"] / "pids.max", processes)


def _limit_v2(folder: Path, memory_bytes: int, processes: int) -> None:
    _write(folder / "memory.max", memory_bytes)
    if (folder / "memory.swap.max").exists():  # absent where the kernel has no swap accounting
        _write(folder / "memory.swap.max", 0)
    _write(folder / "memory.oom.group", 1)  # the OOM killer takes the whole notebook at once
    _write(folder / "pids.max", processes)


# -- one worker's (or one run's) groups ---------------------------------------------------------

@dataclass
class RunGroups:
    """The cgroup, beneath the grader's own, that holds one worker's notebook groups."""

    version: int
    folders: dict[str, Path]  # as in NotebookGroup
    notebooks: list[NotebookGroup] = field(default_factory=list)
    _numbers: itertools.count = field(default_factory=itertools.count, repr=False)

    @classmethod
    def create(cls, label: str) -> RunGroups:
        """Make the run's cgroup; ``label`` names it (with this pid and a random suffix, so
        that runs never share one).  Raises ``CgroupsUnavailable`` saying why and what to do."""
        name = f"labkit-{_SAFE_LABEL.sub('-', label)[:40]}-{os.getpid()}-{secrets.token_hex(3)}"
        bases = own_cgroups()
        if isinstance(bases, str):
            raise CgroupsUnavailable(f"{bases}; {HOW_TO_ALLOW}")
        try:
            if "" in bases:
                return cls(2, {"": _make_v2_run(bases[""], name)})
            return cls(1, _make_v1_run(bases, name))
        except OSError as error:
            raise CgroupsUnavailable(
                f"could not create a cgroup ({error.strerror}: {error.filename}); {HOW_TO_ALLOW}"
            ) from None

    @staticmethod
    def remove_stale() -> list[Path]:
        """Remove the cgroups of runs whose process is gone (a grading worker killed before it
        could remove its own: the pid in their name no longer runs) and that hold no process any
        more, beneath this process's cgroups; returns what was removed. A run's name carries its
        pid (``create``), and nothing is killed here: a group with a process in it stays."""
        bases = own_cgroups()
        if isinstance(bases, str):
            return []
        removed = []
        for base in dict.fromkeys(bases.values()):
            for folder in base.glob("labkit-*-*"):
                pid = folder.name.rsplit("-", 2)[-2]
                if not pid.isdigit() or Path(f"/proc/{pid}").exists() or not folder.is_dir():
                    continue
                groups = sorted((p for p in folder.rglob("*") if p.is_dir()),
                                key=lambda p: -len(p.parts)) + [folder]
                try:
                    if _pids_of(groups):
                        continue
                    for group in groups:
                        group.rmdir()
                    removed.append(folder)
                except OSError:
                    continue  # in use after all: a later run tries again
        return removed

    def notebook(self, memory_bytes: int, processes: int) -> NotebookGroup:
        """A new empty group for one notebook, with its limits set.

        ``memory_bytes`` bounds all the kernel charges to the group: anonymous memory of every
        process in it, page cache, shared memory (memfd, tmpfs files, until they are deleted)
        and kernel memory such as page tables and pipe buffers.  ``processes`` bounds its tasks,
        threads included (the pids controller counts them as ``RLIMIT_NPROC`` does).
        """
        self._remove_ended()
        name = f"notebook-{next(self._numbers)}"
        folders = {controller: base / name for controller, base in self.folders.items()}
        group = NotebookGroup(self.version, folders)
        try:
            for folder in group._unique():
                folder.mkdir()
            if self.version == 2:
                _limit_v2(folders[""], memory_bytes, processes)
            else:
                _limit_v1(folders, memory_bytes, processes)
        except BaseException:
            _remove_quietly(group)
            raise
        self.notebooks.append(group)
        return group

    def _remove_ended(self) -> None:
        """Remove the groups of stopped notebooks that the kernel has emptied (signalling again
        one that still holds a process forked after its first signal)."""
        for group in self.notebooks:
            if group.ended and not group.removed:
                try:
                    if group.pids():
                        group.signal()
                    else:
                        group.remove()
                except OSError:
                    pass  # tried again at the next notebook, and at ``close``
        self.notebooks = [group for group in self.notebooks if not group.removed]

    def close(self) -> None:
        """Kill and remove every notebook group made here, then the run's own cgroup."""
        for group in self.notebooks:
            _remove_quietly(group)
        self.notebooks.clear()
        deadline = time.monotonic() + REMOVE_SECONDS
        for folder in dict.fromkeys(self.folders.values()):
            _rmdir(folder, deadline)

    def __enter__(self) -> RunGroups:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _remove_quietly(group: NotebookGroup) -> None:
    try:
        group.remove()
    except OSError:
        pass


def _make_v1_run(bases: dict[str, Path], name: str) -> dict[str, Path]:
    """The run's folder in each hierarchy (one per mount where controllers share one)."""
    folders = {controller: base / name for controller, base in bases.items()}
    made = []
    try:
        for folder in dict.fromkeys(folders.values()):
            folder.mkdir()
            made.append(folder)
    except OSError:
        for folder in made:
            folder.rmdir()
        raise
    return folders


def enable_v2_controllers(base: Path, controllers: Iterable[str] = V2_CONTROLLERS) -> None:
    """Let the children of ``base`` (the grader's own v2 cgroup) have the controllers notebooks
    need.

    v2 gives controllers to children only from a cgroup without processes (the root cgroup, the
    one without ``cgroup.type``, excepted): where ``base`` has not already enabled them, the
    processes in it (the grader's) are first moved into the leaf ``labkit-grader``, as
    systemd's delegation guidance says.
    """
    enabled = _read(base / "cgroup.subtree_control").split()
    wanted = [c for c in controllers if c not in enabled]
    if not wanted:
        return
    inside = _read(base / "cgroup.procs").split()
    if inside and (base / "cgroup.type").exists():
        leaf = base / V2_GRADER_LEAF
        leaf.mkdir(exist_ok=True)
        for pid in inside:
            try:
                _write(leaf / "cgroup.procs", pid)
            except ProcessLookupError:  # it ended meanwhile
                pass
    _write(base / "cgroup.subtree_control", " ".join(f"+{c}" for c in wanted))


def _make_v2_run(base: Path, name: str) -> Path:
    """The run's cgroup beneath the grader's, with the controllers its notebooks need."""
    enable_v2_controllers(base)
    folder = base / name
    folder.mkdir()
    try:
        _write(folder / "cgroup.subtree_control", " ".join(f"+{c}" for c in V2_CONTROLLERS))
    except OSError:
        folder.rmdir()
        raise
    return folder


# -- can it be done here? ------------------------------------------------------------------------

def probe() -> str | None:
    """Why per-notebook cgroups cannot be made here (None when they can), in one sentence that
    says what to do.  Tries it all in a throwaway group: create, limit, move a process in."""
    try:
        groups = RunGroups.create("probe")
    except CgroupsUnavailable as error:
        return str(error)
    try:
        group = groups.notebook(memory_bytes=64 << 20, processes=4)
        pid = os.fork()
        if pid == 0:  # a stand-in for a notebook: it only waits to be killed
            time.sleep(60)
            os._exit(0)
        try:
            group.add(pid)
            if pid not in group.pids():
                return f"a process could not be moved into a new cgroup; {HOW_TO_ALLOW}"
        finally:
            _signal_all([pid])
            os.waitpid(pid, 0)
            group.remove()
        return None
    except OSError as error:
        return f"a new cgroup could not be limited or entered ({error.strerror}); {HOW_TO_ALLOW}"
    finally:
        groups.close()
