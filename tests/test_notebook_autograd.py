"""Autograd across the boundary: a real confined notebook's function called with tensors that
require grad and a ``torch.Generator``, and the grader's own autograd reaching through its
results (``labkit.grading.standins.NotebookGraph``), as it would through a local function's.

What crosses is data: a generator's state, a tensor's values with its ``requires_grad`` and the
name of the operation that computed it, and, asked for when the grader differentiates, the
gradients the notebook computed for its copies of the grader's leaves. Those are checked here
(count and shapes) before they reach a ``.grad``.
"""

from __future__ import annotations

import math

import nbformat
import pytest
import torch

from labkit.sandbox import protocol

CELL = '''
import sys
import torch

def affine_sample(mu, sigma, generator):
    zeta = torch.randn(mu.shape, generator=generator, dtype=mu.dtype, device=mu.device)
    return mu + sigma * zeta

def product_and_sine(a, b):
    return a * b + torch.sin(a)

def pair(a):
    return a * 2, (a ** 3).sum()

def fresh_leaf(x):
    return x.detach().clone().requires_grad_(True)

def rebinds(x0):
    x = x0.detach().clone().requires_grad_(True)
    for _ in range(3):
        (g,) = torch.autograd.grad((x ** 2).sum(), x)
        x = x - 0.1 * g
    return x

def arrives_as(x):
    return torch.tensor([float(x.requires_grad), float(x.is_leaf)], dtype=torch.float64)

held = torch.ones(3, requires_grad=True) * 2

def forge_gradients():
    objects = sys.modules["labkit.sandbox.objects"]
    objects.gradients = lambda graph, grad_output: [torch.ones(7)] * len(graph.inputs)
'''


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    from labkit.grading.standins import RemoteEnv
    from labkit.sandbox.confine import Limits
    from labkit.sandbox.session import ForkServerClient, NotebookSession

    notebook = tmp_path_factory.mktemp("autograd") / "autograd.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(CELL)]), notebook)
    server = ForkServerClient()
    session = NotebookSession(server, notebook, notebook.name, Limits(call_seconds=10), [])
    session.start()
    yield RemoteEnv(session)
    session.close()
    server.close()


def test_a_generator_crosses_as_its_state_and_the_graders_own_is_not_advanced(env):
    sample = env["affine_sample"]
    mu, sigma = torch.zeros(5, dtype=torch.float64), torch.ones(5, dtype=torch.float64)
    generator = torch.Generator().manual_seed(7)
    remote = sample(mu, sigma, generator)
    # Drawn as the same function would draw locally from a generator in the same state...
    local = torch.randn(5, generator=torch.Generator().manual_seed(7), dtype=torch.float64)
    assert torch.equal(remote, local)
    # ...and the grader's generator is where it was: the next draw is the same again.
    assert torch.equal(sample(mu, sigma, generator), local)
    assert not torch.equal(sample(mu, sigma, torch.Generator().manual_seed(8)), local)


def test_gradients_through_a_notebooks_result_reach_the_graders_leaves(env):
    """``backward()`` and ``torch.autograd.grad`` through the notebook's result give the leaves
    of the grader the gradients a local call would give them, and ``grad_fn`` names the
    notebook's operation."""
    a = torch.tensor([0.3, -1.2, 2.0], dtype=torch.float64, requires_grad=True)
    b = torch.tensor([1.5, 0.5, -0.7], dtype=torch.float64, requires_grad=True)
    z = env["product_and_sine"](a, b)
    assert z.requires_grad and not z.is_leaf and z.grad_fn.name() == "AddBackward0"
    weights = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
    grad_a, grad_b = torch.autograd.grad(z, (a, b), weights)
    assert torch.allclose(grad_a, weights * (b.detach() + torch.cos(a.detach())))
    assert torch.allclose(grad_b, weights * a.detach())
    z.sum().backward()  # the graph is kept in the notebook: a second pass works, as locally
    assert torch.allclose(a.grad, b.detach() + torch.cos(a.detach()))
    assert torch.allclose(b.grad, a.detach())
    # A tuple of results, each with its own history; an unused leaf gets no gradient.
    doubled, cubes = env["pair"](a)
    (grad,) = torch.autograd.grad(doubled.sum() + cubes, (a,))
    assert torch.allclose(grad, 2 + 3 * a.detach() ** 2)
    unused = torch.ones(2, requires_grad=True)
    assert torch.autograd.grad(env["product_and_sine"](a, torch.ones(3, dtype=torch.float64)),
                               (a, unused), torch.ones(3, dtype=torch.float64),
                               allow_unused=True)[1] is None


def test_a_leaf_stays_a_leaf_and_a_history_stays_a_history(env):
    x0 = torch.tensor([2.0, 1.0], dtype=torch.float64)
    leaf = env["fresh_leaf"](x0)
    assert leaf.requires_grad and leaf.is_leaf and leaf.grad_fn is None
    rebound = env["rebinds"](x0)  # no argument required grad: the history is the notebook's own
    assert rebound.requires_grad and not rebound.is_leaf
    assert rebound.grad_fn.name() == "SubBackward0"
    assert torch.allclose(rebound.detach(), 0.8 ** 3 * x0)
    rebound.sum().backward()  # nothing of the grader's to reach: no error, no gradient
    held = env["held"]  # a global computed under autograd reads as such
    assert held.requires_grad and held.grad_fn.name() == "MulBackward0"


def test_a_direct_call_gets_a_leaf_and_core_call_a_plain_copy(env):
    from labkit.checks import core

    x = torch.ones(2, requires_grad=True)
    assert env["arrives_as"](x).tolist() == [1.0, 1.0]
    assert core.call(env["arrives_as"], "arrives_as", x).tolist() == [0.0, 1.0]
    with torch.no_grad():  # a result with a history keeps it whatever the grader's grad mode
        assert env["rebinds"](torch.ones(2, dtype=torch.float64)).grad_fn is not None


def test_gradients_the_notebook_forges_never_reach_a_grad(env):
    """(Last: it rewrites the notebook's runner, and the process is stopped after it.)"""
    from labkit.grading.standins import NotebookStopped

    a = torch.ones(3, dtype=torch.float64, requires_grad=True)
    z = env["product_and_sine"](a, torch.ones(3, dtype=torch.float64))
    env["forge_gradients"]()
    try:
        with pytest.raises(NotebookStopped, match="answered wrongly"):
            z.sum().backward()
        assert a.grad is None
    finally:
        env._session.kill()


def test_a_generator_and_a_graph_entry_are_checked_before_use():
    state = torch.Generator().manual_seed(3).get_state()
    rebuilt = protocol.decode({"__generator__": state, "device": "cpu"})
    assert torch.equal(torch.rand(4, generator=rebuilt),
                       torch.rand(4, generator=torch.Generator().manual_seed(3)))
    for bad in ({"__generator__": state[:10], "device": "cpu"},
                {"__generator__": state.float(), "device": "cpu"},
                {"__generator__": state, "device": "tpu"}):
        with pytest.raises(protocol.BadMessage):
            protocol.decode(bad)
    entry = protocol.encode(torch.ones(2, requires_grad=True) * math.pi)
    assert entry["grad_fn"] == "MulBackward0" and "graph" not in entry
    for graph in (3, {"__handle__": "3"}, {"__handle__": True}, {"__handle__": -1}):
        entry["graph"] = graph
        with pytest.raises(protocol.BadMessage, match="a malformed graph"):
            protocol.decode(dict(entry), attach=lambda tensor, operation, graph: tensor)
