"""Confine the process that runs a student's notebook, before any student code runs.

Run as root (as on CI and on a grading server), the process gets its own mount and network
namespaces: every top-level folder but the system's own (/usr, /etc, /lib, ...) is covered by an
empty file system (so /home, /root, /work, /tmp, /var and with them the kit's tests, releases,
solutions, other checkouts and the class's submissions and results are out of sight), the
interpreter's own folders are bound back in, and there is no network; it then drops to an
unprivileged user. Under any user it gets a fresh session, resource limits and a clean environment.
``Confinement`` records which of these applied.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import resource
import signal
import stat
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from .. import paths

_CLONE_NEWNS = 0x00020000
_CLONE_NEWNET = 0x40000000
_MS_REC = 0x4000
_MS_PRIVATE = 1 << 18
_MS_NOSUID = 2
_MS_NODEV = 4
_MS_BIND = 4096

#: The user student code runs as when the grader is root ("nobody" on Debian and most Linuxes).
UNPRIVILEGED_UID = 65534
UNPRIVILEGED_GID = 65534

#: Folders of the kit that student code must not see.
HIDDEN_KIT_FOLDERS = (
    paths.AUTOGRADER, paths.SOLUTIONS, paths.ASSIGNMENTS, paths.CHECKS_PACKAGE,
    paths.ROOT / "tests", paths.ROOT / "demo", paths.ROOT / ".git",
)
#: Shared temporary folders: the grader's own work folders live under them.
HIDDEN_TEMP_FOLDERS = (Path("/tmp"), Path("/var/tmp"), Path("/dev/shm"))
#: Top-level folders student code may see: the system's programs, libraries and settings.
#: Everything else at the top (/home, /root, /work, /srv, /opt, /mnt, /var, ...) is covered, so
#: another checkout of the kit, a TA's files or other courses stay out of sight; the interpreter's
#: own folders are bound back in wherever they live.
VISIBLE_TOP_LEVEL = frozenset({"bin", "sbin", "lib", "lib32", "lib64", "libx32", "usr", "etc",
                               "proc", "sys", "dev"})


@dataclass
class Limits:
    """Per-notebook limits. Defaults are far above what the lab needs (seconds, a few hundred MB)."""

    cell_seconds: float = 60.0
    notebook_seconds: float = 600.0
    call_seconds: float = 60.0
    memory_bytes: int = 4 << 30
    output_bytes: int = 1 << 20
    processes: int = 256


@dataclass
class Confinement:
    """What ``enter`` achieved, reported back to the grader."""

    namespaces: bool = False
    unprivileged: bool = False
    no_network: bool = False
    hidden: list[str] = field(default_factory=list)


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)


def _mount_tmpfs(libc: ctypes.CDLL, target: Path, mode: str = "0755") -> bool:
    options = f"size=256m,mode={mode}".encode()
    result = libc.mount(b"tmpfs", str(target).encode(), b"tmpfs", _MS_NOSUID | _MS_NODEV, options)
    return result == 0


def _closed_ancestor(folder: Path) -> Path | None:
    """The highest folder above ``folder`` that other users cannot enter (e.g. /root), if any."""
    for ancestor in reversed(folder.parents):
        if not os.stat(ancestor).st_mode & stat.S_IXOTH:
            return ancestor
    return None


def _interpreter_folders() -> list[Path]:
    """What the interpreter may still read lazily: its standard library and packages.

    The kit's own root is left out on purpose (everything of the kit that the confined process
    runs is imported before the fork), so that it never needs to be visible there.
    """
    folders = {Path(sys.base_prefix), Path(sys.prefix), Path(sys.exec_prefix)}
    folders.update(Path(p) for p in sys.path if p and Path(p).is_dir())
    folders = {f.resolve() for f in folders} - {paths.ROOT}
    # The outermost folders suffice: binding one binds everything below it.
    kept: list[Path] = []
    for folder in sorted(folders, key=lambda f: len(f.parts)):
        if not any(folder == k or k in folder.parents for k in kept):
            kept.append(folder)
    return kept


def _bind(libc: ctypes.CDLL, source: str, target: Path) -> bool:
    return libc.mount(source.encode(), str(target).encode(), None, _MS_BIND | _MS_REC, None) == 0


def _isolate_files_and_network(extra_hidden: list[Path], confinement: Confinement) -> None:
    """Cover what student code must not see, keeping what the interpreter needs.

    The interpreter's folders are held open first; then the temporary folders and any closed
    folder above the interpreter (a Python under /root) are covered; the interpreter's folders are
    bound back in through the open descriptors (they may live under /tmp, as a fresh clone can);
    and last the kit's hidden folders and the class's folders are covered, also where they lie
    inside what was bound back.
    """
    libc = _libc()
    if libc.unshare(_CLONE_NEWNS | _CLONE_NEWNET) != 0:
        return
    confinement.namespaces = confinement.no_network = True
    # Mounts made from here on stay inside this process's namespace.
    libc.mount(b"none", b"/", None, _MS_REC | _MS_PRIVATE, None)
    needed = {folder: os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
              for folder in _interpreter_folders()}
    covers = {*HIDDEN_TEMP_FOLDERS}
    covers.update(top for top in Path("/").iterdir()
                  if top.is_dir() and not top.is_symlink() and top.name not in VISIBLE_TOP_LEVEL)
    covers.update(a for f in needed if (a := _closed_ancestor(f)) is not None)
    for folder in sorted(covers, key=lambda f: len(f.parts)):
        mode = "1777" if folder in HIDDEN_TEMP_FOLDERS else "0755"
        if folder.is_dir() and _mount_tmpfs(libc, folder, mode):
            confinement.hidden.append(str(folder))
    for folder, descriptor in needed.items():
        if not folder.is_dir():
            folder.mkdir(parents=True, exist_ok=True)
            _bind(libc, f"/proc/self/fd/{descriptor}", folder)
        os.close(descriptor)
    for folder in (*HIDDEN_KIT_FOLDERS, *extra_hidden):
        if folder.is_dir() and _mount_tmpfs(libc, folder):
            confinement.hidden.append(str(folder))


def _apply_limits(limits: Limits, address_space: bool) -> None:
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_NPROC, (limits.processes, limits.processes))
    resource.setrlimit(resource.RLIMIT_FSIZE, (256 << 20, 256 << 20))
    if address_space:
        # Counted on top of what the interpreter, torch and their libraries already map (about
        # 1 GB), so that an allocation beyond the limit fails inside the cell that makes it.
        ceiling = memory_usage()["VmSize"] + limits.memory_bytes
        resource.setrlimit(resource.RLIMIT_AS, (ceiling, ceiling))


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


def clean_environment(workdir: Path) -> dict[str, str]:
    """The only variables student code sees: nothing of the grader's environment."""
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": str(workdir),
        "TMPDIR": str(workdir),
        "LANG": "C.UTF-8",
        "MPLBACKEND": "Agg",
        "MPLCONFIGDIR": str(workdir / ".matplotlib"),
        "OMP_NUM_THREADS": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
    }


_PR_SET_PDEATHSIG = 1


def die_with_parent(parent: int) -> None:
    """End this process when the process that started it ends (as the grader does when it is
    interrupted), even in the middle of a student's endless cell. A confined process sets it
    after its change of user, which clears it."""
    _libc().prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # the parent is already gone
        os._exit(1)


def enter(workdir_parent: Path, notebook_bytes: bytes, notebook_name: str, limits: Limits,
          extra_hidden: list[Path]) -> tuple[Path, Confinement]:
    """Confine this (freshly forked) process and return its private working folder.

    ``notebook_bytes`` is read by the caller before the file systems are covered, and written into
    the private folder once they are.
    """
    confinement = Confinement()
    parent = os.getppid()
    os.setsid()
    is_root = os.geteuid() == 0
    if is_root:
        _isolate_files_and_network(extra_hidden, confinement)
    base = Path("/tmp") if confinement.namespaces else workdir_parent
    workdir = base / "notebook"
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / notebook_name).write_bytes(notebook_bytes)
    (workdir / ".matplotlib").mkdir(exist_ok=True)
    if is_root:
        for path in (workdir, workdir / notebook_name, workdir / ".matplotlib"):
            os.chown(path, UNPRIVILEGED_UID, UNPRIVILEGED_GID)
    os.chdir(workdir)
    # CUDA reserves far more address space than it uses: the backstop would break it.
    _apply_limits(limits, address_space=not Path("/dev/nvidiactl").exists())
    if is_root:
        os.setgroups([])
        os.setgid(UNPRIVILEGED_GID)
        os.setuid(UNPRIVILEGED_UID)
        confinement.unprivileged = True
    die_with_parent(parent)
    os.environ.clear()
    os.environ.update(clean_environment(workdir))
    tempfile.tempdir = str(workdir)
    return workdir, confinement
