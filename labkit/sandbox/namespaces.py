"""The Linux calls a sandbox is made of, one small function each, with no policy of their own.

Python's standard library has no ``unshare``, ``mount``, ``pivot_root``, ``capset`` or
``prctl``; these are thin ``ctypes`` bindings to the C library, raising ``OSError`` with the
kernel's own error, so that ``labkit.sandbox.confine`` can compose them the way bubblewrap does
(see its docstring for the order and for what each step stops). Nothing here may run after
student code has started: these calls only make a process *less* capable.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
from pathlib import Path

CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
#: Every namespace a notebook gets of its own (bubblewrap's ``--unshare-all``).
ALL_NAMESPACES = (CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWNET
                  | CLONE_NEWUTS | CLONE_NEWCGROUP)

MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_REMOUNT = 32
MS_NOATIME = 1024
MS_NODIRATIME = 2048
MS_BIND = 4096
MS_REC = 0x4000
MS_PRIVATE = 1 << 18
MS_RELATIME = 1 << 21
MNT_DETACH = 2

_PR_SET_PDEATHSIG = 1
_PR_SET_DUMPABLE = 4
_PR_CAPBSET_DROP = 24
_PR_SET_NO_NEW_PRIVS = 38
_PR_CAP_AMBIENT = 47
_PR_CAP_AMBIENT_CLEAR_ALL = 4
_LINUX_CAPABILITY_VERSION_3 = 0x20080522

# statvfs flags that a read-only remount must keep: the kernel refuses, inside a user
# namespace, to clear a flag the original mount was made with.
_KEPT_FLAGS = ((os.ST_NOSUID, MS_NOSUID), (os.ST_NODEV, MS_NODEV), (os.ST_NOEXEC, MS_NOEXEC),
               (os.ST_NOATIME, MS_NOATIME), (os.ST_NODIRATIME, MS_NODIRATIME),
               (os.ST_RELATIME, MS_RELATIME))

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        error = ctypes.get_errno()
        raise OSError(error, f"{what}: {os.strerror(error)}")


def unshare(flags: int) -> None:
    """Move this (single-threaded) process into new namespaces."""
    _check(_libc.unshare(flags), "unshare")


def write_id_maps(pid: int | str, inside: int, outside_uid: int, outside_gid: int) -> None:
    """Map one id: ``inside`` in the process's new user namespace is ``outside_*`` outside.

    Written by the parent (which holds its capabilities in the outer namespace, so that root may
    map the sandbox to ``nobody``) or by the process itself for its own ids. ``setgroups`` is
    denied first: an unprivileged writer must, and the sandbox never needs supplementary groups.
    """
    base = Path(f"/proc/{pid}")
    (base / "setgroups").write_text("deny")
    (base / "uid_map").write_text(f"{inside} {outside_uid} 1\n")
    (base / "gid_map").write_text(f"{inside} {outside_gid} 1\n")


def mount(source: str | None, target: str | Path, fstype: str | None, flags: int,
          data: str | None = None) -> None:
    def encoded(text: str | Path | None) -> bytes | None:
        return None if text is None else str(text).encode()

    _check(_libc.mount(encoded(source), encoded(target), encoded(fstype), flags, encoded(data)),
           f"mount {fstype or source} on {target}")


def make_private() -> None:
    """Stop mount events propagating between this namespace and the host's."""
    mount(None, "/", None, MS_REC | MS_PRIVATE)


def bind(source: str | Path, target: str | Path, *, readonly: bool,
         proc: Path = Path("/proc")) -> None:
    """Bind ``source`` (and every mount below it) at ``target``, read-only if asked."""
    mount(str(source), target, None, MS_BIND | MS_REC)
    if readonly:
        make_readonly(target, proc)


class _MountAttr(ctypes.Structure):
    _fields_ = [("attr_set", ctypes.c_uint64), ("attr_clr", ctypes.c_uint64),
                ("propagation", ctypes.c_uint64), ("userns_fd", ctypes.c_uint64)]


_SYS_MOUNT_SETATTR = 442  # the same number on x86-64 and arm64
_AT_FDCWD = -100
_AT_RECURSIVE = 0x8000
_MOUNT_ATTR_RDONLY = 0x1


def make_readonly(target: str | Path, proc: Path = Path("/proc")) -> None:
    """Make ``target`` and every mount below it read-only (Linux 5.12's ``mount_setattr``).

    A plain read-only remount of a bind covers one mount: submounts such as /sys/fs/cgroup would
    stay writable. Older kernels get a remount of each mount below ``target`` instead, found in
    the mount table under ``proc``.
    """
    attributes = _MountAttr(attr_set=_MOUNT_ATTR_RDONLY)
    if _libc.syscall(_SYS_MOUNT_SETATTR, _AT_FDCWD, str(target).encode(), _AT_RECURSIVE,
                     ctypes.byref(attributes), ctypes.sizeof(attributes)) == 0:
        return
    if ctypes.get_errno() != errno.ENOSYS:
        _check(-1, f"mount_setattr {target}")
    for point in _mount_points_below(Path(target), proc):
        flags = os.statvfs(point).f_flag
        kept = 0
        for statvfs_flag, mount_flag in _KEPT_FLAGS:
            if flags & statvfs_flag:
                kept |= mount_flag
        mount(None, point, None, MS_REMOUNT | MS_BIND | MS_RDONLY | kept)


def _mount_points_below(target: Path, proc: Path) -> list[str]:
    points = []
    with open(proc / "self" / "mountinfo", encoding="utf-8", errors="replace") as mountinfo:
        for line in mountinfo:
            point = line.split()[4].encode().decode("unicode_escape")
            if point == str(target) or point.startswith(str(target).rstrip("/") + "/"):
                points.append(point)
    return points


def pivot_root(new_root: str | Path, put_old: str | Path) -> None:
    _check(_libc.syscall(155 if os.uname().machine == "x86_64" else 41,
                         str(new_root).encode(), str(put_old).encode()), "pivot_root")


def umount_detached(target: str | Path) -> None:
    _check(_libc.umount2(str(target).encode(), MNT_DETACH), f"umount {target}")


def die_with_parent(signal_number: int) -> None:
    """Have the kernel send ``signal_number`` to this process when its parent ends."""
    _check(_libc.prctl(_PR_SET_PDEATHSIG, signal_number, 0, 0, 0), "prctl(PDEATHSIG)")


def set_dumpable(dumpable: bool) -> None:
    """A process that is not dumpable cannot be traced, and its /proc files are closed to its
    own user (short of a capability), so a sibling cannot read or write its memory."""
    _check(_libc.prctl(_PR_SET_DUMPABLE, int(dumpable), 0, 0, 0), "prctl(DUMPABLE)")


def drop_capabilities() -> None:
    """Drop every capability: bounding, ambient, effective, permitted and inheritable sets.

    A process that made a user namespace holds all capabilities inside it; after this, what its
    user id allows is all it can do, and no program it runs can get any back.
    """
    last = int(Path("/proc/sys/kernel/cap_last_cap").read_text())
    for capability in range(last + 1):
        _check(_libc.prctl(_PR_CAPBSET_DROP, capability, 0, 0, 0), "prctl(CAPBSET_DROP)")
    _check(_libc.prctl(_PR_CAP_AMBIENT, _PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0), "prctl(CAP_AMBIENT)")
    header = (ctypes.c_uint32 * 2)(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (ctypes.c_uint32 * 6)()  # two zeroed (effective, permitted, inheritable) triples
    _check(_libc.capset(header, data), "capset")


def no_new_privileges() -> None:
    """No program run from here on gains privileges (setuid bits, file capabilities); it is
    also what lets an unprivileged process install a seccomp filter."""
    _check(_libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "prctl(NO_NEW_PRIVS)")
