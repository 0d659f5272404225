"""Per-notebook cgroups with real processes and real cgroups: the kernel counts and bounds all a
notebook holds (child processes, memfd files, tmpfs files), its CPU time and its processes, and
kills inside the notebook's group only.  As root, as a TA in a delegated subtree, and as a TA
without one (where ``probe`` must say what to do).  Tests that need root skip where it is not.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from labkit import paths
from labkit.sandbox import cgroups
from tests import cgroup_delegation as delegation
from tests.cgroup_hogs import (BUDGET, IN_CHILDREN, IN_MEMFD, QUIET, in_tmpfs, start_in,
                               wait_for_oom_kill)


#: A script's end that leaves a daemon behind (forked twice, in its own session, its parent gone,
#: no child of anyone here), prints its pid and waits.
LEAVES_A_DAEMON = """
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        print(os.getpid(), flush=True)
        time.sleep(60)
    os._exit(0)
time.sleep(60)
"""


def _require_root_cgroups() -> None:
    if os.geteuid() != 0:
        pytest.skip("making cgroups for these tests needs root (as on CI)")
    reason = cgroups.probe()
    if reason:
        pytest.skip(f"cgroups cannot be made here: {reason}")


@pytest.fixture
def groups() -> Iterator[cgroups.RunGroups]:
    _require_root_cgroups()
    run = cgroups.RunGroups.create("tests")
    try:
        yield run
    finally:
        run.close()


@pytest.fixture
def started() -> Iterator[list[subprocess.Popen]]:
    """Processes a test starts; killed and reaped whatever the test did (their own children
    die with their group, which the ``groups`` fixture removes)."""
    processes: list[subprocess.Popen] = []
    yield processes
    for process in processes:
        process.kill()
        process.wait()
        for stream in (process.stdin, process.stdout):
            if stream is not None:
                stream.close()


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, killed and waiting to be reaped, does not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")


def _wait_for_line(process: subprocess.Popen, line: str) -> None:
    assert process.stdout is not None
    assert process.stdout.readline().strip() == line


def _private_tmpfs(folder: Path) -> list[str]:
    """A wrapper that runs a command in a private mount namespace with a 1 GiB tmpfs on
    ``folder`` (gone with the namespace, unseen by the machine)."""
    return [shutil.which("unshare") or "unshare", "--mount", "--propagation", "private", "--",
            "sh", "-c", f"mount -t tmpfs -o size=1g labkit-test '{folder}' && exec \"$@\"", "sh"]


@pytest.mark.parametrize("where", ["children", "memfd", "tmpfs"])
def test_memory_a_notebook_holds_anywhere_is_stopped_inside_its_group_only(
        groups, started, where, tmp_path):
    neighbour_group = groups.notebook(memory_bytes=BUDGET, processes=16)
    neighbour = start_in(neighbour_group, QUIET)
    started.append(neighbour)
    _wait_for_line(neighbour, "ready")
    group = groups.notebook(memory_bytes=BUDGET, processes=16)
    if where == "tmpfs":
        hog = start_in(group, in_tmpfs(str(tmp_path)), wrapper=_private_tmpfs(tmp_path))
    else:
        hog = start_in(group, IN_CHILDREN if where == "children" else IN_MEMFD)
    started.append(hog)

    assert wait_for_oom_kill(group), "the kernel never stopped the notebook"
    assert group.out_of_memory()
    assert group.peak_memory_bytes() <= BUDGET
    group.remove()
    output, _ = hog.communicate(timeout=10)
    assert "held" not in output, "the notebook held more than its budget"
    assert _alive(neighbour.pid) and neighbour_group.pids() == [neighbour.pid]
    assert neighbour_group.oom_kills() == 0 and not neighbour_group.out_of_memory()
    assert list(tmp_path.iterdir()) == [], "the private tmpfs leaked onto the machine"


def test_cpu_seconds_count_every_process_that_was_in_the_group(groups, started):
    group = groups.notebook(memory_bytes=BUDGET, processes=16)
    # The process itself only waits; a child it forks spins for half a second of CPU and ends.
    spinner = start_in(group, """
import os, time
print("ready", flush=True)
os.read(0, 1)
if os.fork() == 0:
    while time.process_time() < 0.5:
        pass
    os._exit(0)
os.wait()
print(round(time.process_time(), 3), flush=True)
""")
    started.append(spinner)
    _wait_for_line(spinner, "ready")
    before = group.cpu_seconds()
    spinner.stdin.write("g")
    spinner.stdin.flush()
    own = float(spinner.stdout.readline())
    assert own < 0.2
    assert group.cpu_seconds() - before >= 0.45


def test_pids_max_stops_a_fork_bomb_at_the_limit(groups, started):
    group = groups.notebook(memory_bytes=BUDGET, processes=10)
    bomb = start_in(group, """
import os, time
made = 0
for _ in range(100):
    try:
        pid = os.fork()
    except BlockingIOError:
        break
    if pid == 0:
        time.sleep(60)
        os._exit(0)
    made += 1
print(made, flush=True)
time.sleep(60)
""")
    started.append(bomb)
    assert int(bomb.stdout.readline()) == 9
    assert len(group.pids()) == 10


def test_remove_leaves_no_folder_and_no_process_not_even_a_daemon(groups, started):
    group = groups.notebook(memory_bytes=BUDGET, processes=16)
    # A daemon: forked twice, in its own session, its parent gone; it is no child of anyone here.
    parent = start_in(group, "import os, time\n" + LEAVES_A_DAEMON)
    started.append(parent)
    daemon = int(parent.stdout.readline())
    assert _alive(daemon) and daemon in group.pids()
    folders = list(group.folders.values())
    run_folders = list(groups.folders.values())

    group.remove()
    assert not _alive(daemon) and not _alive(parent.pid)
    assert not any(folder.exists() for folder in folders)
    groups.close()
    assert not any(folder.exists() for folder in run_folders)


def test_another_process_puts_its_fresh_child_in_through_the_descriptors(groups, started):
    """As the fork server does: it holds the descriptors, forks, writes the child's pid, and only
    then lets the child run; the server itself stays outside."""
    group = groups.notebook(memory_bytes=BUDGET, processes=16)
    descriptors = group.procs_descriptors()
    server = subprocess.Popen([sys.executable, "-c", """
import os, sys
go_read, go_write = os.pipe()
child = os.fork()
if child == 0:
    os.read(go_read, 1)
    print(open("/proc/self/cgroup").read().replace(chr(10), " "), flush=True)
    os._exit(0)
for fd in map(int, sys.argv[1:]):
    os.write(fd, str(child).encode())
os.write(go_write, b"g")
os.waitpid(child, 0)
print(open("/proc/self/cgroup").read().replace(chr(10), " "), flush=True)
""", *map(str, descriptors)], pass_fds=descriptors, stdout=subprocess.PIPE, text=True)
    started.append(server)
    for fd in descriptors:
        os.close(fd)
    child_cgroups, server_cgroups = server.communicate(timeout=30)[0].splitlines()
    for folder in group.folders.values():
        assert f"/{folder.parent.name}/{folder.name} " in child_cgroups + " "
        assert folder.name not in server_cgroups


def test_a_notebook_can_be_made_the_oom_killers_first_choice(started):
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    started.append(sleeper)
    cgroups.prefer_for_oom_killer(sleeper.pid)
    assert Path(f"/proc/{sleeper.pid}/oom_score_adj").read_text().strip() == "1000"


# -- as a TA: with a delegated subtree, and without one ------------------------------------------

def _as_ta() -> delegation.pwd.struct_passwd:
    if os.geteuid() != 0:
        pytest.skip("making the TA's user and delegating cgroups to it needs root (as on CI)")
    if not (shutil.which("useradd") and shutil.which("runuser")):
        pytest.skip("useradd and runuser are needed to run as an ordinary user")
    return delegation.ensure_ta_user()


def _environment() -> dict[str, str]:
    return {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": "/", "LANG": "C.UTF-8",
            "PYTHONPATH": os.pathsep.join(
                [str(paths.ROOT), *filter(None, os.environ.get("PYTHONPATH", "").split(":"))])}


def test_a_ta_in_a_delegated_subtree_gets_the_same_memory_limit():
    user = _as_ta()
    _require_root_cgroups()
    with delegation.opened_for_others(delegation.kit_paths()), \
            delegation.delegated_subtree(user) as subtree:
        result = subprocess.run(
            subtree.command([sys.executable, "-m", "tests.cgroup_hogs"]), cwd="/",
            env=_environment(), capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr[-3000:]
        report = json.loads(result.stdout.splitlines()[-1])
        assert report["uid"] == user.pw_uid and report["probe"] is None
        assert report["oom_score_adj"] == 1000
        delegated = {str(folder) for folder in subtree.folders.values()}
        assert {str(Path(f).parent) for f in report["run_folders"]} == delegated
        assert report["oom_killed"] and report["out_of_memory"]
        assert report["peak"] <= BUDGET
        assert "held" not in report["output"] and report["returncode"] == -9
        assert report["left"] == []
    assert not any(folder.exists() for folder in subtree.folders.values())


def test_without_delegation_probe_says_what_to_do():
    _as_ta()
    code = "from labkit.sandbox import cgroups; print(cgroups.probe())"
    with delegation.opened_for_others(delegation.kit_paths()):
        result = subprocess.run(
            [delegation.RUNUSER, "-u", delegation.TA_USER, "--", sys.executable, "-c", code],
            cwd="/", env=_environment(), capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr[-3000:]
    reason = result.stdout.strip()
    assert reason != "None"
    assert "Delegate=yes" in reason and "chown" in reason and "grade as root" in reason


# -- cgroup v2's own files, where the unified hierarchy is mounted (here without its memory and
# -- pids controllers, which v1 holds: what needs no controller is checked on the real kernel)

@pytest.fixture
def unified() -> Iterator[Path]:
    """A fresh cgroup of ours beneath this process's own in the unified hierarchy."""
    if os.geteuid() != 0:
        pytest.skip("making cgroups for these tests needs root (as on CI)")
    own = cgroups.own_unified_cgroup()
    if isinstance(own, str):
        pytest.skip(own)
    made = own / f"labkit-test-v2-{os.getpid()}"
    made.mkdir()
    try:
        yield made
    finally:
        delegation.remove_tree(made)


def test_on_v2_a_group_is_joined_counted_killed_and_removed_with_the_kernels_own_files(
        unified, started):
    (unified / "notebook").mkdir()
    group = cgroups.NotebookGroup(2, {"": unified / "notebook"})
    # It spins half a second of CPU in a child, then leaves a daemon behind and waits.
    process = start_in(group, """
import os, time
if os.fork() == 0:
    while time.process_time() < 0.5:
        pass
    os._exit(0)
os.wait()
""" + LEAVES_A_DAEMON)
    started.append(process)
    daemon = int(process.stdout.readline())
    assert set(group.pids()) == {process.pid, daemon}
    assert group.cpu_seconds() >= 0.45
    assert (unified / "notebook" / "cgroup.kill").exists()

    group.remove()
    assert not _alive(daemon) and not _alive(process.pid)
    assert not (unified / "notebook").exists()


def test_on_v2_a_ta_in_a_delegated_cgroup_makes_joins_and_kills_groups_beneath_it():
    user = _as_ta()
    if isinstance(cgroups.own_unified_cgroup(), str):
        pytest.skip("no cgroup v2 hierarchy is mounted here")
    # What the grader does there, short of limits (no v2 controllers here): a group beneath its
    # own, a child moved in through a descriptor, its CPU time, cgroup.kill, removal.
    code = """
import json, os, time
from labkit.sandbox import cgroups
from tests.cgroup_hogs import QUIET, start_in
own = cgroups.own_unified_cgroup()
(own / "run").mkdir()
(own / "run" / "notebook").mkdir()
group = cgroups.NotebookGroup(2, {"": own / "run" / "notebook"})
quiet = start_in(group, QUIET)
quiet.stdout.readline()
report = {"own": str(own), "pids": group.pids(), "quiet": quiet.pid,
          "cpu": group.cpu_seconds()}
group.remove()
(own / "run").rmdir()
report["returncode"] = quiet.wait()
report["left"] = os.listdir(own)
print(json.dumps(report))
"""
    with delegation.opened_for_others(delegation.kit_paths()), \
            delegation.delegated_subtree(user, version=2) as subtree:
        result = subprocess.run(subtree.command([sys.executable, "-c", code]), cwd="/",
                                env=_environment(), capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr[-3000:]
        report = json.loads(result.stdout.splitlines()[-1])
        assert report["own"] == str(subtree.folders[""])
        assert report["pids"] == [report["quiet"]] and report["cpu"] > 0
        assert report["returncode"] == -9
        assert not any(name.startswith("run") for name in report["left"])
    assert not subtree.folders[""].exists()


def test_the_groups_of_a_run_killed_before_it_cleaned_up_are_removed_by_the_next(groups):
    """A grading worker killed (SIGKILL) leaves its run's groups behind; the next run removes
    them, but never the groups of a run that is alive, nor a group a process is still in."""
    made = subprocess.run(
        [sys.executable, "-c", "import os\nfrom labkit.sandbox import cgroups\n"
         "run = cgroups.RunGroups.create('killed')\nrun.notebook(1 << 26, 4)\n"
         "print(*run.folders.values())\nos._exit(0)"],
        capture_output=True, text=True, check=True, cwd=paths.ROOT)
    left = [Path(p) for p in made.stdout.split()]
    assert left and all(folder.is_dir() for folder in left)
    mine = groups.notebook(1 << 26, 4)
    removed = cgroups.RunGroups.remove_stale()
    assert set(left) <= set(removed) and not any(folder.exists() for folder in left)
    assert all(folder.is_dir() for folder in mine.folders.values())


def test_an_ended_group_is_removed_by_the_runs_next_notebook_without_waiting(groups, started):
    """``end`` signals the notebook's processes and returns at once; the run removes the group
    when it makes its next one, once the kernel has ended them."""
    group = groups.notebook(memory_bytes=BUDGET, processes=16)
    process = start_in(group, "import time\ntime.sleep(60)")
    started.append(process)
    group.end()
    process.wait(timeout=10)
    groups.notebook(memory_bytes=BUDGET, processes=16)
    assert group.removed and not any(folder.exists() for folder in group.folders.values())
