"""``make audit``: each mutation operator makes the mistake it names, mutants are judged equivalent
only when no input tells them apart, and a small slice of the audit runs through the real grading
path (released autograders, sandbox, workers) with every mutant killed or judged equivalent."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import textwrap

import pytest

from labkit import paths
from labkit.audit import equivalence, mutants, operators, run_audit
from labkit.cli import main

from .conftest import answer_bank, run_released_tests


def _mutants(operator: str, source: str, lines: set[int] | None = None) -> list[str]:
    """The bodies (unparsed, one line each) of ``operator``'s mutants of a small function."""
    source = textwrap.dedent(source).strip()
    func = ast.parse(source).body[0]
    every = frozenset(lines or range(1, len(source.splitlines()) + 1))
    made = operators.BY_NAME[operator].mutate(func, every)
    return [" / ".join(ast.unparse(statement) for statement in mutant.body) for mutant in made]


@pytest.mark.parametrize("operator, source, expected", [
    ("sum_mean", "def f(x):\n    return x.sum(dim=1)", "return x.mean(dim=1)"),
    ("sum_mean", "def f(x):\n    return torch.mean(x)", "return torch.sum(x)"),
    ("dim", "def f(x):\n    return x.sum(dim=1)", "return x.sum(dim=0)"),
    ("dim", "def f(x, y):\n    return x.gather(1, y)", "return x.gather(0, y)"),
    ("dim", "def f(x):\n    return torch.softmax(x, -1)", "return torch.softmax(x, 0)"),
    ("dim", "def f(x):\n    return x - x.max(dim=1, keepdim=True).values",
     "return x - x.max(dim=1).values"),
    ("transpose", "def f(X, r):\n    return X.T @ r", "return X @ r"),
    ("transpose", "def f(X, r):\n    return X.T @ r", "return X.T @ r.T"),
    ("transpose", "def f(U):\n    return U.mT", "return U"),
    ("transpose", "def f(X, r):\n    return X @ r", "return (X @ r).T"),
    ("sign", "def f(a, b):\n    return a - b", "return b - a"),
    ("sign", "def f(a, b):\n    return a + b", "return a - b"),
    ("sign", "def f(a):\n    return -a.sum()", "return a.sum()"),
    ("sign", "def f(a):\n    return a.sum()", "return -a.sum()"),
    ("max_shift", "def f(Z):\n    return torch.exp(Z - Z.max(dim=1, keepdim=True).values)",
     "return torch.exp(Z)"),
    ("float32", "def f(x):\n    return x * 2", "return (x * 2).float()"),
    ("float32", "def f(x):\n    z = x * 2\n    return z", "z = (x * 2).float() / return z"),
    ("float32", "def f(x):\n    return x * 2", "x = x.float() / return x * 2"),
    ("in_place", "def f(X, y):\n    return X - y", "return X.sub_(y)"),
    ("in_place", "def f(X, y):\n    return X @ X.T - y", "return y.sub_(X @ X.T).neg_()"),
    ("in_place", "def f(y):\n    return y.unsqueeze(1)", "return y.unsqueeze_(1)"),
    ("in_place", "def f(s):\n    return torch.sigmoid(s)", "return s.sigmoid_()"),
    ("on_cpu", "def f(X):\n    return X.new_ones(X.shape[0], 1)",
     "return torch.ones(X.shape[0], 1, dtype=X.dtype)"),
    ("on_cpu", "def f(P):\n    return torch.zeros_like(P)",
     "return torch.zeros(P.shape, dtype=P.dtype)"),
    ("on_cpu", "def f(X, n):\n    return torch.randperm(n).to(X.device)",
     "return torch.randperm(n)"),
    ("slice", "def f(o, n):\n    return o[:n]", "return o[:n + 1]"),
    ("slice", "def f(o, n):\n    return o[n:]", "return o[n - 1:]"),
    ("slice", "def f(G):\n    return G[:, :-1]", "return G[:, :-2]"),
    ("slice", "def f(G):\n    return G[:, :-1]", "return G[:, :]"),
    ("constant", "def f(S):\n    return 1.0 / S", "return 10.0 / S"),
    ("constant", "def f(S):\n    return 1.0 / S", "return 0.1 / S"),
    ("constant", "def f(X):\n    return X.shape[0]", "return X.shape[1]"),
    ("one_hot", "def f(P, y):\n    return P - torch.zeros_like(P).scatter_(1, y, 1.0)",
     "return P - y"),
    ("one_hot", "def f(P, y):\n    return P - F.one_hot(y, 3)", "return P - y"),
])
def test_each_operator_makes_the_mistake_it_names(operator, source, expected):
    made = _mutants(operator, source)
    assert expected in made, f"{operator} made {made}"


def test_no_in_place_mutant_where_no_argument_would_be_written():
    assert _mutants("in_place", "def f(p, q):\n    return q @ p - 1") == []


def test_an_operator_changes_only_the_solution_lines():
    source = "def f(X, y):\n    Z = X.sum(dim=1)\n    return Z.sum(dim=1) - y"
    made = _mutants("sum_mean", source, lines={3})
    assert made == ["Z = X.sum(dim=1) / return Z.mean(dim=1) - y"]


def test_dims_and_slice_bounds_are_not_also_changed_as_constants():
    assert _mutants("constant", "def f(x, G):\n    return x.sum(dim=1) + G[:, :-1]") == []


def test_each_mutant_differs_from_the_reference_once():
    func = ast.parse("def f(X, y):\n    return X.T @ (X @ y - y)").body[0]
    made = list(operators.mutants(func, frozenset({2})))
    sources = [source for _, source in made]
    assert len(sources) == len(set(sources)) and ast.unparse(func) not in sources
    assert {name for name, _ in made} >= {"transpose", "sign", "float32", "in_place"}


# --- the answers of the released assignments -----------------------------------------------------

def test_answers_are_found_for_every_autograded_question(assignments):
    for assignment in assignments:
        found = {answer.question for answer in mutants.answers(assignment.stem)}
        assert found == {question.name for question in assignment.graded}


def test_a_mutant_submission_is_the_solution_with_that_answer_replaced():
    answer = next(a for a in mutants.answers("1_1_linear_regression") if a.question == "pinv_svd")
    mutant = next(m for m in mutants.mutants_of(answer) if m.operator == "transpose")
    solution = json.loads(paths.solution_notebook(answer.stem).read_text("utf-8"))
    changed = mutants.submission(mutant, answer)
    differing = [(a["source"], b["source"]) for a, b in zip(solution["cells"], changed["cells"])
                 if a["source"] != b["source"]]
    assert len(differing) == 1
    assert "def pinv_svd" in "".join(differing[0][1]) and mutant.code in differing[0][1]
    assert mutant.diff().startswith("--- pinv_svd (reference)")


# --- equivalence, judged in a child process ------------------------------------------------------

def _judge(question: str, old: str, new: str) -> equivalence.Verdict:
    answer = next(a for a in mutants.answers("1_1_linear_regression") if a.question == question)
    source = ast.unparse(answer.unit()).replace(old, new)
    assert source != ast.unparse(answer.unit())
    return equivalence.judge(answer.stem, question, answer.function, source)


def test_a_mutant_with_the_references_outputs_is_judged_equivalent():
    # diag(S_inv) is symmetric: transposing it changes nothing any input could show.
    verdict = _judge("pinv_svd", "torch.diag(S_inv)", "torch.diag(S_inv).T")
    assert verdict.equivalent is True, verdict.reason


def test_a_mutant_that_writes_into_its_argument_is_not_equivalent():
    verdict = _judge("linear_regression_loss_grad", "X @ theta - y", "y.sub_(X @ theta).neg_()")
    assert verdict.equivalent is False and "arguments changed" in verdict.reason


def test_a_mutant_that_makes_its_tensor_on_the_cpu_is_not_equivalent():
    verdict = _judge("add_bias_column", "X.new_ones(X.shape[0], 1)",
                     "torch.ones(X.shape[0], 1, dtype=X.dtype)")
    assert verdict.equivalent is False and "meta" in verdict.reason


def test_a_mutant_that_loops_for_ever_is_stopped():
    answer = next(a for a in mutants.answers("1_1_linear_regression") if a.question == "as_column")
    verdict = equivalence.judge(answer.stem, "as_column", answer.function,
                                ast.unparse(answer.unit()).replace(
                                    "return y.reshape(-1, 1)",
                                    "while True:\n        pass\n    return y.reshape(-1, 1)"),
                                timeout=10)
    assert verdict.equivalent is False and "ran over" in verdict.reason


# --- the hidden cases added for the audit's survivors ------------------------------------------

#: The seeds as written, then four grading keys.
KEYS = [None, *(f"ci key {i}".encode() for i in range(1, 5))]


@pytest.mark.parametrize("key", KEYS, ids=["seeds-as-written", *(f"key{i}" for i in range(1, 5))])
@pytest.mark.parametrize("question, source", [
    pytest.param(question, source, id=f"{question}-{variant}")
    for question, variants in answer_bank("1_1_linear_regression")["AUDIT_KILLED"].items()
    for variant, source in variants.items()])
def test_a_survivor_of_the_audit_now_loses_a_point(question, source, key, tmp_path):
    tests = run_released_tests("1_1_linear_regression", question, source, tmp_path, key)
    assert tests.score == tests.possible - 1, f"{tests.score}/{tests.possible}:\n{tests.messages}"


# --- a slice of the audit, through the real grading path -----------------------------------------

#: Mutants of the slice the hidden tests do not catch yet, each with its reason; they must still
#: be in the slice (so that this list cannot rot), and may be killed.
KNOWN_SURVIVORS: dict[str, str] = {}


@pytest.mark.slow
def test_a_slice_of_the_audit_kills_or_excuses_every_mutant(tmp_path):
    audit = run_audit(tmp_path, per_question=2, workers=2)
    assert audit.controls == {}, audit.controls
    # make audit audits one lab, the course's first by default (ASSIGNMENTS= for others).
    questions = {(a.stem, a.question) for stem in paths.assignment_stems(paths.default_lab())
                 for a in mutants.answers(stem)}
    assert {(row.stem, row.question) for row in audit.rows} == questions
    assert all(row.generated == 2 for row in audit.rows)
    assert set(KNOWN_SURVIVORS) <= {o.mutant.id for o in audit.outcomes}
    survivors = {o.mutant.id: o.mutant.diff() for o in audit.survivors
                 if o.mutant.id not in KNOWN_SURVIVORS}
    assert not survivors, "\n".join(survivors.values())
    table = (tmp_path / "audit.md").read_text("utf-8")
    assert "| kill rate |" in table and "## Survivors" in table
    data = json.loads((tmp_path / "audit.json").read_text("utf-8"))
    assert len(data["mutants"]) == 2 * len(questions)
    assert {m["status"] for m in data["mutants"]} <= {"killed", "equivalent", "survived"}


# --- the command ---------------------------------------------------------------------------------

def test_make_audit_writes_to_audit_unless_told_and_passes_the_slice():
    def dry_run(*assignments: str) -> str:
        # Under `make test` this make is a sub-make: without MAKELEVEL and MAKEFLAGS it prints
        # only its own commands (no "Entering directory" lines).
        env = {k: v for k, v in os.environ.items() if k not in ("MAKELEVEL", "MAKEFLAGS", "MFLAGS")}
        done = subprocess.run(["make", "--no-print-directory", "-n", "audit", *assignments],
                              cwd=paths.ROOT, capture_output=True, text=True, check=True, env=env)
        return next(line for line in reversed(done.stdout.splitlines())
                    if "-m labkit audit" in line)

    assert '-m labkit audit --out "audit"' in dry_run()
    line = dry_run("OUT=elsewhere", "PER_QUESTION=2", "WORKERS=1",
                   "ASSIGNMENTS=1_2_logistic_regression")
    assert '--out "elsewhere"' in line and "--workers 1" in line and "--per-question 2" in line
    assert line.endswith("1_2_logistic_regression")


def test_an_unknown_operator_is_refused_by_name(capsys):
    assert main(["audit", "--operators", "sum_mean", "swap_everything"]) == 2
    assert "swap_everything" in capsys.readouterr().err


def test_an_out_holding_a_graded_class_is_refused(tmp_path):
    (tmp_path / "grades.csv").write_text("student,total,notes\nada,10,\n")
    with pytest.raises(SystemExit, match="holds a graded class"):
        run_audit(tmp_path, per_question=1)
    assert (tmp_path / "grades.csv").read_text() == "student,total,notes\nada,10,\n"
    assert not (tmp_path / "mutants").exists()
