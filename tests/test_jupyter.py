"""JupyterLab, as students and instructors start it: a real server on 127.0.0.1, real HTTP
requests through its contents and sessions APIs, and the released first cell run in a kernel the
server started for a renamed copy of a notebook."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path
from urllib.parse import quote

import nbformat
import pytest
import requests

# A client of the kernel's websocket; absent where JupyterLab is not installed (a GPU machine
# running only the grading path), where these tests then skip.
websocket = pytest.importorskip("websocket")

from labkit import paths
from labkit.course import requirements, student_setup

pytestmark = pytest.mark.slow

TOKEN = "labkit-test-token"
STEM = "1_2_logistic_regression"


@contextmanager
def jupyter_lab(root: Path, home: Path) -> Iterator[str]:
    """``jupyter lab`` of this environment, headless, serving ``root``; yields its base URL."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "HOME": str(home), "JUPYTER_CONFIG_DIR": str(home / "config"),
           "JUPYTER_RUNTIME_DIR": str(home / "runtime"), "JUPYTER_DATA_DIR": str(home / "data")}
    jupyter = Path(sys.executable).parent / "jupyter"
    log = open(home / "server.log", "wb")
    server = subprocess.Popen(
        [str(jupyter), "lab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
         "--ServerApp.port_retries=0", f"--IdentityProvider.token={TOKEN}",
         f"--ServerApp.root_dir={root}", *(["--allow-root"] if os.geteuid() == 0 else [])],
        env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert server.poll() is None, (home / "server.log").read_text()
            try:
                if requests.get(f"{url}/api/status", params={"token": TOKEN}, timeout=5).ok:
                    break
            except requests.ConnectionError:
                pass
            assert time.monotonic() < deadline, (home / "server.log").read_text()
            time.sleep(0.5)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()


def _headers() -> dict[str, str]:
    return {"Authorization": f"token {TOKEN}"}


def _notebook(url: str, path: str) -> dict:
    response = requests.get(f"{url}/api/contents/{quote(path)}", params={"content": 1},
                            headers=_headers(), timeout=30)
    assert response.status_code == 200, response.text
    model = response.json()
    assert model["type"] == "notebook"
    return model["content"]


def test_jupyter_lab_from_the_grading_environment_serves_a_student_notebook_and_the_lab_page(tmp_path):
    with jupyter_lab(paths.STUDENT, tmp_path) as url:
        content = _notebook(url, str(paths.student_notebook(STEM).relative_to(paths.STUDENT)))
        title, setup = content["cells"][:2]
        assert title["cell_type"] == "markdown" and title["source"].startswith("# Lab 1.2")
        assert setup["source"].startswith(student_setup.TITLE)  # under the title, collapsed
        assert setup["metadata"]["jupyter"] == {"source_hidden": True}
        lab = requests.get(f"{url}/lab", headers=_headers(), timeout=30)
        assert lab.status_code == 200 and "JupyterLab" in lab.text


def test_jupyter_lab_serves_the_masters_to_instructors(tmp_path):
    with jupyter_lab(paths.ASSIGNMENTS, tmp_path) as url:
        content = _notebook(url, str(paths.master_notebook(STEM).relative_to(paths.ASSIGNMENTS)))
        assert content["cells"][0]["source"].startswith("# ASSIGNMENT CONFIG")


def _execute(url: str, kernel: str, code: str) -> str:
    """Run ``code`` in a kernel through the server's websocket; returns what it printed."""
    ws = websocket.create_connection(
        f"{url.replace('http', 'ws', 1)}/api/kernels/{kernel}/channels?token={TOKEN}", timeout=120)
    try:
        msg_id = uuid.uuid4().hex
        ws.send(json.dumps({
            "header": {"msg_id": msg_id, "msg_type": "execute_request", "username": "student",
                       "session": uuid.uuid4().hex, "date": "", "version": "5.3"},
            "parent_header": {}, "metadata": {}, "channel": "shell",
            "content": {"code": code, "silent": False, "store_history": False,
                        "user_expressions": {}, "allow_stdin": False, "stop_on_error": True},
        }))
        printed = []
        while True:
            message = json.loads(ws.recv())
            if message.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            kind, content = message["msg_type"], message["content"]
            if kind == "stream":
                printed.append(content["text"])
            elif kind == "error":
                printed.append("\n".join(content["traceback"]))
            elif kind == "status" and content["execution_state"] == "idle":
                return "".join(printed)
    finally:
        ws.close()


ANSWER = """
def logistic_regression_loss_grad(theta, X, y):
    return X.T @ (torch.sigmoid(X @ theta) - y)
import torch
"""


def test_a_renamed_copy_opened_in_jupyter_lab_is_the_notebook_its_first_cell_exports(tmp_path):
    folder = tmp_path / "work"
    folder.mkdir()
    shutil.copy(paths.student_notebook(STEM), folder / f"{STEM}.ipynb")  # the first download
    copy = f"{STEM} (1).ipynb"  # the second, which the student works in
    shutil.copy(paths.student_notebook(STEM), folder / copy)
    with jupyter_lab(folder, tmp_path) as url:
        session = requests.post(f"{url}/api/sessions", headers=_headers(), timeout=60, json={
            "path": copy, "name": copy, "type": "notebook", "kernel": {"name": "python3"}})
        assert session.status_code == 201, session.text
        kernel = session.json()["kernel"]["id"]
        (setup,) = [c.source for c in nbformat.read(folder / copy, 4).cells
                    if student_setup.is_setup_cell(c)]
        printed = _execute(url, kernel, setup + "\nprint('exports:', grader._notebook)\n"
                           + "print('zips:', grader.notebook_to_export())\n" + ANSWER
                           + "print(grader.check('logistic_regression_loss_grad'))")
    assert f"exports: {copy}" in printed and f"zips: {copy}" in printed, printed
    assert "Public checks passed" in printed and "Error" not in printed, printed


def test_the_students_requirements_pin_what_the_grading_environment_holds():
    student = requirements.pinned((paths.STUDENT / "requirements.txt").read_text())
    grading = requirements.pinned((paths.ROOT / "requirements.txt").read_text())
    assert sorted(student) == sorted(requirements.STUDENT_PACKAGES)
    for package, version in student.items():
        assert grading[package] == version, package
        # and it is what the tests run on (a local build such as torch's "+cpu" is that version)
        assert metadata.version(package).split("+")[0] == version, package
