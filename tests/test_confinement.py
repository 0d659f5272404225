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

from labkit import paths
from labkit.grade import sandbox

pytestmark = pytest.mark.slow

STEM = "1_1_linear_regression"
TA_USER = "labkit-ta"
RUNUSER = shutil.which("runuser") or "runuser"
MODES = ("root", "unprivileged")
FULL = {"add_bias_column": 4, "as_column": 4, "pinv_svd": 5, "linear_regression_loss_grad": 5,
        "train_test_split": 3, "diabetes_theta": 2}


# -- running the grader as root or as the TA -----------------------------------------------------

def _open_for_others(path: Path, changed: dict[Path, int]) -> None:
    """Let other users pass through every folder above ``path`` and read ``path`` itself (the
    interpreter may live under /root, a fresh clone under a private temporary folder, and Python
    lists a folder to import from it); the old modes go back afterwards."""
    for folder, wanted in [*((p, stat.S_IXOTH) for p in reversed(path.parents)),
                           (path, stat.S_IXOTH | stat.S_IROTH)]:
        mode = stat.S_IMODE(folder.stat().st_mode)
        if folder.is_dir() and mode & wanted != wanted:
            changed.setdefault(folder, mode)
            folder.chmod(mode | wanted)


@pytest.fixture(scope="module")
def ta_user():
    """The unprivileged user a TA grades as, able to run the kit's interpreter."""
    if os.geteuid() != 0:
        pytest.skip("creating the unprivileged grading user needs root (as on CI)")
    if not (shutil.which("useradd") and shutil.which("runuser")):
        pytest.skip("useradd and runuser are needed to grade as an ordinary user")
    try:
        pwd.getpwnam(TA_USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", TA_USER], check=True)
    changed: dict[Path, int] = {}
    for needed in (Path(sys.executable).resolve(), Path(sys.prefix), paths.ROOT):
        _open_for_others(needed, changed)
    yield pwd.getpwnam(TA_USER)
    for folder, mode in changed.items():
        folder.chmod(mode)


@pytest.fixture(scope="module", params=MODES)
def mode(request):
    if request.param == "unprivileged":
        request.getfixturevalue("ta_user")
        reason = _probe_as_ta()
        if reason:
            pytest.skip(f"unprivileged user namespaces are not available here: {reason}")
    return request.param


def _probe_as_ta() -> str | None:
    code = "from labkit.grade import sandbox; print(sandbox.probe() or '')"
    result = subprocess.run([RUNUSER, "-u", TA_USER, "--", sys.executable, "-c", code],
                            capture_output=True, text=True, cwd="/", env=_environment(Path("/")))
    return result.stdout.strip() or (result.stderr.strip()[-300:] if result.returncode else None)


def _environment(home: Path) -> dict[str, str]:
    # The grading secret comes from the environment: the TA does not own the kit's checkout here,
    # so it could not keep the secret's file there.
    return {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(home), "LANG": "C.UTF-8",
            "PYTHONPATH": _python_path(str(paths.ROOT)),
            "LABKIT_GRADING_SECRET": "confinement tests"}


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
    if mode == "unprivileged":
        user = pwd.getpwnam(TA_USER)
        os.chown(folder, user.pw_uid, user.pw_gid)
        os.chown(folder / "ta_private_notes.txt", user.pw_uid, user.pw_gid)
    return folder


def _run(mode: str, workspace: Path, *args: str) -> dict:
    """Run ``tests.hostile_runner`` from ``workspace`` (so that the current folder is on the
    grader's ``sys.path``, as with ``python -m labkit grade``) as root or as the TA."""
    command = [sys.executable, "-m", "tests.hostile_runner", *args]
    if mode == "unprivileged":
        command = [RUNUSER, "-u", TA_USER, "--", *command]
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
'''


def _observer_notebook(folder: Path, targets: list[str], writes: list[str], port: int,
                       hidden: list[str]) -> Path:
    # The class's paths travel reversed, so that the notebook's own source does not put them in
    # its memory (the test looks for them there).
    source = (f"TARGETS_REVERSED = {[t[::-1] for t in targets]!r}\nWRITES = {writes!r}\n"
              f"PORT = {port}\nHIDDEN_REVERSED = {[h[::-1] for h in hidden]!r}\n" + OBSERVER)
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
               str(workspace / "ta_private_notes.txt"), "/root/.bashrc", "/home"]
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
                                        "PYTHONDONTWRITEBYTECODE", *sandbox.KEPT_VARIABLES}


def _interpreter_tops() -> set[str]:
    return {folder.parts[1] for folder in sandbox.interpreter_folders([]) if len(folder.parts) > 1}


def test_no_path_of_the_class_reaches_the_notebooks_memory(observation):
    assert observation["result"]["seen"]["class_paths_in_memory"] == []


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
    expected = sandbox.NOBODY_UID if mode == "root" else pwd.getpwnam(TA_USER).pw_uid
    assert confinement["namespaces"] and confinement["new_root"]
    assert confinement["outside_uid"] == expected
    assert observation["result"]["seen"]["uid"] == sandbox.SANDBOX_UID
    assert observation["result"]["seen"]["hostname"] == "notebook"


def test_the_fork_server_never_starts_cuda(observation):
    assert observation["result"]["fork_server_cuda"] is False


# -- a hostile class ----------------------------------------------------------------------------

def _solution() -> nbformat.NotebookNode:
    return nbformat.read(paths.solution_notebook(STEM), 4)


def _with_cell(source: str, *, last: bool = False) -> nbformat.NotebookNode:
    """The solution with one more code cell: as its last cell (to redefine a graded function
    after its own checks ran), or before the pseudoinverse is first used."""
    nb = _solution()
    index = len(nb.cells) if last else next(
        i for i, c in enumerate(nb.cells) if "X_inv_svd = pinv_svd(X)" in c.source)
    nb.cells.insert(index, nbformat.v4.new_code_cell(source))
    return nb


_FIND_CONNECTION = ("import gc, socket, struct, sys, time\n"
                    "_conn = [o for o in gc.get_objects() if isinstance(o, socket.socket)"
                    " and o.fileno() >= 0][0]\n")

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
        "            try:\n                if os.stat('/proc/' + p).st_uid == me and b'labkit.grade'"
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
        _FIND_CONNECTION + "import threading\n_protocol = sys.modules['labkit.grade.protocol']\n"
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
    assert "graded 11 submissions" in hostile_class["result"]["summary"]
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


def test_packages_on_the_path_under_tmp_stay_importable_and_tmp_stays_private(monkeypatch):
    """A fresh clone's environment, or wheels carried to a GPU machine, may live under the
    host's /tmp: kept visible (read-only) inside the notebook's own /tmp, while the rest of the
    host's /tmp (the grader's work) stays out of sight."""
    from labkit.grade.engine import ForkServer, NotebookSession
    from labkit.grade.remote import RemoteEnv
    from labkit.grade.sandbox import Limits

    folder = Path(tempfile.mkdtemp(prefix="labkit-site-", dir="/tmp"))
    notebook_folder = Path(tempfile.mkdtemp(prefix="labkit-nb-", dir="/tmp"))
    try:
        folder.chmod(0o755)
        (folder / "extra_site_module.py").write_text("VALUE = 42\n")
        monkeypatch.setenv("PYTHONPATH", _python_path(str(folder), str(paths.ROOT)))
        monkeypatch.syspath_prepend(str(folder))
        kept = {f.relative_to("/tmp").parts[0] for f in sandbox.interpreter_folders([])
                if f.is_relative_to("/tmp")}
        notebook = notebook_folder / "uses_site.ipynb"
        nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
            "import os, extra_site_module\nvalue = extra_site_module.VALUE\n"
            "in_tmp = sorted(os.listdir('/tmp'))")]), notebook)
        server = ForkServer()
        session = NotebookSession(server, notebook, notebook.name, Limits(), [])
        try:
            session.start()
            env = RemoteEnv(session)
            value, in_tmp = env.get("value"), env.get("in_tmp")
        finally:
            session.close()
            server.close()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        shutil.rmtree(notebook_folder, ignore_errors=True)
    # The notebook's /tmp holds its own folder and the kept folders' (the carried module's, and
    # the kit's environment when the kit itself was cloned under /tmp), nothing else of the host's.
    assert value == 42
    assert folder.name in in_tmp and notebook_folder.name not in in_tmp
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
