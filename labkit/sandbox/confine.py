"""Confine the process that runs a student's notebook, before any student code runs.

The same confinement holds whoever grades, root or a TA on a laptop: it is built from
unprivileged user namespaces, in bubblewrap's order, one property per step.

| step (bubblewrap's flag)          | what it stops                                               |
|-----------------------------------|-------------------------------------------------------------|
| user namespace (``--unshare-user``) | the notebook's id maps to ``nobody`` (as root) or the TA's |
|                                   | own id, and it holds no capability over anything outside    |
| pid namespace, own init (``--unshare-pid``) | seeing or signalling other notebooks, the grader or |
|                                   | the TA's processes; processes outliving the notebook: when  |
|                                   | it ends, its init ends and the kernel kills the rest        |
| ipc namespace (``--unshare-ipc``) | shared memory and semaphores reaching another notebook or   |
|                                   | surviving this one                                          |
| network namespace (``--unshare-net``) | the network, and abstract sockets of other processes  |
| uts, cgroup namespaces            | host names and cgroup paths of the machine                  |
| a new root (``--tmpfs / --ro-bind``) | reading the kit, its tests, the TA's home, the current |
|                                   | folder, SUBMISSIONS and OUT: only the system's folders and  |
|                                   | the interpreter's are there, read-only; ``/tmp`` and        |
|                                   | ``/dev/shm`` are fresh and private; ``/proc`` shows only    |
|                                   | the notebook's processes                                    |
| the course's data files           | a notebook changing them for a later cell or call: copied   |
| (``--ro-bind`` of a copy)         | into a tmpfs of their own, read-only, bound into its folder |
| ``--dev``                         | devices beyond null, zero, full, random, urandom and the    |
|                                   | GPU's (``/dev/nvidia*``, when there is one)                 |
| ``--new-session``, ``--die-with-parent`` | terminal injection; running on after the grader      |
| ``--cap-drop ALL``, no new privileges | getting any capability back, setuid programs           |
| ``--seccomp``                     | ptrace and its relatives, kernel keyrings, bpf, perf,       |
|                                   | userfaultfd, mounting, new namespaces                       |
| resource limits                   | core dumps, files over 256 MB, more than ``processes``      |
|                                   | processes, and (without CUDA) memory beyond the limit       |
| clean environment                 | the grader's variables (paths, tokens)                      |

The process chain, all forked from the pre-started interpreter (no interpreter start):

    fork server --fork--> outer (unshares; the server writes its id maps; waits)
                 --fork--> init, pid 1 of the new pid namespace (reaps; exits with the notebook)
                 --fork--> notebook, pid 2 (builds the new root, drops everything, runs cells)

The grader kills the outer process to stop a notebook: init dies with it (parent-death signal),
and with init the kernel kills every process of the namespace.

Where user namespaces are not allowed, nothing is confined: ``probe`` says why, and the grader
refuses to grade unless told to grade unconfined (``Limits.confine = False``).
"""

from __future__ import annotations

import errno
import os
import resource
import select
import shutil
import signal
import socket
import sys
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, NoReturn

from labkit import paths
from . import cgroups, namespaces

#: Where graders keep their work: never made visible as a whole.
SHARED_TEMPORARY = tuple({Path(tempfile.gettempdir()).resolve(), Path("/tmp"), Path("/var/tmp"),
                          Path("/dev/shm")})
#: The user id the notebook runs as inside its namespace.
SANDBOX_UID = 1000
#: Who the notebook is outside when the grader is root ("nobody" on Debian and most Linuxes).
NOBODY_UID = 65534
NOBODY_GID = 65534
#: Where the notebook lives inside the sandbox: its home, its working folder, its only writable
#: place besides /dev/shm.
WORKDIR = Path("/tmp/notebook")
#: Top-level entries of the host kept in the new root, read-only: the system's programs,
#: libraries and settings (as symbolic links where the host has them so, e.g. merged /usr).
SYSTEM_ENTRIES = ("usr", "etc", "bin", "sbin", "lib", "lib32", "lib64", "libx32", "sys")
#: Device files kept: what programs expect to find, and the GPU's.
DEVICES = ("null", "zero", "full", "random", "urandom")
GPU_DEVICE_PREFIX = "nvidia"
#: Kernel calls a notebook never needs, refused with EPERM (bubblewrap's and Flatpak's list,
#: less what a user namespace already refuses).
BLOCKED_SYSCALLS = (
    "ptrace", "process_vm_readv", "process_vm_writev", "kcmp", "pidfd_getfd",
    "keyctl", "add_key", "request_key", "bpf", "perf_event_open", "userfaultfd",
    "unshare", "setns", "mount", "umount2", "pivot_root", "chroot", "mount_setattr",
    "move_mount", "open_tree", "fsopen", "fsconfig", "fsmount", "fspick",
    "open_by_handle_at", "name_to_handle_at", "kexec_load", "kexec_file_load", "init_module",
    "finit_module", "delete_module", "acct", "swapon", "swapoff", "reboot", "syslog",
    "quotactl", "personality", "uselib", "lookup_dcookie", "vhangup",
)
_TIOCSTI = 0x5412


@dataclass
class Limits:
    """Per-notebook limits. Defaults are far above what the lab needs (seconds, a few hundred MB).

    ``confine = False`` grades without namespaces, for machines that forbid them; the gradebook's
    notes say so on every row.
    """

    cell_seconds: float = 60.0
    notebook_seconds: float = 600.0
    call_seconds: float = 60.0
    memory_bytes: int = 4 << 30
    output_bytes: int = 1 << 20
    processes: int = 256
    confine: bool = True


@dataclass
class Confinement:
    """What ``enter`` achieved, reported back to the grader."""

    namespaces: bool = False
    outside_uid: int | None = None
    new_root: bool = False
    capabilities_dropped: bool = False
    seccomp: bool = False
    gpu_devices: list[str] = field(default_factory=list)


class SandboxError(RuntimeError):
    """The sandbox could not be built; the message says which step failed and why."""


# -- who the notebook is ------------------------------------------------------------------------

def outside_ids() -> tuple[int, int]:
    """The ids the notebook has outside its namespace: ``nobody`` when the grader is root (so
    that nothing of root's is its own), the grader's own otherwise (the only ids a user may map)."""
    if os.geteuid() == 0:
        return NOBODY_UID, NOBODY_GID
    return os.geteuid(), os.getegid()


def map_user(pid: int, unshared: int, go: int, timeout: float = 10.0) -> None:
    """In the fork server: wait for the child ``pid`` to unshare, write its id maps, let it go.

    The parent writes them because it still holds its capabilities outside the new namespace:
    root may map the child to ``nobody``, which the child itself could not.
    """
    try:
        ready, _, _ = select.select([unshared], [], [], timeout)
        if ready and os.read(unshared, 1) == b"u":
            uid, gid = outside_ids()
            try:
                namespaces.write_id_maps(pid, SANDBOX_UID, uid, gid)
            except OSError:
                pass  # the child sees no mapping and reports it
        os.write(go, b"g")
    except OSError:
        pass
    finally:
        os.close(unshared)
        os.close(go)


# -- the new root -------------------------------------------------------------------------------

def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def interpreter_paths() -> dict[str, list[str]]:
    """Where this interpreter reads its code from: its prefixes and its ``sys.path`` (the fork
    server reports its own, isolated one, so that the sandbox is given that and nothing of the
    grader's ``sys.path``: no folder PYTHONPATH or a user site folder put there)."""
    return {"prefixes": sorted({sys.prefix, sys.base_prefix, sys.exec_prefix}),
            "path": [p for p in sys.path if p]}


def interpreter_folders(hidden: list[Path], cwd: Path | None = None,
                        interpreter: dict[str, list[str]] | None = None) -> list[Path]:
    """What the notebooks' interpreter may still read lazily: its standard library and packages.

    Taken from ``interpreter`` (``interpreter_paths`` as the fork server reported it; by default
    this process's), less what must stay out of sight: the folder the grader was started from,
    the kit (everything of it that the sandbox runs is imported before the fork) except a virtual
    environment inside it, the hidden folders and files, the shared temporary folders, and any
    folder holding one of them.
    """
    interpreter = interpreter or interpreter_paths()
    cwd = (cwd or Path.cwd()).resolve()
    prefixes = {Path(p).resolve() for p in interpreter["prefixes"]}
    candidates = prefixes | {Path(p).resolve() for p in interpreter["path"] if Path(p).is_dir()}
    # The shared temporary folders hold the grader's own work (extracted submissions, tests):
    # a folder below them may be kept (a fresh clone's environment), never one of them.
    secret = [paths.ROOT, *hidden, *SHARED_TEMPORARY]
    kept: list[Path] = []
    for folder in sorted(candidates, key=lambda f: len(f.parts)):
        if folder == cwd and folder not in prefixes:
            continue
        if any(_inside(s, folder) for s in secret):  # the kit or a hidden folder is within
            continue
        if any(_inside(folder, h) for h in hidden):
            continue
        if _inside(folder, paths.ROOT) and not any(_inside(folder, p) for p in prefixes):
            continue
        if not any(_inside(folder, k) for k in kept):
            kept.append(folder)
    return kept


def _gpu_devices(dev: Path = Path("/dev")) -> list[Path]:
    return sorted(p for p in dev.iterdir() if p.name.startswith(GPU_DEVICE_PREFIX))


def _mount_point(target: Path, like: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    if like.is_dir():
        target.mkdir(exist_ok=True)
    else:
        target.touch(exist_ok=True)


def _build_root(root: Path, host: Path, keep: dict[Path, int], confinement: Confinement) -> None:
    """Lay out the notebook's file system under ``root`` (a fresh tmpfs), reading the host's
    tree under ``host``: the system's folders and the interpreter's (``keep``: each folder with
    a descriptor opened before the process lost its user, since it may lie under a folder such
    as /root that the sandbox's user cannot enter), read-only, at their own paths; a minimal
    /dev; mount points for /proc and /tmp."""
    for name in SYSTEM_ENTRIES:
        source = host / name
        if source.is_symlink():
            (root / name).symlink_to(os.readlink(source))
        elif source.is_dir():
            _mount_point(root / name, source)
            namespaces.bind(source, root / name, readonly=True, proc=host / "proc")
    # The private /tmp first: the interpreter's folders may lie under the host's /tmp (a fresh
    # clone's virtual environment, carried wheels) and are bound into it.
    (root / "tmp").mkdir()
    namespaces.mount("tmpfs", root / "tmp", "tmpfs", namespaces.MS_NOSUID | namespaces.MS_NODEV,
                     "mode=1777,size=512m")
    for folder, descriptor in keep.items():
        target = root / folder.relative_to("/")
        if target.exists():  # already visible through a system folder
            continue
        source = host / "proc" / "self" / "fd" / str(descriptor)
        _mount_point(target, source)
        namespaces.bind(source, target, readonly=True, proc=host / "proc")
    dev = root / "dev"
    dev.mkdir(exist_ok=True)
    namespaces.mount("tmpfs", dev, "tmpfs", namespaces.MS_NOSUID, "mode=0755,size=64k")
    for name in DEVICES:
        _mount_point(dev / name, host / "dev" / name)
        namespaces.bind(host / "dev" / name, dev / name, readonly=False)
    for device in _gpu_devices(host / "dev"):
        _mount_point(dev / device.name, device)
        namespaces.bind(device, dev / device.name, readonly=False)
        confinement.gpu_devices.append(f"/dev/{device.name}")
    for name, target in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"),
                         ("stdout", "/proc/self/fd/1"), ("stderr", "/proc/self/fd/2")):
        (dev / name).symlink_to(target)
    (dev / "shm").mkdir()
    # The kernel mounts a /proc for a new pid namespace only while the host's is visible to the
    # caller: this one is made before the host's tree goes.
    (root / "proc").mkdir(exist_ok=True)
    namespaces.mount("proc", root / "proc", "proc",
                     namespaces.MS_NOSUID | namespaces.MS_NODEV | namespaces.MS_NOEXEC)
    cgroups = root / "sys" / "fs" / "cgroup"
    if cgroups.is_dir():  # the TA's own cgroups may be writable by the TA: cover them
        namespaces.mount("tmpfs", cgroups, "tmpfs", namespaces.MS_NOSUID | namespaces.MS_NODEV
                         | namespaces.MS_RDONLY, "size=4k")


def _enter_new_root(keep: dict[Path, int], confinement: Confinement,
                    data: dict[str, int]) -> None:
    """Switch to a root holding only what ``_build_root`` put there, with its own /proc.

    As bubblewrap does: a scratch tmpfs becomes the root with the host's tree below it at
    /oldroot (so that folders under the host's /tmp can still be bound), the new root is built
    at /newroot, and a second pivot drops the host's tree altogether.
    """
    namespaces.make_private()
    namespaces.mount("tmpfs", "/tmp", "tmpfs", namespaces.MS_NOSUID | namespaces.MS_NODEV,
                     "mode=0755,size=64k")
    for name in ("oldroot", "newroot", "data"):
        os.mkdir(f"/tmp/{name}")
    namespaces.pivot_root("/tmp", "/tmp/oldroot")
    os.chdir("/")
    namespaces.mount("tmpfs", "/newroot", "tmpfs", namespaces.MS_NOSUID | namespaces.MS_NODEV,
                     "mode=0755,size=1m")
    _build_root(Path("/newroot"), Path("/oldroot"), keep, confinement)
    if data:
        _lay_data(data, Path("/data"), Path("/newroot") / WORKDIR.relative_to("/"),
                  Path("/oldroot/proc"))
    os.chdir("/newroot")
    namespaces.pivot_root(".", ".")  # the old tree is stacked on top of the new root...
    namespaces.umount_detached(".")  # ...and taken off it
    os.chdir("/")
    namespaces.mount("tmpfs", "/dev/shm", "tmpfs", namespaces.MS_NOSUID | namespaces.MS_NODEV,
                     "mode=1777,size=64m")
    namespaces.mount(None, "/", None, namespaces.MS_REMOUNT | namespaces.MS_BIND
                     | namespaces.MS_RDONLY | namespaces.MS_NOSUID | namespaces.MS_NODEV)
    confinement.new_root = True


# -- the course's data files ---------------------------------------------------------------------

def _copy_data(data: dict[str, int], folder: Path) -> None:
    """Copy each data file (name -> open file, closed here) to ``folder / name``, read-only by
    its mode (the only protection where nothing is confined: the owner can change a mode)."""
    for name, descriptor in data.items():
        target = folder / PurePosixPath(name)
        target.parent.mkdir(parents=True, exist_ok=True)
        with os.fdopen(descriptor, "rb") as source, open(target, "xb") as copy:
            shutil.copyfileobj(source, copy, 1 << 20)
        target.chmod(0o444)


def _lay_data(data: dict[str, int], staging: Path, workdir: Path, proc: Path) -> None:
    """Lay the course's data files in the working folder (``workdir``, in the new root), where
    the notebook reads them and can change none of them, whoever grades.

    They are copied (from the grader's open files: no path of the grader's, and no file mode of
    the course's, matters in here) into a tmpfs of their own, sized to fit them, which is then
    made read-only; each top-level name (a file, or a folder of them) is bound read-only at its
    place in the working folder. Once capabilities are dropped and ``mount`` is refused, nothing
    makes a read-only mount writable again, and a mount point cannot be removed or renamed over
    (EBUSY): opening a data file for writing fails with EROFS. The copy's pages count toward the
    notebook's memory, as a file it wrote itself would.
    """
    pages = sum(-(-os.fstat(fd).st_size // 4096) for fd in data.values())
    namespaces.mount("tmpfs", staging, "tmpfs",
                     namespaces.MS_NOSUID | namespaces.MS_NODEV | namespaces.MS_NOEXEC,
                     f"mode=0755,size={4 * pages + 64}k,nr_inodes={4 * len(data) + 16}")
    _copy_data(data, staging)
    namespaces.make_readonly(staging, proc)
    workdir.mkdir(parents=True, exist_ok=True)
    for top in sorted({PurePosixPath(name).parts[0] for name in data}):
        _mount_point(workdir / top, staging / top)
        namespaces.bind(staging / top, workdir / top, readonly=True, proc=proc)


# -- capabilities and kernel calls -------------------------------------------------------------

def _install_seccomp() -> bool:
    """Refuse the kernel calls of ``BLOCKED_SYSCALLS``, TIOCSTI, new namespaces through
    ``clone``, and ``clone3`` (whose flags a filter cannot read: the C library then falls back
    to ``clone``). False where libseccomp is not installed."""
    try:
        import pyseccomp as seccomp
    except (ImportError, RuntimeError, OSError):
        return False
    refuse = seccomp.ERRNO(errno.EPERM)
    rules = seccomp.SyscallFilter(seccomp.ALLOW)
    for name in BLOCKED_SYSCALLS:
        try:
            rules.add_rule(refuse, name)
        except (ValueError, OSError, RuntimeError):
            pass  # a call this kernel or libseccomp does not know
    rules.add_rule(refuse, "ioctl", seccomp.Arg(1, seccomp.MASKED_EQ, 0xFFFFFFFF, _TIOCSTI))
    for flag in (namespaces.CLONE_NEWUSER, namespaces.CLONE_NEWNS, namespaces.CLONE_NEWPID,
                 namespaces.CLONE_NEWIPC, namespaces.CLONE_NEWNET, namespaces.CLONE_NEWUTS,
                 namespaces.CLONE_NEWCGROUP):
        rules.add_rule(refuse, "clone", seccomp.Arg(0, seccomp.MASKED_EQ, flag, flag))
    try:
        rules.add_rule(seccomp.ERRNO(errno.ENOSYS), "clone3")
    except (ValueError, OSError, RuntimeError):
        pass
    rules.load()
    return True


def _apply_limits(limits: Limits, address_space: bool) -> None:
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_NPROC, (limits.processes, limits.processes))
    resource.setrlimit(resource.RLIMIT_FSIZE, (256 << 20, 256 << 20))
    if address_space:
        # Counted on top of what the interpreter, torch and their libraries already map (about
        # 1 GB), so that an allocation beyond the limit fails inside the cell that makes it.
        ceiling = memory_usage()["VmSize"] + limits.memory_bytes
        resource.setrlimit(resource.RLIMIT_AS, (ceiling, ceiling))


def process_tree(pid: int) -> list[Any]:
    """``pid``'s process and all its descendants, as ``psutil`` processes (none when it is gone):
    what the grader counts a notebook's CPU time over where no cgroup counts it."""
    import psutil

    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.Error:
        return []


def memory_usage(pid: int | str = "self") -> dict[str, int]:
    """Virtual (VmSize) and resident (VmRSS) memory of a process, in bytes (0 when unknown)."""
    usage = {"VmSize": 0, "VmRSS": 0}
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                key = line.split(":")[0]
                if key in usage:
                    usage[key] = int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return usage


#: Variables of the grader's environment the notebook keeps: where the GPU's libraries are and
#: which GPUs it may use. Nothing else of the grader's environment reaches student code.
KEPT_VARIABLES = ("LD_LIBRARY_PATH", "CUDA_VISIBLE_DEVICES", "NVIDIA_VISIBLE_DEVICES")


def clean_environment(workdir: Path) -> dict[str, str]:
    """The only variables student code sees."""
    environment = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": str(workdir),
        "TMPDIR": str(workdir),
        "LANG": "C.UTF-8",
        "MPLBACKEND": "Agg",
        "MPLCONFIGDIR": str(workdir / ".matplotlib"),
        "OMP_NUM_THREADS": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    environment.update({k: os.environ[k] for k in KEPT_VARIABLES if k in os.environ})
    return environment


def die_with_parent(parent: int) -> None:
    """End this process when the process that started it ends (as the grader does when it is
    interrupted), even in the middle of a student's endless cell."""
    namespaces.die_with_parent(signal.SIGKILL)
    if os.getppid() != parent:  # the parent is already gone
        os._exit(1)


def die_with(pid: int) -> None:
    """End this process when process ``pid`` ends, whichever process is its parent: a thread
    waits on the process's pidfd (Linux 5.3 and later)."""
    try:
        watched = os.pidfd_open(pid)
    except ProcessLookupError:  # already gone
        os._exit(1)

    def watch() -> None:
        select.select([watched], [], [])
        os._exit(1)

    threading.Thread(target=watch, name=f"die-with-{pid}", daemon=True).start()


# -- the process chain --------------------------------------------------------------------------

def _keep_only(descriptors: set[int]) -> None:
    """Close every descriptor but the standard three and ``descriptors`` (without reading the
    file system, which another process of the sandbox may be rebuilding)."""
    start = 3
    for fd in sorted(descriptors):
        if fd >= start:
            os.closerange(start, fd)
            start = fd + 1
    os.closerange(start, resource.getrlimit(resource.RLIMIT_NOFILE)[0])


def _silence(null: int) -> None:
    """Point the standard descriptors at ``null`` (opened beforehand), and close it."""
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    os.close(null)


def _wait_for(child: int) -> NoReturn:
    """Reap every child (init adopts orphans) until ``child`` ends; exit as it did."""
    while True:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            os._exit(1)
        except InterruptedError:
            continue
        if pid == child:
            os._exit(os.waitstatus_to_exitcode(status) & 0xFF if os.WIFEXITED(status) else 1)


def _become_init(lifeline: int) -> int:
    """In pid 1 of the new namespace: fork the notebook's process and return in it; the init
    stays behind, reaping, and exits (taking the namespace with it) when the notebook ends or
    the outer process dies."""
    namespaces.die_with_parent(signal.SIGKILL)
    ready, _, _ = select.select([lifeline], [], [], 0)
    if ready:  # end of file: the outer process died before the parent-death signal was set
        os._exit(1)
    null = os.open(os.devnull, os.O_RDWR)
    notebook = os.fork()
    if notebook == 0:
        os.close(lifeline)
        os.close(null)
        return os.getpid()
    for number in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGPIPE):
        signal.signal(number, signal.SIG_DFL)  # as pid 1 with no handler, it ignores them all
    namespaces.set_dumpable(False)
    _silence(null)
    _keep_only({lifeline})
    _wait_for(notebook)


def _unshare(unshared: int, go: int, folders: list[Path]) -> dict[Path, int]:
    """Make the namespaces, wait for the fork server to map this process's user, and become
    that user; returns a descriptor for each of ``folders``, opened on the way (in the new
    mount namespace, where binds can be made from it, and before the change of user, after
    which a folder under /root can no longer be reached)."""
    try:
        namespaces.unshare(namespaces.ALL_NAMESPACES)
    except OSError as error:
        os.write(unshared, b"x")
        raise SandboxError(f"could not create namespaces ({error.strerror}); {HOW_TO_ALLOW}") \
            from None
    os.write(unshared, b"u")
    os.read(go, 1)
    os.close(unshared)
    os.close(go)
    held = {folder: os.open(folder, os.O_PATH | os.O_DIRECTORY) for folder in folders}
    try:
        # Become the mapped user: for a root grader this is where the process stops being root
        # outside (it becomes nobody); a TA's process already is the mapped user.
        os.setresgid(SANDBOX_UID, SANDBOX_UID, SANDBOX_UID)
        os.setresuid(SANDBOX_UID, SANDBOX_UID, SANDBOX_UID)
    except OSError:
        raise SandboxError("the notebook's user could not be mapped into its namespace") from None
    return held


def _confine_notebook(limits: Limits, keep: dict[Path, int], confinement: Confinement,
                      data: dict[str, int]) -> None:
    """In the notebook's own process, pid 2: the file system, then everything it must lose.

    The outer process and init share the mount namespace, so the new root becomes theirs too:
    neither touches a file once the notebook's process exists.
    """
    _enter_new_root(keep, confinement, data)
    for descriptor in keep.values():
        os.close(descriptor)
    socket.sethostname("notebook")  # the machine's name is not the notebook's business
    os.setsid()
    uses_gpu = bool(confinement.gpu_devices)
    # CUDA reserves far more address space than it uses: the backstop would break it.
    _apply_limits(limits, address_space=not uses_gpu)
    namespaces.drop_capabilities()
    namespaces.no_new_privileges()
    confinement.capabilities_dropped = True
    confinement.seccomp = _install_seccomp()


def enter(notebook_bytes: bytes, notebook_name: str, limits: Limits, folders: list[Path],
          handshake: tuple[int, int], keep_descriptors: set[int],
          data: dict[str, int] | None = None) -> tuple[Path, Confinement, int]:
    """Confine this freshly forked process; returns, in the process that runs the notebook, its
    working folder, what was achieved, and the process's pid as the grader sees it.

    ``folders`` are the interpreter's (``interpreter_folders``, worked out by the grader, so that
    no path of the class's folders ever reaches this process). ``data`` are the course's data
    files (name in the working folder -> an open file, closed here), laid read-only in the
    working folder (``_lay_data``).

    ``handshake`` is (write end: "unshared", read end: "go") of the pipes ``map_user`` holds the
    other ends of. ``keep_descriptors`` (the grader's connection) survive; every other inherited
    descriptor is closed. With ``limits.confine`` false only the session, limits and environment
    apply.
    """
    confinement = Confinement()
    data = dict(data or {})
    unshared, go = handshake
    parent = os.getppid()
    os.setsid()
    # Under memory pressure on the whole machine, the kernel kills notebooks first, never the
    # grader or the fork server (raising one's own score needs no privilege).
    try:
        cgroups.prefer_for_oom_killer()
    except OSError:
        pass
    if not limits.confine:
        os.write(unshared, b"x")
        os.read(go, 1)  # placed in its cgroups by the fork server first
        for fd in (unshared, go):
            os.close(fd)
        _keep_only(keep_descriptors | set(data.values()))
        workdir = Path(tempfile.mkdtemp(prefix="labkit-notebook-"))
        _copy_data(data, workdir)
        die_with_parent(parent)
        _apply_limits(limits, address_space=not _gpu_devices())
        return _finish(workdir, notebook_bytes, notebook_name, confinement, os.getpid())
    confinement.outside_uid = outside_ids()[0]
    keep = _unshare(unshared, go, folders)
    die_with_parent(parent)  # after the change of user, which clears the parent-death signal
    confinement.namespaces = True
    lifeline_read, lifeline_write = os.pipe()
    null = os.open(os.devnull, os.O_RDWR)
    init = os.fork()
    if init != 0:  # the outer process: waits, holding the lifeline, and exits with init
        os.close(lifeline_read)
        _silence(null)
        _keep_only({lifeline_write})
        _wait_for(init)
    os.close(lifeline_write)
    os.close(null)
    _become_init(lifeline_read)
    # Only the notebook's process gets here. Its pid as the grader knows it, read while /proc
    # is still the host's.
    host_pid = int(os.readlink("/proc/self"))
    _keep_only(keep_descriptors | set(keep.values()) | set(data.values()))
    _confine_notebook(limits, keep, confinement, data)
    return _finish(WORKDIR, notebook_bytes, notebook_name, confinement, host_pid)


def _finish(workdir: Path, notebook_bytes: bytes, notebook_name: str, confinement: Confinement,
            host_pid: int) -> tuple[Path, Confinement, int]:
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / notebook_name).write_bytes(notebook_bytes)
    (workdir / ".matplotlib").mkdir(exist_ok=True)
    os.chdir(workdir)
    os.environ.clear()
    os.environ.update(clean_environment(workdir))
    tempfile.tempdir = str(workdir)
    return workdir, confinement, host_pid


# -- can it be done here? -----------------------------------------------------------------------

HOW_TO_ALLOW = (
    "unprivileged user namespaces are needed to confine student code. Allow them (as root: "
    "`sysctl -w user.max_user_namespaces=10000`; on Ubuntu 23.10 and later also "
    "`sysctl -w kernel.apparmor_restrict_unprivileged_userns=0`), grade as root, or grade "
    "without confinement with --unconfined (student code can then read and change everything "
    "the grading user can; the gradebook's notes say so)"
)


def probe() -> str | None:
    """Why notebooks cannot be confined on this machine, or None when they can.

    Tries, in a throwaway child, the steps that depend on the kernel's settings: the namespaces,
    the id map, a tmpfs, and a /proc for the new pid namespace.
    """
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_end)
        try:
            uid, gid = os.geteuid(), os.getegid()
            namespaces.unshare(namespaces.ALL_NAMESPACES)
            namespaces.write_id_maps("self", SANDBOX_UID, uid, gid)
            namespaces.make_private()
            namespaces.mount("tmpfs", "/tmp", "tmpfs", namespaces.MS_NOSUID, "size=4k")
            init = os.fork()
            if init == 0:
                try:
                    namespaces.mount("proc", "/tmp", "proc", namespaces.MS_NOSUID)
                    os._exit(0)
                except OSError as error:
                    os.write(write_end, f"a /proc for the new pid namespace: {error}".encode())
                    os._exit(1)
            _, status = os.waitpid(init, 0)
            os._exit(0 if status == 0 else 1)
        except BaseException as error:  # noqa: BLE001 - any failure is the answer
            try:
                os.write(write_end, str(error).encode()[:500])
            finally:
                os._exit(1)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as reader:
        reason = reader.read().decode(errors="replace")
    _, status = os.waitpid(pid, 0)
    if status == 0:
        return None
    return f"{reason or 'the namespaces could not be created'}: {HOW_TO_ALLOW}"
