"""Calls into a real confined notebook: tensors sent once and kept there, and training descents run
in the notebook's process, under their budget, with the grader's own results."""

from __future__ import annotations

import os
import re
import shutil
import signal

import nbformat
import pytest
import torch

from labkit import paths
from labkit.checks import core, descent
from labkit.checks import linear_regression as lab1

STEM = "1_1_linear_regression"

EXTRA_CELL = '''
import time

def grows(X):
    X.add_(1)
    return X.sum()

def slow_grad(theta, X, y):
    started = time.process_time()
    while time.process_time() - started < 0.05:  # 50 ms of CPU time a step
        pass
    return X.T @ (X @ theta - y)

def not_a_step(theta, X, y):
    return "no tensor"

def attached_grad(theta, X, y):
    t = theta.detach().clone().requires_grad_(True)
    (g,) = torch.autograd.grad(0.5 * ((X @ t - y) ** 2).sum(), t, create_graph=True)
    return g

def argument_requires_grad(theta):
    return torch.tensor(float(theta.requires_grad), dtype=torch.float64)
'''


@pytest.fixture(scope="module")
def notebook_env(tmp_path_factory):
    from labkit.sandbox.session import ForkServerClient, NotebookSession
    from labkit.grading.standins import RemoteEnv
    from labkit.sandbox.confine import Limits

    nb = nbformat.read(paths.solution_notebook(STEM), 4)
    nb.cells.append(nbformat.v4.new_code_cell(EXTRA_CELL))
    notebook = tmp_path_factory.mktemp("remote") / f"{STEM}.ipynb"
    nbformat.write(nb, notebook)
    server = ForkServerClient()
    session = NotebookSession(server, notebook, f"{STEM}.ipynb", Limits(), [])
    session.start()
    yield RemoteEnv(session)
    session.close()
    server.close()


def test_a_kept_tensor_reaches_every_call_as_it_was_sent(notebook_env):
    """The same grader tensor, sent once and kept in the notebook's process, arrives unchanged
    at every call even though the function changes it in place each time."""
    grows = notebook_env.get("grows")
    X = torch.arange(2048, dtype=torch.float64).reshape(64, 32)  # above KeptTensors.MIN_BYTES
    first, second = grows(X), grows(X)
    assert float(first) == float(second) == float((X + 1).sum())
    once, twice, (after,) = grows.call_twice(X)  # the same objects twice, sent back as data
    assert float(once) == float((X + 1).sum()) and float(twice) == float((X + 2).sum())
    assert torch.equal(after[0], X + 1)
    assert torch.equal(X, torch.arange(2048, dtype=torch.float64).reshape(64, 32))
    X.mul_(2)  # changed by the grader: sent again, not taken from what the process kept
    assert float(grows(X)) == float((X + 1).sum())


def test_a_descent_in_the_notebook_gives_what_the_grader_would_compute(notebook_env):
    grad = notebook_env.get("linear_regression_loss_grad")
    X, y, _ = lab1.synthetic_data(200, seed=41)
    start = torch.zeros(2, 1, dtype=torch.float64)
    remote = core.train(grad, "linear_regression_loss_grad", start, (X, y), alpha=0.005, steps=400,
                        reference=lab1._autograd_gradient, what="gradient descent", how_to_speed_up="")
    local = descent.descend(lambda t, A, b: A.T @ (A @ t - b), start, (X, y), alpha=0.005,
                            steps=400, seconds=60).theta
    assert torch.equal(remote, local)  # the same operations in the same order: bit for bit


def test_a_descent_too_slow_for_its_budget_stops_once_it_has_spent_it_and_says_why(notebook_env):
    X, y, _ = lab1.synthetic_data(200, seed=41)
    with pytest.raises(core.TooSlow) as caught:
        core.train(notebook_env.get("slow_grad"), "slow_grad", torch.zeros(2, 1, dtype=torch.float64),
                   (X, y), alpha=0.005, steps=400, reference=lab1._autograd_gradient,
                   what="gradient descent on 200 rows", how_to_speed_up="Vectorise it.")
    message = str(caught.value)
    assert "`slow_grad` is too slow for the grader: 400 steps of gradient descent on 200 rows" in message
    assert message.endswith("Vectorise it.")
    # 400 steps of 0.05 s of CPU time would take 20 s: the verdict rests on the budget of 2 s
    # actually spent (about 40 steps), never on a projection from the first few.
    used, steps_run = re.search(r"it had used ([\d.]+) s after (\d+) steps", message).groups()
    assert float(used) >= core.MIN_BUDGET_SECONDS
    assert core.MIN_BUDGET_SECONDS / 0.05 - 1 <= int(steps_run) < 400


def test_a_step_that_is_no_tensor_fails_as_a_call_would(notebook_env):
    X, y, _ = lab1.synthetic_data(20, seed=41)
    failure = str(pytest.raises(core.CheckFailed, core.train, notebook_env.get("not_a_step"),
                                "not_a_step", torch.zeros(2, 1, dtype=torch.float64), (X, y),
                                alpha=0.005, steps=10, reference=lab1._autograd_gradient,
                                what="gradient descent", how_to_speed_up="").value)
    assert "`not_a_step` returned an object of type `str`" in failure and "expected a torch.Tensor" in failure


def test_a_sandbox_that_fails_before_any_student_code_is_started_again(tmp_path):
    """A start that fails for the grader's own reasons (here the first process is killed before
    it reports that it started, as when memory runs short or the fork server dies) is retried,
    and the notebook is graded as if nothing had happened: never charged to the student."""
    from labkit.sandbox.session import ForkServerClient, NotebookSession
    from labkit.grading.standins import RemoteEnv
    from labkit.sandbox.confine import Limits

    class FailsOnce(ForkServerClient):
        failed = 0

        def spawn(self, *args, **kwargs):
            pid = super().spawn(*args, **kwargs)
            if not self.failed:
                self.failed += 1
                os.kill(pid, signal.SIGKILL)
            return pid

    notebook = tmp_path / f"{STEM}.ipynb"
    shutil.copy(paths.solution_notebook(STEM), notebook)
    server = FailsOnce()
    session = NotebookSession(server, notebook, notebook.name, Limits(), [])
    try:
        session.start()
        theta = RemoteEnv(session).get("theta")
    finally:
        session.close()
        server.close()
    assert server.failed == 1
    assert isinstance(theta, torch.Tensor) and theta.shape == (3, 1)
    assert not session.report.fatal and not session.report.errors


def test_a_result_attached_to_autograd_is_seen_as_attached_and_arguments_arrive_plain(
        notebook_env):
    """A result's ``requires_grad`` crosses the boundary with it, so the plain-tensor check judges
    a notebook's function as it judges one in the grader's process; through ``core.call`` an
    argument reaches student code detached, as its copies do, even when the grader's tensor
    requires grad (called directly, the tensor arrives as a leaf that requires grad, as a local
    call would give it: see test_notebook_autograd.py)."""
    attached = notebook_env.get("attached_grad")
    args = lab1.linear_regression_loss_grad.cases()[0]
    result = attached(*args)
    assert result.requires_grad
    with pytest.raises(core.CheckFailed, match="still attached to autograd"):
        lab1.linear_regression_loss_grad.check_plain(attached)
    lab1.linear_regression_loss_grad.check_plain(notebook_env.get("linear_regression_loss_grad"))
    seen = core.call(notebook_env.get("argument_requires_grad"), "argument_requires_grad",
                     torch.ones(2, 1, requires_grad=True))
    assert float(seen) == 0.0
