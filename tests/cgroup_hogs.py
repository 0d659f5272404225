"""Processes that hold memory where per-process limits do not look, started inside a cgroup.

Each hog prints ``held`` only once it holds all it asked for: a hog stopped by its group's limit
never prints it.  ``python -m tests.cgroup_hogs`` runs one hog in a notebook group made by the
calling user (the TA, in a delegated subtree) and prints what happened as JSON.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence

from labkit.sandbox import cgroups

MIB = 1 << 20
#: The notebook's budget in these tests, and what each hog tries to hold (half as much again).
BUDGET = 200 * MIB
HOLD = 300 * MIB

#: 3 child processes of 100 MiB each (no one process is over the budget).
IN_CHILDREN = f"""
import os, time
done_read, done_write = os.pipe()
for _ in range(3):
    if os.fork() == 0:
        block = bytearray({HOLD // 3})
        for at in range(0, len(block), 4096):
            block[at] = 1
        os.write(done_write, b"1")
        time.sleep(60)
        os._exit(0)
got = b""
while len(got) < 3:
    got += os.read(done_read, 3)
print("held", flush=True)
time.sleep(60)
"""

#: Anonymous shared memory in memfd files: no address space of any process is needed to hold it.
IN_MEMFD = f"""
import os, time
files = [os.memfd_create(f"hog{{n}}") for n in range(3)]
for fd in files:
    for _ in range({HOLD // 3 // MIB}):
        os.write(fd, b"x" * {MIB})
print("held", flush=True)
time.sleep(60)
"""


def in_tmpfs(folder: str) -> str:
    """A file on a tmpfs at ``folder`` (mounted by the caller): it outlives its writer."""
    return f"""
import time
with open("{folder}/hog", "wb") as file:
    for _ in range({HOLD // MIB}):
        file.write(b"x" * {MIB})
print("held", flush=True)
time.sleep(60)
"""


#: A process that holds a little memory and waits: the neighbour that must not be harmed.
QUIET = """
import time
block = bytearray(20 << 20)
for at in range(0, len(block), 4096):
    block[at] = 1
print("ready", flush=True)
time.sleep(60)
"""


def start_in(group: cgroups.NotebookGroup, code: str,
             wrapper: Sequence[str] = ()) -> subprocess.Popen:
    """Start ``python -c code`` (behind ``wrapper``, which must exec it) in ``group``: the process
    waits on a pipe until it is in the group, so everything it does is counted there.  Its
    standard input and output are pipes, for the test to talk to it."""
    go_read, go_write = os.pipe()
    waits = f"import os; os.read({go_read}, 1); os.close({go_read})\n"
    process = subprocess.Popen([*wrapper, sys.executable, "-c", waits + code],
                               pass_fds=[go_read], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, text=True)
    os.close(go_read)
    try:
        group.add(process.pid)
    finally:
        os.write(go_write, b"g")
        os.close(go_write)
    return process


def wait_for_oom_kill(group: cgroups.NotebookGroup, seconds: float = 20.0) -> bool:
    """Whether the kernel's OOM killer killed in ``group`` within ``seconds``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if group.oom_kills():
            return True
        time.sleep(0.02)
    return False


def main() -> None:
    """One memfd hog in a group made by whoever runs this, reported as JSON."""
    cgroups.prefer_for_oom_killer()
    report: dict = {"uid": os.geteuid(), "probe": cgroups.probe(),
                    "oom_score_adj": int(open("/proc/self/oom_score_adj").read())}
    with cgroups.RunGroups.create("delegated") as groups:
        report["run_folders"] = [str(f) for f in groups.folders.values()]
        group = groups.notebook(memory_bytes=BUDGET, processes=16)
        hog = start_in(group, IN_MEMFD)
        report["oom_killed"] = wait_for_oom_kill(group)
        report["out_of_memory"] = group.out_of_memory()
        report["peak"] = group.peak_memory_bytes()
        group.remove()
        report["output"], _ = hog.communicate(timeout=10)
        report["returncode"] = hog.returncode
    report["left"] = [f for f in report["run_folders"] if os.path.exists(f)]
    print(json.dumps(report))


if __name__ == "__main__":
    main()
