"""Objects beyond tensors, through handles: a real confined notebook holds its instances, classes
and modules, and checks written for local Python objects run unchanged on the grader's stand-ins
of them (``labkit.grading.standins``), as on the objects themselves in plain Python."""

from __future__ import annotations

import pytest
import torch

from labkit.sandbox import protocol

from . import object_checks as checks

#: Checks that run the same on the notebook's objects and on local ones (the hostile classes'
#: checks would hang, kill or fill this process when run on local objects).
PORTABLE = ("check_vector_arithmetic", "check_model_against_reference", "check_after",
            "check_looper_value")


@pytest.fixture(scope="module")
def notebook(tmp_path_factory):
    import nbformat

    from labkit.grading.standins import RemoteEnv
    from labkit.sandbox.confine import Limits
    from labkit.sandbox.session import ForkServerClient, NotebookSession

    path = tmp_path_factory.mktemp("objects") / "objects.ipynb"
    nbformat.write(checks.notebook(), path)
    server = ForkServerClient()
    session = NotebookSession(server, path, path.name, Limits(call_seconds=10), [])
    session.start()
    yield session, RemoteEnv(session)
    session.close()
    server.close()


@pytest.mark.parametrize("check", PORTABLE)
def test_a_check_written_for_local_objects_passes_on_the_notebooks_as_on_local_ones(notebook,
                                                                                     check):
    _, env = notebook
    parameter = checks.PARAMETERS[check]
    getattr(checks, check)(checks.local_names()[parameter])  # plain Python: the objects themselves
    getattr(checks, check)(env[parameter])


def test_a_wrong_value_read_from_an_object_fails_alike_here_and_in_plain_python(notebook):
    _, env = notebook
    for liar in (checks.local_names()["Liar"], env["Liar"]):
        with pytest.raises(AssertionError, match="its value should be 2"):
            checks.check_liar_value(liar)


def test_a_modules_parameters_read_as_tensors_and_its_forward_runs_on_hidden_inputs(notebook):
    _, env = notebook
    model = env["model"]
    state = model.state_dict()
    assert all(type(value) is torch.Tensor for value in state.values())
    weight = model.linear.weight
    assert isinstance(weight, torch.Tensor) and torch.equal(weight.detach(),
                                                            state["linear.weight"])
    x = torch.randn(8, 4, dtype=torch.float64)
    result = model(x)
    assert torch.allclose(result.detach(), torch.tanh(x @ state["linear.weight"].T
                                                       + state["linear.bias"]))
    # A wrong reference is told apart: the forward is judged, not taken on trust.
    assert not torch.allclose(result.detach(), torch.relu(x @ state["linear.weight"].T))


def test_an_object_is_a_handle_and_results_are_data_or_handles(notebook):
    from labkit.grading.standins import RemoteObject

    _, env = notebook
    vec = env["Vec"](1.0, 2.0)
    assert isinstance(vec, RemoteObject) and repr(vec) == "<notebook object Vec>"
    assert isinstance(vec.norm, RemoteObject)  # a bound method, called next
    assert vec.norm() == pytest.approx(5 ** 0.5)
    assert isinstance(vec + vec, RemoteObject)
    before = vec.cpu_seconds()  # the kernel's count for the notebook, as for its functions
    assert 0 < before <= env["Vec"].cpu_seconds()
    with pytest.raises(AttributeError):
        vec.missing
    with pytest.raises(AttributeError, match="'int' object has no attribute 'x'"):
        vec + 1  # Vec + int fails in the notebook, and its error is rebuilt here


@pytest.mark.parametrize("ask, what", [
    (bool, "truth"), (hash, "hash"), (len, "length"), (iter, "items"),
    (lambda vec: 1 in vec, "items"), (lambda vec: 1 if vec else 0, "truth")])
def test_a_check_never_asks_a_notebook_object_for_its_truth_hash_length_or_items(notebook, ask,
                                                                                 what):
    from labkit.grading.standins import NotebookObjectMisused

    _, env = notebook
    vec = env["Vec"](1.0, 2.0)
    with pytest.raises(NotebookObjectMisused, match=f"for its {what}, which only the notebook"):
        ask(vec)


def test_isinstance_against_a_notebooks_class_is_asked_of_the_notebook(notebook):
    """What a public check asks (``isinstance(z, DualNumber)``); a malformed answer is the
    notebook's wrong answer, and a value of the grader's own is sent as data."""
    _, env = notebook
    Vec, Net = env["Vec"], env["Net"]
    vec = Vec(1.0, 2.0)
    assert isinstance(vec, Vec) and isinstance(vec + vec, Vec) and not isinstance(vec, Net)
    assert isinstance(env["model"], Net) and not isinstance(3.0, Vec)
    assert isinstance(vec, (torch.Tensor, Vec)) and not isinstance(vec, torch.Tensor)
    with pytest.raises(TypeError, match="must be a type"):
        isinstance(vec, vec)


def test_a_handle_dies_with_its_process_and_never_reaches_the_next_ones_table(notebook):
    from labkit.grading.standins import NotebookStopped

    session, env = notebook
    Vec = env["Vec"]
    old = Vec(1.0, 2.0)
    generation = session.generation
    with pytest.raises(NotebookStopped, match="stopped the notebook's process"):
        env["Doomed"](fail=True)  # its __del__ kills the process
    assert not session.running
    with pytest.raises(NotebookStopped, match="the notebook's Vec object is gone"):
        old.x
    # A new process (started by the next request) hands out the same numbers again, to other
    # objects: the old handle is refused before any request, never answered by them.
    fresh = [Vec(float(n), 0.0) for n in range(old._handle + 2)]
    assert session.generation == generation + 1
    assert any(vec._handle == old._handle for vec in fresh)
    for use in (lambda: old.x, lambda: str(old), lambda: -old, lambda: fresh[0] + old,
                lambda: Vec(old, old)):
        with pytest.raises(NotebookStopped, match="is gone"):
            use()
    assert fresh[1].x == 1.0


def test_str_of_an_object_is_cut_and_its_repr_never_crosses(notebook):
    from labkit.grading.standins import STR_CHARS

    session, env = notebook
    generation = session.generation
    huge = env["Huge"]()
    assert str(huge) == "x" * STR_CHARS
    assert repr(huge) == "<notebook object Huge>"
    assert huge.value == 3.0 and session.generation == generation


def test_only_the_allowed_operators_and_plain_names_reach_the_notebook(notebook):
    session, env = notebook
    vec = env["Vec"](1.0, 2.0)
    for request in ({"operator": "getitem"}, {"operator": "__class__"}, {"operator": "call"}):
        reply = session.request({"op": "operator", "handle": vec._handle, "args": [], **request})
        assert reply["ok"] is False and "is not allowed" in reply["message"]
    reply = session.request({"op": "attribute", "handle": vec._handle, "attribute": 3,
                             "args": []})
    assert reply["ok"] is False and reply["type"] == "TypeError"
    reply = session.request({"op": "attribute", "handle": 10 ** 9, "attribute": "x",
                             "args": []})
    assert reply == {"ok": False, "type": "LookupError",
                     "message": f"no object with handle {10 ** 9} in this process"}


def test_a_handle_is_a_number_and_display_text_and_nothing_else():
    made = []
    entry = {"__seq__": [{"__handle__": 4, "type": "T" * 10_000}, {"__complex__": [1.0, -2.0]}],
             "tuple": True}
    first, second = protocol.decode(entry, handle=lambda n, t: made.append((n, t)) or n)
    assert first == 4 and made == [(4, "T" * protocol.TYPE_NAME_CHARS)]
    assert second == complex(1.0, -2.0)
    assert repr(protocol.decode({"__handle__": 1, "type": "Net"})) == "<Net object>"
    for bad in ({"__handle__": True}, {"__handle__": -1}, {"__handle__": "1"},
                {"__handle__": 1, "type": 3}, {"__complex__": [1.0]}, {"__complex__": "1j"}):
        with pytest.raises(protocol.BadMessage):
            protocol.decode(bad, handle=lambda n, t: n)


def test_a_function_and_a_class_fetched_by_name_are_arguments_and_live_on_a_restart(notebook):
    """A name, unlike a handle, outlives its process: a function or class fetched by name keeps
    working after the notebook is run again, as an argument too (its handle asked for anew)."""
    import copy

    session, env = notebook
    Vec = env["Vec"]
    assert Vec(1.0, 2.0).x == 1.0
    session.kill()
    made = env["Vec"](3.0, 4.0)
    assert isinstance(made, type(copy.deepcopy(made))) and copy.copy(made) is made
    assert Vec(2.0, 0.0).norm() == 2.0
    assert str(Vec(Vec, 1.0).x) == "<class '__main__.Vec'>"  # the class itself reached it
