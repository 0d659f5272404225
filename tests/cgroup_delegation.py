"""A cgroup subtree delegated to an ordinary user, made by root as a machine's owner would for a TA.

Tests use it to run a grader as an ordinary user *with* per-notebook cgroups: root creates a
cgroup beneath its own in each hierarchy the kit needs, hands it to the user, and starts the
user's process inside it::

    user = ensure_ta_user()
    with opened_for_others(kit_paths()), delegated_subtree(user) as subtree:
        subprocess.run(subtree.command([sys.executable, "-m", ...]), ...)

What is handed over is what the kernel's documentation names.  cgroup v1 (cgroups.rst): the
folder and its ``cgroup.procs`` and ``tasks`` files; the kernel makes the files of every group
the user creates beneath it the user's own.  cgroup v2 ("Delegation" in cgroup-v2.rst): the
folder and its ``cgroup.procs``, ``cgroup.threads`` and ``cgroup.subtree_control`` files, with
the controllers the kit needs enabled above it.  On the way out everything in the subtree is
killed and every folder of it removed, whatever the test did.
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import signal
import stat
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

from labkit import paths
from labkit.sandbox import cgroups

TA_USER = "labkit-ta"
RUNUSER = shutil.which("runuser") or "runuser"
#: The files of a delegated cgroup the user must own, after the folder itself.
DELEGATED_FILES = {1: ("cgroup.procs", "tasks"),
                   2: ("cgroup.procs", "cgroup.threads", "cgroup.subtree_control")}


def ensure_ta_user() -> pwd.struct_passwd:
    """The system user a TA grades as (created once, as tests/test_confinement.py does)."""
    try:
        return pwd.getpwnam(TA_USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", TA_USER], check=True)
        return pwd.getpwnam(TA_USER)


def kit_paths() -> list[Path]:
    """What another user must reach to run the kit: the interpreter, its prefix, the checkout."""
    return [Path(sys.executable).resolve(), Path(sys.prefix), paths.ROOT]


@contextmanager
def opened_for_others(needed: Iterable[Path]) -> Iterator[None]:
    """Let other users pass through every folder above each path and read the path itself (the
    interpreter may live under /root); the old modes go back afterwards."""
    changed: dict[Path, int] = {}
    try:
        for path in needed:
            for folder, wanted in [*((p, stat.S_IXOTH) for p in reversed(path.parents)),
                                   (path, stat.S_IXOTH | stat.S_IROTH)]:
                mode = stat.S_IMODE(folder.stat().st_mode)
                if folder.is_dir() and mode & wanted != wanted:
                    changed.setdefault(folder, mode)
                    folder.chmod(mode | wanted)
        yield
    finally:
        for folder, mode in changed.items():
            folder.chmod(mode)


@dataclass(frozen=True)
class DelegatedSubtree:
    """The delegated cgroup: one folder per hierarchy on v1 (controller -> folder), one on v2."""

    user: pwd.struct_passwd
    folders: dict[str, Path]

    def command(self, argv: list[str]) -> list[str]:
        """``argv`` run as the user inside the subtree: a root shell enters the cgroup(s), then
        becomes the user (``runuser``), so the user's process starts there."""
        enter = " && ".join(f"echo $$ > '{folder}/cgroup.procs'"
                            for folder in dict.fromkeys(self.folders.values()))
        return ["sh", "-c", f'{enter} && exec "$@"', "sh",
                RUNUSER, "-u", self.user.pw_name, "--", *argv]


@contextmanager
def delegated_subtree(user: pwd.struct_passwd,
                      version: int | None = None) -> Iterator[DelegatedSubtree]:
    """A fresh cgroup beneath this (root) process's own, in each hierarchy the kit needs,
    delegated to ``user``; removed with everything in it afterwards.  ``version`` 2 asks for
    the unified hierarchy even where it lacks the kit's controllers (to check v2's own files);
    by default the hierarchies the kit would use here."""
    name = f"labkit-delegated-{os.getpid()}-{secrets.token_hex(3)}"
    bases = cgroups.own_cgroups()
    if isinstance(bases, str):
        raise RuntimeError(bases)
    if version == 2 and "" not in bases:
        unified = cgroups.own_unified_cgroup()
        if isinstance(unified, str):
            raise RuntimeError(unified)
        bases = {"": unified}
    version = 2 if "" in bases else 1
    offered = (bases[""] / "cgroup.controllers").read_text().split() if version == 2 else []
    if set(cgroups.V2_CONTROLLERS) <= set(offered):  # they must reach the delegated folder
        cgroups.enable_v2_controllers(bases[""])
    folders = {controller: base / name for controller, base in bases.items()}
    try:
        for folder in dict.fromkeys(folders.values()):
            folder.mkdir()
            for entry in (folder, *(folder / f for f in DELEGATED_FILES[version])):
                os.chown(entry, user.pw_uid, user.pw_gid)
        yield DelegatedSubtree(user, folders)
    finally:
        for folder in dict.fromkeys(folders.values()):
            remove_tree(folder)


def remove_tree(folder: Path, seconds: float = 10.0) -> None:
    """Kill every process in a cgroup and its descendants, then remove them, deepest first."""
    deadline = time.monotonic() + seconds
    if not folder.is_dir():
        return
    groups = sorted((p for p in folder.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts))
    for group in [*groups, folder]:
        while True:
            pids = (group / "cgroup.procs").read_text().split()
            if not pids:
                break
            for pid in pids:
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except ProcessLookupError:
                    pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{group} could not be emptied")
            time.sleep(0.01)
        while True:
            try:
                group.rmdir()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.01)
