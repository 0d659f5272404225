"""A hostile class against the sandbox, graded as root and as an ordinary user (a TA's laptop).

Every attack a security review made on ``make grade`` is here, with real processes: a notebook
that looks around (what it can see, reach, write, trace), and a class of attackers graded next
to an untouched control and a victim. Both modes must hold them alike. The ordinary user is made
with ``useradd`` and the grader started with ``runuser``; those tests skip, saying why, where
the machine cannot create a user or forbids unprivileged user namespaces.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import pwd
import re
import secrets
import shutil
import socket
import stat
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

import nbformat
import pytest

from labkit import notebooks, paths
from labkit.course import autograders
from labkit.sandbox import cgroups, confine

from . import cgroup_delegation, object_checks

pytestmark = pytest.mark.slow

STEM = "1_1_linear_regression"
TA_USER = "labkit-ta"
RUNUSER = shutil.which("runuser") or "runuser"
MODES = ("root", "unprivileged")
#: Full marks per autograded question of STEM, as its released autograder gives them.
FULL = {q.name: q.points for q in autograders.load(STEM).graded}


# -- running the grader as root or as the TA -----------------------------------------------------

@pytest.fixture(scope="module")
def ta_user():
    """The unprivileged user a TA grades as, able to run the kit's interpreter."""
    if os.geteuid() != 0:
        pytest.skip("creating the unprivileged grading user needs root (as on CI)")
    if not (shutil.which("useradd") and shutil.which("runuser")):
        pytest.skip("useradd and runuser are needed to grade as an ordinary user")
    user = cgroup_delegation.ensure_ta_user()
    with cgroup_delegation.opened_for_others(cgroup_delegation.kit_paths()):
        yield user


@pytest.fixture(scope="module", params=MODES)
def mode(request):
    if request.param == "unprivileged":
        request.getfixturevalue("ta_user")
        reason = _probe_as_ta()
        if reason:
            pytest.skip(f"unprivileged user namespaces are not available here: {reason}")
    return request.param


#: The cgroup subtree delegated to the TA while the module runs (None where this machine gives
#: root no cgroups to delegate): the TA's grader runs in it, as on a laptop with systemd's user
#: delegation, so that its notebooks get cgroups of their own as root's do.
_SUBTREE: dict[str, object] = {}


@pytest.fixture(scope="module", autouse=True)
def ta_subtree(request):
    if os.geteuid() != 0 or isinstance(cgroups.own_cgroups(), str):
        _SUBTREE["subtree"] = None
        yield None
        return
    with cgroup_delegation.delegated_subtree(cgroup_delegation.ensure_ta_user()) as subtree:
        _SUBTREE["subtree"] = subtree
        yield subtree
    _SUBTREE.pop("subtree", None)


def _probe_as_ta() -> str | None:
    code = "from labkit.sandbox import confine; print(confine.probe() or '')"
    result = subprocess.run([RUNUSER, "-u", TA_USER, "--", sys.executable, "-c", code],
                            capture_output=True, text=True, cwd="/", env=_environment(Path("/")))
    return result.stdout.strip() or (result.stderr.strip()[-300:] if result.returncode else None)


#: The grading secret, and a variable of the TA's shell (a token, say), both random: a notebook
#: must find neither anywhere in its memory.
SECRET = secrets.token_hex(16)
TA_TOKEN = secrets.token_hex(16)
#: A folder of the TA's own on PYTHONPATH, holding a module and a private file.
TA_SITE = "ta_site"


def _environment(home: Path) -> dict[str, str]:
    # The grading secret comes from the environment: the TA does not own the kit's checkout here,
    # so it could not keep the secret's file there.
    return {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(home), "LANG": "C.UTF-8",
            "PYTHONPATH": _python_path(str(paths.ROOT), str(home / TA_SITE)),
            "LABKIT_GRADING_SECRET": SECRET, "TA_SHELL_TOKEN": TA_TOKEN}


def _python_path(*first: str) -> str:
    """``first``, then the folders this run already imports from through PYTHONPATH (packages
    carried to a machine as wheels, say)."""
    inherited = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    return os.pathsep.join([*first, *inherited])


def _workspace(mode: str) -> Path:
    """A folder the grading user owns, that it is started from, holding a TA's private file."""
    folder = Path(tempfile.mkdtemp(prefix=f"labkit-{mode}-", dir="/tmp"))
    folder.chmod(0o755)
    (folder / "ta_private_notes.txt").write_text("exam answers")
    (folder / TA_SITE).mkdir()
    (folder / TA_SITE / "ta_private_module.py").write_text("ANSWERS = 'exam answers'\n")
    if mode == "unprivileged":
        user = pwd.getpwnam(TA_USER)
        os.chown(folder, user.pw_uid, user.pw_gid)
        for path in (folder / "ta_private_notes.txt", folder / TA_SITE,
                     folder / TA_SITE / "ta_private_module.py"):
            os.chown(path, user.pw_uid, user.pw_gid)
    return folder


def _run(mode: str, workspace: Path, *args: str) -> dict:
    """Run ``tests.hostile_runner`` from ``workspace`` (so that the current folder is on the
    grader's ``sys.path``, as with ``python -m labkit grade``) as root or as the TA."""
    command = [sys.executable, "-m", "tests.hostile_runner", *args]
    if mode == "unprivileged":
        subtree = _SUBTREE.get("subtree")
        command = subtree.command(command) if subtree is not None \
            else [RUNUSER, "-u", TA_USER, "--", *command]
    result = subprocess.run(command, cwd=workspace, env=_environment(workspace),
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def _chown_tree(folder: Path, mode: str) -> None:
    if mode != "unprivileged":
        return
    user = pwd.getpwnam(TA_USER)
    for path in [folder, *folder.rglob("*")]:
        os.chown(path, user.pw_uid, user.pw_gid)


# -- what a notebook can see --------------------------------------------------------------------

OBSERVER = r'''
import gc, os, socket, sys, ctypes, errno
seen = {}
def _attempt(action):
    try:
        action()
        return "done"
    except Exception as error:
        return type(error).__name__
def _write(path):
    with open(path, "a") as handle:
        handle.write("x")
seen["uid"] = os.getuid()
seen["home"] = os.environ.get("HOME")
seen["environment"] = sorted(os.environ)
seen["top"] = sorted(os.listdir("/"))
seen["pids"] = sorted(int(p) for p in os.listdir("/proc") if p.isdigit())
seen["visible"] = [p[::-1] for p in TARGETS_REVERSED if os.path.exists(p[::-1])]
seen["writes"] = {p: _attempt(lambda p=p: _write(p)) for p in WRITES}
seen["network"] = _attempt(lambda: socket.create_connection(("127.0.0.1", PORT), timeout=3))
seen["status"] = {line.split(":")[0]: line.split(":", 1)[1].strip() for line in open("/proc/self/status")
                  if line.startswith(("CapEff", "CapPrm", "CapBnd", "NoNewPrivs", "Seccomp:"))}
libc = ctypes.CDLL(None, use_errno=True)
seen["ptrace"] = libc.ptrace(16, 1, 0, 0) == -1 and ctypes.get_errno() in (errno.EPERM, errno.ESRCH)
seen["unshare"] = libc.unshare(0x10000000) == -1
seen["hostname"] = socket.gethostname()
found = []
for thing in gc.get_objects():  # every string held by a dict, list or tuple, checked in place
    values = thing.values() if isinstance(thing, dict) else thing if isinstance(
        thing, (list, tuple)) else ()
    for value in values:
        if isinstance(value, str) and any(h[::-1] in value for h in HIDDEN_REVERSED):
            found.append(value[:300])
seen["class_paths_in_memory"] = found[:5]
del found
seen["ta_module"] = _attempt(lambda: __import__("ta_private_module"))
def _scan_memory(needles):
    """Which of ``needles`` ((first half, second half) pairs, never held whole here) lie anywhere
    in this process's memory: every readable mapping, read through /proc/self/mem."""
    found, longest = set(), max(len(a) + len(b) for a, b in needles)
    libc.prctl(4, 1, 0, 0, 0)  # PR_SET_DUMPABLE: /proc/self/mem is then its own to open
    with open("/proc/self/maps") as maps:
        regions = [line.split()[:2] for line in maps]
    with open("/proc/self/mem", "rb", buffering=0) as mem:
        for span, perms in regions:
            if "r" not in perms:
                continue
            start, end = (int(x, 16) for x in span.split("-"))
            position = start
            while position < end:
                size = min(end - position, 64 << 20)
                try:
                    mem.seek(position)
                    chunk = mem.read(size)
                except (OSError, OverflowError, ValueError):
                    break
                for index, (first, second) in enumerate(needles):
                    at = chunk.find(first)
                    while at != -1:
                        if chunk[at + len(first):at + len(first) + len(second)] == second:
                            found.add(index)
                        at = chunk.find(first, at + 1)
                if position + size >= end:
                    break
                position += size - longest
    return sorted(found)
seen["secrets_in_memory"] = _scan_memory(NEEDLES)
'''


def _observer_notebook(folder: Path, targets: list[str], writes: list[str], port: int,
                       hidden: list[str]) -> Path:
    # The class's paths travel reversed, so that the notebook's own source does not put them in
    # its memory (the test looks for them there).
    # The secret and the TA's token travel in halves, so that the notebook never holds them whole.
    needles = [(t[:16].encode(), t[16:].encode()) for t in (SECRET, TA_TOKEN)]
    source = (f"TARGETS_REVERSED = {[t[::-1] for t in targets]!r}\nWRITES = {writes!r}\n"
              f"PORT = {port}\nHIDDEN_REVERSED = {[h[::-1] for h in hidden]!r}\n"
              f"NEEDLES = {needles!r}\n" + OBSERVER)
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source)])
    path = folder / "observer" / "observer.ipynb"
    path.parent.mkdir()
    nbformat.write(nb, path)
    return path


@pytest.fixture(scope="module")
def observation(mode):
    workspace = _workspace(mode)
    submissions, out = workspace / "submissions", workspace / "out"
    for folder in (submissions / "victim", out / "results"):
        folder.mkdir(parents=True)
    shutil.copy(paths.solution_notebook(STEM), submissions / "victim" / f"{STEM}.ipynb")
    (out / "grades.csv").write_text("student,total\n")
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    targets = [str(paths.ROOT / "autograder"), str(paths.ROOT / "tests"),
               str(paths.ROOT / "labkit" / "checks"), str(paths.ROOT / "README.md"),
               str(submissions / "victim"), str(out / "grades.csv"),
               str(workspace / "ta_private_notes.txt"), "/root/.bashrc", "/home",
               str(workspace / TA_SITE / "ta_private_module.py")]
    site = sysconfig.get_paths()["purelib"]
    writes = [os.path.join(site, "evil.pth"), "/usr/lib/evil", "/etc/evil", "/evil",
              str(paths.ROOT / "evil"), "/tmp/allowed"]
    notebook = _observer_notebook(workspace, targets, writes, listener.getsockname()[1],
                                  [str(submissions), str(out)])
    _chown_tree(workspace, mode)
    try:
        result = _run(mode, workspace, "observe", str(notebook), str(submissions), str(out))
    finally:
        listener.close()
    yield {"result": result, "writes": writes, "workspace": workspace}
    shutil.rmtree(workspace, ignore_errors=True)


def test_a_notebook_sees_only_its_own_processes(observation):
    assert observation["result"]["seen"]["pids"] == [1, 2]


def test_a_notebook_sees_nothing_of_the_kit_the_class_or_the_ta(observation):
    seen = observation["result"]["seen"]
    assert seen["visible"] == []
    assert set(seen["top"]) <= {"bin", "dev", "etc", "lib", "lib32", "lib64", "libx32", "proc",
                                "sbin", "sys", "tmp", "usr", *_interpreter_tops()}
    assert seen["home"] == "/tmp/notebook"
    assert set(seen["environment"]) <= {"PATH", "HOME", "TMPDIR", "LANG", "MPLBACKEND",
                                        "MPLCONFIGDIR", "OMP_NUM_THREADS",
                                        "PYTHONDONTWRITEBYTECODE", *confine.KEPT_VARIABLES}


def _interpreter_tops() -> set[str]:
    return {folder.parts[1] for folder in confine.interpreter_folders([]) if len(folder.parts) > 1}


def test_no_path_of_the_class_reaches_the_notebooks_memory(observation):
    assert observation["result"]["seen"]["class_paths_in_memory"] == []


def test_neither_the_grading_secret_nor_the_tas_variables_are_anywhere_in_its_memory(observation):
    """The notebook is forked from an interpreter started with an environment of its own: a scan
    of every readable mapping of the notebook's process finds neither the grading secret nor a
    token from the TA's shell (both set in the grader's environment)."""
    assert observation["result"]["seen"]["secrets_in_memory"] == []


def test_a_folder_on_the_tas_pythonpath_is_neither_importable_nor_readable(observation):
    seen = observation["result"]["seen"]
    assert seen["ta_module"] == "ModuleNotFoundError"
    assert seen["visible"] == []


def test_a_notebook_can_write_only_its_private_temporary_folder(observation):
    writes = observation["result"]["seen"]["writes"]
    assert writes.pop("/tmp/allowed") == "done"
    # Inside, /tmp is the notebook's own (a kit cloned under the host's /tmp has its folders
    # there, writable and private); everywhere else a write is refused, and none reaches the host.
    assert all(outcome != "done" for path, outcome in writes.items()
               if not path.startswith("/tmp/")), writes
    assert not any(Path(p).exists() for p in writes)


def test_a_notebook_has_no_network(observation):
    assert observation["result"]["seen"]["network"] != "done"


def test_a_notebook_holds_no_capability_and_cannot_trace_or_unshare(observation):
    result = observation["result"]
    status = result["seen"]["status"]
    assert int(status["CapEff"], 16) == int(status["CapPrm"], 16) == int(status["CapBnd"], 16) == 0
    assert status["NoNewPrivs"] == "1"
    if result["confinement"]["seccomp"]:
        assert status["Seccomp"] == "2"
        assert result["seen"]["ptrace"] is True and result["seen"]["unshare"] is True


def test_the_notebook_runs_as_nobody_or_as_the_ta_outside(observation, mode):
    confinement = observation["result"]["confinement"]
    expected = confine.NOBODY_UID if mode == "root" else pwd.getpwnam(TA_USER).pw_uid
    assert confinement["namespaces"] and confinement["new_root"]
    assert confinement["outside_uid"] == expected
    assert observation["result"]["seen"]["uid"] == confine.SANDBOX_UID
    assert observation["result"]["seen"]["hostname"] == "notebook"


def test_the_fork_server_never_starts_cuda(observation):
    assert observation["result"]["fork_server_cuda"] is False


# -- a hostile class ----------------------------------------------------------------------------

def _solution() -> nbformat.NotebookNode:
    return nbformat.read(paths.solution_notebook(STEM), 4)


def _with_cell(source: str, *, last: bool = False) -> nbformat.NotebookNode:
    """The solution with one more code cell: as its last cell (to redefine a graded function
    after the cells that use it ran), or before the pseudoinverse is first used. A last cell
    comes with the check cells of the functions it redefines removed: a question is judged where
    its check runs, and one no cell checks at the end of the notebook, after this cell (a check
    left in place would also call the hostile function in the notebook, as a cell)."""
    nb = _solution()
    index = len(nb.cells) if last else next(
        i for i, c in enumerate(nb.cells) if "X_inv_svd = pinv_svd(X)" in c.source)
    nb.cells.insert(index, nbformat.v4.new_code_cell(source))
    if last:
        redefined = [question for question in FULL if notebooks.binds(source, question)]
        nb.cells = [c for c in nb.cells
                    if not set(notebooks.checked_questions(c.source)[0]) & set(redefined)]
    return nb


_FIND_CONNECTION = ("import gc, socket, struct, sys, time\n"
                    "_conn = [o for o in gc.get_objects() if isinstance(o, socket.socket)"
                    " and o.fileno() >= 0][0]\n")

#: The runner's modules, as a notebook that rewrites them finds them.
_RUNNER = ("import sys, torch\n_child = sys.modules['labkit.sandbox.runner']\n"
           "_protocol = sys.modules['labkit.sandbox.protocol']\n")


def _code_index_of_inserted_cell() -> int:
    """The index among code cells of the cell ``_with_cell`` inserts (not last)."""
    nb = _with_cell("pass")
    code = [c for c in nb.cells if c.cell_type == "code"]
    return next(i for i, c in enumerate(code) if c.source == "pass")


_DAEMON = '''import os, time
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        try:
{body}
        finally:
            os._exit(0)
    os._exit(0)
os.wait()
'''


def _daemon(body: str) -> str:
    return _DAEMON.format(body="\n".join(" " * 12 + line for line in body.splitlines()))


ATTACKS = {
    # 1 and 15: a detached process kills every process of its user it can see that runs the
    # grader's interpreter (other students' notebooks, the fork servers), sparing its own
    # notebook and init. (Only those: should the sandbox ever fail, the attack must not take the
    # machine running the tests with it.)
    "killer": _with_cell(_daemon(
        "import signal\nme, end = os.getuid(), time.time() + 60\nwhile time.time() < end:\n"
        "    for p in os.listdir('/proc'):\n"
        "        if p.isdigit() and int(p) not in (1, 2, os.getpid()):\n"
        "            try:\n                if os.stat('/proc/' + p).st_uid == me and b'labkit.sandbox'"
        " in open('/proc/' + p + '/cmdline', 'rb').read():\n"
        "                    os.kill(int(p), signal.SIGKILL)\n            except OSError:\n"
        "                pass\n    time.sleep(0.1)")),
    # 2: leftovers: a process and a System V shared-memory segment meant to outlive the notebook.
    "leaver": _with_cell(
        "import ctypes, subprocess\n"
        "ctypes.CDLL(None).shmget(0, 4242 * 4096, 0o1000 | 0o600)\n"
        "subprocess.Popen(['sleep', '4242'], start_new_session=True)"),
    # 3: forged cell events keep a 20 s cell alive past the 8 s cell limit.
    "forger": _with_cell(
        _FIND_CONNECTION + "import threading\n_protocol = sys.modules['labkit.sandbox.protocol']\n"
        "def _forge():\n    for index in range(200):\n        time.sleep(2)\n"
        "        _protocol.send(_conn, {'event': 'cell', 'index': index})\n"
        "threading.Thread(target=_forge, daemon=True).start()\ntime.sleep(20)"),
    # 4: a reply that announces 1000 bytes, sends one and stalls.
    "staller": _with_cell(
        _FIND_CONNECTION + "def pinv_svd(X):\n    _conn.sendall(struct.pack('!Q', 1000) + b'{')\n"
        "    time.sleep(10**6)", last=True),
    # 5: a well-formed reply announcing 100 buffers of 256 MB; a header of nested lists.
    "flooder": _with_cell(
        _FIND_CONNECTION + "def pinv_svd(X):\n"
        "    _conn.sendall(struct.pack('!Q', 2) + b'{}' + struct.pack('!Q', 100)"
        " + struct.pack('!Q', 256 << 20))\n    time.sleep(10**6)", last=True),
    "nester": _with_cell(
        _FIND_CONNECTION + "def as_column(y):\n    header = b'[' * 200000 + b']' * 200000\n"
        "    _conn.sendall(struct.pack('!Q', len(header)) + header + struct.pack('!Q', 0))\n"
        "    time.sleep(10**6)", last=True),
    # 6: in-place writes on the caller's tensors: zeros for a gradient, with the least-squares
    # solution written into theta for the gradient-descent check to read.
    "in_place": _with_cell(
        "def linear_regression_loss_grad(theta, X, y):\n"
        "    theta.copy_(torch.linalg.lstsq(X, y).solution)\n    return torch.zeros_like(theta)",
        last=True),
    # 8: hidden inputs leaked through an error message.
    "leaker": _with_cell("def pinv_svd(X):\n    raise ValueError(repr(X.tolist()))", last=True),
    # 19: memory held past the 2 GB budget where no per-process limit sees it: in three child
    # processes, in memfd files and in /dev/shm.
    "hog": _with_cell('''import os, time
CHUNK = 450 << 20
def _hold(size):
    block = bytearray(size)
    for at in range(0, size, 4096):
        block[at] = 1
    return block
children = []
for _ in range(3):
    pid = os.fork()
    if pid == 0:
        _kept = _hold(CHUNK)
        time.sleep(60)
        os._exit(0)
    children.append(pid)
_piece = b"x" * (50 << 20)
_memfds = [os.memfd_create("hog") for _ in range(4)]  # 200 MB each, under the file-size limit
for _memfd in _memfds:
    for _ in range(4):
        os.write(_memfd, _piece)
with open("/dev/shm/hog", "wb") as _shm:
    _shm.write(b"x" * (48 << 20))
time.sleep(30)
'''),
    # 16: the runner rewritten so that a function that changes its argument in place sends the
    # argument back as it was sent (and the earlier runner's own verdict silenced).
    "forged_unmodified": _with_cell(_RUNNER + '''
_child._changed = lambda *args: False
_call = _child._call
def _forged_call(namespace, request):
    if not request.get("twice"):
        return _call(namespace, request)
    args = _child._arguments(request)
    sent = [a.clone() if isinstance(a, torch.Tensor) else a for a in args]
    fn = namespace[request["name"]]
    result = fn(*args)
    reply = {"ok": True, "result": _protocol.encode(result), "changed": []}
    if request.get("twice"):
        reply.update(again=_protocol.encode(fn(*args)), after=[_child._state(a) for a in sent])
    return reply
_child._call = _forged_call
def add_bias_column(X):
    result = torch.cat((X, X.new_ones(X.shape[0], 1)), dim=1)
    X.mul_(2)
    return result
''', last=True),
    # 17: a zero gradient, and the runner's descent rewritten to send back a true descent (made
    # with a correct gradient of its own) as the function's.
    "forged_descent": _with_cell(_RUNNER + '''
def linear_regression_loss_grad(theta, X, y):
    return torch.zeros_like(theta)
def _forged_descend(namespace, request):
    args = _child._arguments(request)
    X, y = (args[0] if isinstance(args, tuple) else args)[:2]  # (args, states) in earlier runners
    theta, path = _protocol.decode(request["start"]), []
    path.append(theta)
    for _ in range(int(request["steps"])):
        theta = theta - float(request["alpha"]) * (X.T @ (X @ theta - y))
        path.append(theta)
    return {"ok": True, "trajectory": _protocol.encode(torch.stack(path)),
            "theta": _protocol.encode(theta), "steps": int(request["steps"]), "seconds": 0.01,
            "over_budget": False}
_child._descend = _forged_descend
''', last=True),
    # 18: a 20 s cell that says, in order, that it has ended after 2 s (to the grader that asks for
    # each cell), or announces the next cell and drops the real announcement (to a runner that
    # announces each cell itself): either way it would restart the 8 s clock.
    "in_order_forger": _with_cell(_FIND_CONNECTION + _RUNNER + '''
import threading
_send = _protocol.send
if hasattr(_child, "_Cells"):
    _forged = {"event": "cell", "index": FORGER_CELL, "error": None}
else:
    _forged = {"event": "cell", "index": FORGER_CELL + 1}
    _protocol.send = lambda conn, message: None if message == _forged else _send(conn, message)
def _forge():
    time.sleep(2)
    _send(_conn, _forged)
threading.Thread(target=_forge, daemon=True).start()
time.sleep(20)
'''.replace("FORGER_CELL", str(_code_index_of_inserted_cell()))),
}


def _editor(victim: Path, grades: Path, site: str) -> nbformat.NotebookNode:
    """12, 13 and 14: edit another student's notebook, rewrite the gradebook once the grader is
    gone (and on the way), plant a .pth file in the grader's environment."""
    return _with_cell(
        f"VICTIM, GRADES, PTH, KIT = {str(victim)!r}, {str(grades)!r}, "
        f"{os.path.join(site, 'evil.pth')!r}, {str(paths.ROOT / 'evil.txt')!r}\n"
        "def _vandalise():\n"
        "    for path, text in ((VICTIM, '{}'), (GRADES, 'attacker,999\\n'), "
        "(PTH, '# planted\\n'), (KIT, 'x')):\n"
        "        try:\n            open(path, 'w').write(text)\n        except OSError:\n"
        "            pass\n_vandalise()\n"
        + _daemon("for _ in range(120):\n    time.sleep(1)\n    _vandalise()"))


@pytest.fixture(scope="module")
def hostile_class(mode):
    workspace = _workspace(mode)
    submissions, out = workspace / "submissions", workspace / "out"
    victim = submissions / "victim" / f"{STEM}.ipynb"
    notebooks = {"control": _solution(), "victim": _solution(), **ATTACKS,
                 "editor": _editor(victim, out / "grades.csv", sysconfig.get_paths()["purelib"])}
    for name, nb in notebooks.items():
        (submissions / name).mkdir(parents=True)
        nbformat.write(nb, submissions / name / f"{STEM}.ipynb")
    victim_digest = hashlib.sha256(victim.read_bytes()).hexdigest()
    _chown_tree(workspace, mode)
    result = _run(mode, workspace, "grade", str(submissions), str(out))
    grades_after_grading = (out / "grades.csv").read_bytes()
    time.sleep(3)  # a daemon that outlived the grader would strike now
    with open(out / "grades.csv", newline="") as f:
        rows = {row["student"]: row for row in csv.DictReader(f)}
    yield {"rows": rows, "out": out, "result": result, "victim": victim,
           "victim_digest": victim_digest, "grades_after_grading": grades_after_grading}
    shutil.rmtree(workspace, ignore_errors=True)


def _points(row, question) -> float:
    return float(row[f"{STEM}/{question}"])


def _assert_full(row, *, but: tuple[str, ...] = ()):
    for question, points in FULL.items():
        if question not in but:
            assert _points(row, question) == points, (question, row["notes"])


def test_the_control_and_the_victim_keep_full_marks(hostile_class):
    for student in ("control", "victim"):
        _assert_full(hostile_class["rows"][student])
        assert "worker" not in hostile_class["rows"][student]["notes"]


def test_a_daemon_that_kills_its_users_processes_harms_no_one(hostile_class):
    _assert_full(hostile_class["rows"]["killer"])


def test_nothing_a_notebook_started_outlives_it(hostile_class):
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        assert command != b"sleep\x004242\x00", f"process {pid} outlived its notebook"
    segments = Path("/proc/sysvipc/shm").read_text().splitlines()[1:]
    assert not [s for s in segments if s.split()[3] == str(4242 * 4096)]
    _assert_full(hostile_class["rows"]["leaver"])


def test_forged_cell_events_stop_the_notebook(hostile_class):
    row = hostile_class["rows"]["forger"]
    assert "forged" in row["notes"], row["notes"]
    assert float(row["total"]) == 0


@pytest.mark.parametrize("student, question, said", [
    ("staller", "pinv_svd", "the call ran longer than 6 s"),
    ("flooder", "pinv_svd", "reply was not accepted (a message of more than 64 MB)"),
    ("nester", "as_column", "reply was not accepted (a header nested more than 32 deep)"),
])
def test_a_hostile_reply_costs_only_its_own_question(hostile_class, student, question, said):
    row = hostile_class["rows"][student]
    assert _points(row, question) == 0
    _assert_full(row, but=(question,))
    assert said in " ".join(_messages(hostile_class, student, question))


def _messages(hostile_class, student: str, question: str) -> list[str]:
    record = json.loads((hostile_class["out"] / "results" / student / f"{STEM}.json").read_text())
    return [c["message"] for c in record["cases"] if c["question"] == question]


def test_the_batch_ends_and_no_worker_dies(hostile_class):
    assert f"graded {len(ATTACKS) + 3} submissions" in hostile_class["result"]["summary"]
    assert not any("worker" in row["notes"] for row in hostile_class["rows"].values())


def test_in_place_writes_never_reach_the_graders_tensors(hostile_class):
    """The least-squares solution written into the caller's theta reaches neither the gradient
    descent (driven by the grader's own theta) nor unnoticed: both checks fail."""
    row = hostile_class["rows"]["in_place"]
    messages = " ".join(_messages(hostile_class, "in_place", "linear_regression_loss_grad"))
    assert "after gradient descent" in messages, messages
    assert "modified its argument" in messages, messages
    assert _points(row, "linear_regression_loss_grad") < FULL["linear_regression_loss_grad"]
    _assert_full(row, but=("linear_regression_loss_grad",))


def test_memory_held_in_children_memfd_and_shared_memory_stops_the_notebook(hostile_class):
    """The kernel counts everything a notebook holds in its cgroup: the cell that holds about
    2.2 GB against the 2 GB budget (three children, memfd files, /dev/shm) is stopped and the
    notebook graded without it, while the control and the victim, graded beside it, keep full
    marks."""
    if _SUBTREE.get("subtree") is None and os.geteuid() != 0:
        pytest.skip("no cgroups for the notebooks on this machine")
    row = hostile_class["rows"]["hog"]
    assert "used more than 2048 MB of memory" in row["notes"], row["notes"]
    _assert_full(row)
    for student in ("control", "victim"):
        _assert_full(hostile_class["rows"][student])


def test_a_rewritten_runner_cannot_hide_a_change_that_later_calls_see(hostile_class):
    """The arguments come back as data and the grader compares them; a runner rewritten to send
    them back as they were sent still loses the point, since the second call on the same objects
    (made in the same request) sees the change."""
    row = hostile_class["rows"]["forged_unmodified"]
    assert _points(row, "add_bias_column") == FULL["add_bias_column"] - 1, row["notes"]
    assert "called twice" in " ".join(_messages(hostile_class, "forged_unmodified",
                                                "add_bias_column"))
    _assert_full(row, but=("add_bias_column",))


def test_a_descent_the_function_did_not_make_earns_nothing(hostile_class):
    """A trajectory is believed only as far as fresh calls reproduce it: a true descent sent back
    for a zero gradient fails where the grader replays it."""
    messages = " ".join(_messages(hostile_class, "forged_descent", "linear_regression_loss_grad"))
    assert "when called again at step" in messages, messages
    row = hostile_class["rows"]["forged_descent"]
    # A zero gradient keeps its dtypes, unmodified and devices points, and loses values and descent.
    assert _points(row, "linear_regression_loss_grad") == FULL["linear_regression_loss_grad"] - 2
    _assert_full(row, but=("linear_regression_loss_grad",))


def test_a_cell_that_claims_to_have_ended_is_stopped_all_the_same(hostile_class):
    """The clock of the next request starts only when the notebook's process reads it: a cell that
    says it has ended and goes on running leaves it unread, and is stopped at the cell limit."""
    row = hostile_class["rows"]["in_order_forger"]
    assert "went on running" in row["notes"], row["notes"]
    assert float(row["total"]) == 0


def test_error_messages_do_not_carry_hidden_inputs(hostile_class):
    messages = _messages(hostile_class, "leaker", "pinv_svd")
    assert messages and "ValueError" in messages[0]
    for message in messages:
        assert len(re.findall(r"\d\.\d{3,}", message)) < 12, message


def test_no_notebook_can_touch_the_class_the_gradebook_or_the_graders_environment(hostile_class):
    assert hashlib.sha256(hostile_class["victim"].read_bytes()).hexdigest() \
        == hostile_class["victim_digest"]
    assert (hostile_class["out"] / "grades.csv").read_bytes() == \
        hostile_class["grades_after_grading"]
    assert "attacker" not in hostile_class["rows"]
    assert not Path(sysconfig.get_paths()["purelib"], "evil.pth").exists()
    assert not (paths.ROOT / "evil.txt").exists()
    _assert_full(hostile_class["rows"]["editor"])


# -- objects that attack whoever touches them ------------------------------------------------------

@pytest.fixture(scope="module")
def graded_objects(mode):
    """A notebook of objects beyond tensors, hostile ones among them (``object_checks``), graded
    with checks written for local objects, as root or as the TA."""
    workspace = _workspace(mode)
    notebook, zip_path = workspace / "objects.ipynb", workspace / "objects.zip"
    nbformat.write(object_checks.notebook(), notebook)
    questions = object_checks.write_autograder(zip_path)
    _chown_tree(workspace, mode)
    started = time.monotonic()
    result = _run(mode, workspace, "objects", str(notebook), str(zip_path),
                  json.dumps(questions))
    result["wall_seconds"] = time.monotonic() - started
    yield result
    shutil.rmtree(workspace, ignore_errors=True)


def _object_messages(graded_objects, question: str) -> str:
    return " ".join(case["message"] for case in graded_objects["cases"]
                    if case["question"] == question)


def test_hostile_objects_cost_only_the_checks_that_touch_them(graded_objects):
    """An attribute lookup that loops forever, a lying ``__eq__``/``__bool__``, a ``__del__``
    that kills its process and more text than the notebook's memory holds each fail their own
    checks; the module, the vector class and every question after them keep their points."""
    assert graded_objects["problem"] is None, graded_objects["notes"]
    assert graded_objects["scores"] == {
        "arithmetic": 1, "model": 1, "loops": 0, "looper": 1, "liar": 0, "doomed": 0,
        "huge": 2, "enormous": 0, "after": 1}, graded_objects["cases"]
    assert "the call ran longer than 6 s" in _object_messages(graded_objects, "loops")
    liar = _object_messages(graded_objects, "liar")
    assert "its value should be 2" in liar and "NotebookObjectMisused" in liar
    assert "for its truth, which only the notebook would answer" in liar
    assert "ended the notebook's process" in _object_messages(graded_objects, "doomed")
    enormous = _object_messages(graded_objects, "enormous")
    assert "used more than 2048 MB of memory" in enormous or "MemoryError" in enormous, enormous


def test_the_grader_neither_hangs_nor_holds_a_hostile_objects_text(graded_objects):
    """The grader's own memory stays far below the gigabyte of text one object's ``str()``
    builds in the notebook (it receives ``STR_CHARS`` of it), and the notebook is graded within
    its limits."""
    assert graded_objects["max_rss_kb"] < 1 << 20  # under 1 GB
    assert graded_objects["seconds"] < 90 + 30


def test_only_the_interpreters_own_folders_reach_the_notebook_and_tmp_stays_private(monkeypatch):
    """The notebooks' interpreter is isolated from the grader's PYTHONPATH: a folder on it that
    provides none of the packages the notebooks preload (a TA's own modules, under the host's
    /tmp here) is neither importable nor visible in the notebook, whose /tmp holds only its own
    folder and the interpreter's folders that live under the host's /tmp (a fresh clone's
    environment)."""
    from labkit.sandbox import forkserver
    from labkit.sandbox.session import ForkServerClient, NotebookSession
    from labkit.grading.standins import RemoteEnv
    from labkit.sandbox.confine import Limits

    folder = Path(tempfile.mkdtemp(prefix="labkit-site-", dir="/tmp"))
    notebook_folder = Path(tempfile.mkdtemp(prefix="labkit-nb-", dir="/tmp"))
    try:
        folder.chmod(0o755)
        (folder / "extra_site_module.py").write_text("VALUE = 42\n")
        monkeypatch.setenv("PYTHONPATH", _python_path(str(folder), str(paths.ROOT)))
        monkeypatch.syspath_prepend(str(folder))
        assert str(folder) not in forkserver.package_folders()
        notebook = notebook_folder / "uses_site.ipynb"
        nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
            f"import os\nvisible = os.path.exists({str(folder)!r})\n"
            "try:\n    import extra_site_module\n    value = extra_site_module.VALUE\n"
            "except ImportError:\n    value = None\nin_tmp = sorted(os.listdir('/tmp'))")]),
            notebook)
        server = ForkServerClient()
        session = NotebookSession(server, notebook, notebook.name, Limits(), [])
        try:
            session.start()
            env = RemoteEnv(session)
            value, visible, in_tmp = env.get("value"), env.get("visible"), env.get("in_tmp")
            kept = {Path(f).relative_to("/tmp").parts[0] for f in server.folders([])
                    if Path(f).is_relative_to("/tmp")}
        finally:
            session.close()
            server.close()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        shutil.rmtree(notebook_folder, ignore_errors=True)
    assert value is None and visible is False
    assert folder.name not in in_tmp and notebook_folder.name not in in_tmp
    assert set(in_tmp) <= {"notebook", *kept}


_FORBID_NAMESPACES = """
import errno, os, sys
import pyseccomp as seccomp
rules = seccomp.SyscallFilter(seccomp.ALLOW)
rules.add_rule(seccomp.ERRNO(errno.EPERM), "unshare")
rules.add_rule(seccomp.ERRNO(errno.EPERM), "clone", seccomp.Arg(0, seccomp.MASKED_EQ, 0x10000000, 0x10000000))
rules.load()
os.execv(sys.executable, [sys.executable, "-m", "labkit", *sys.argv[1:]])
"""


def test_where_namespaces_are_forbidden_grading_refuses_unless_told_unconfined(tmp_path):
    """As on a distribution that forbids unprivileged user namespaces (or a container whose
    seccomp profile does, as Docker's default one): refused with what to do; graded with
    --unconfined, every row saying so."""
    submissions, out = tmp_path / "submissions", tmp_path / "out"
    submissions.mkdir()
    shutil.copy(paths.solution_notebook(STEM), submissions / "ada.ipynb")
    command = [sys.executable, "-c", _FORBID_NAMESPACES, "grade", "--submissions",
               str(submissions), "--out", str(out), "--workers", "1"]
    refused = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert refused.returncode != 0
    assert "cannot confine student code" in refused.stderr and "--unconfined" in refused.stderr
    assert not (out / "grades.csv").exists()

    graded = subprocess.run([*command, "--unconfined"], capture_output=True, text=True,
                            cwd=tmp_path, timeout=300)
    assert graded.returncode == 0, graded.stderr[-2000:]
    with open(out / "grades.csv", newline="") as f:
        (row,) = csv.DictReader(f)
    assert "graded unconfined (--unconfined)" in row["notes"]
    _assert_full(row)
