"""What the hidden checks share: calls that cannot spoil the checks' own tensors, the inputs-
unmodified verdict, keyed hidden inputs, and messages a student can act on."""

from __future__ import annotations

import time

import pytest
import torch

from labkit.checks import core, graded
from labkit.checks import linear_regression as lab1
from labkit.checks import logistic_regression as lab2
from labkit.checks import softmax_regression as lab3
from labkit.outputs import markdown


def _failure(check, *args, **kwargs) -> str:
    with pytest.raises(core.CheckFailed) as caught:
        check(*args, **kwargs)
    return str(caught.value)


def _args():
    gen = torch.Generator().manual_seed(0)
    return (torch.randn(3, 1, generator=gen, dtype=torch.float64),
            torch.randn(8, 3, generator=gen, dtype=torch.float64),
            torch.randn(8, 1, generator=gen, dtype=torch.float64))


def test_a_gradient_that_runs_backward_on_its_argument_is_modifying_it():
    def grad(theta, X, y):
        theta.requires_grad_(True)
        (0.5 * ((X @ theta - y) ** 2).sum()).backward()
        return theta.grad

    message = _failure(core.expect_unmodified, grad, "g", ("theta", "X", "y"), _args())
    assert "autograd state of its argument `theta`" in message


def test_a_function_whose_second_call_differs_keeps_state_and_fails():
    calls = []

    def grad(theta, X, y):
        calls.append(1)
        return X.T @ (X @ theta - y) * len(calls)

    assert "called twice" in _failure(core.expect_unmodified, grad, "g", ("theta", "X", "y"), _args())


def test_a_correct_function_passes_and_its_result_is_returned():
    args = _args()
    result = core.expect_unmodified(lambda t, X, y: X.T @ (X @ t - y), "g", ("theta", "X", "y"), args)
    torch.testing.assert_close(result, args[1].T @ (args[1] @ args[0] - args[2]))


class _SendsBack:
    """A stand-in for a function of the notebook: called twice in its own process, it sends its
    arguments back as the first call left them (here: ``y`` with its first entry changed)."""

    def __init__(self, changes_y: bool):
        self.changes_y = changes_y

    def __call__(self, theta, X, y):
        return X.T @ (X @ theta - y)

    def call_twice(self, theta, X, y):
        theirs = [a.clone() for a in (theta, X, y)]
        if self.changes_y:
            theirs[2][0] += 1
        result = self(*theirs)
        return result, result, core.snapshot(theirs)


def test_a_notebook_function_is_judged_by_the_arguments_it_sends_back():
    names = ("theta", "X", "y")
    assert "argument `y`" in _failure(core.expect_unmodified, _SendsBack(True), "g", names, _args())
    core.expect_unmodified(_SendsBack(False), "g", names, _args())


def test_checks_pass_copies_so_in_place_writes_cannot_fake_a_result():
    # Zero gradient, but the least-squares solution written into the caller's theta.
    def cheating_linear(theta, X, y):
        theta.copy_(torch.linalg.lstsq(X, y).solution)
        return torch.zeros_like(theta)

    def zeroing_logistic(theta, X, y):  # zeroes X, so a check reading X afterwards agrees
        X.zero_()
        return torch.zeros_like(theta)

    def fitting_softmax_0(Theta, X, y):  # writes a fitted Theta, returns no gradient
        fit = lab3.reference_grad_0(Theta, X, y)
        Theta.sub_(1e-3 * fit)
        return torch.zeros_like(Theta)

    assert "gradient descent" in _failure(lab1.check_gradient_descent, cheating_linear)
    assert "Gradient check failed" in _failure(lab2.check_gradient_numerically, zeroing_logistic)
    assert "Training on the digits" in _failure(lab3.check_grad_0_trains, fitting_softmax_0)


def test_student_errors_are_cut_to_their_type_and_first_line():
    def noisy(X):
        raise ValueError("first line " + "x" * 500 + "\nsecond line with hidden values")

    message = _failure(core.call, noisy, "f", torch.zeros(2, 2))
    first = message.splitlines()[0]
    assert "ValueError: first line" in first and "second line" not in message
    assert len(first) <= core.MAX_ERROR_CHARS + len("`f` raised ")


def test_hidden_inputs_follow_the_key_and_repeat_for_the_same_key():
    plain = lab1._pinv_cases()
    assert torch.equal(plain[0][0], graded.random_matrix(torch.Generator().manual_seed(21), 6, 3))
    with core.keyed(b"one notebook"):
        first, again = lab1._pinv_cases(), lab1._pinv_cases()
    with core.keyed(b"another notebook"):
        other = lab1._pinv_cases()
    assert all(torch.equal(a[0], b[0]) for a, b in zip(first, again))
    assert not torch.equal(first[0][0], other[0][0]) and not torch.equal(first[0][0], plain[0][0])
    assert torch.equal(lab1._pinv_cases()[0][0], plain[0][0])  # the key is restored


@pytest.mark.parametrize("fn", [
    lambda X: X + torch.ones(4, 3),
    lambda X: torch.zeros(3, 4),
    lambda X: torch.from_numpy(X.numpy()),
], ids=["mixed", "new_cpu_tensor", "numpy"])
def test_device_messages_say_gpu_and_never_meta(fn):
    message = _failure(core.check_meta_propagation, fn, "f", (torch.randn(4, 3),))
    assert "GPU" in message and "meta" not in message.lower()


def test_messages_without_inputs_name_none():
    message = _failure(core.expect_close, torch.ones(2), torch.zeros(2), "theta", rtol=0, atol=0)
    assert "for inputs" not in message


def test_a_missing_function_is_named():
    assert "no function named `pinv_svd` in your notebook" in _failure(lab1.pinv_svd.check_values, None)
    assert "no function named `as_column`" in _failure(core.MissingName("as_column"), torch.ones(2))


def test_a_missing_sigmoid_is_told_so_and_not_to_check_the_sign():
    message = _failure(lab2.check_gradient_numerically, lambda t, X, y: X.T @ (X @ t - y))
    assert "leaves out the sigmoid" in message and "sign" not in message


def test_labels_that_miss_classes_get_the_hint_that_k_comes_from_theta():
    def grad(Theta, X, y):
        P = torch.softmax(X @ Theta, dim=1)
        return X.T @ (P - torch.nn.functional.one_hot(y.flatten()).to(P.dtype))

    assert "take the number of classes K from `Theta`" in _failure(
        lab3.softmax_regression_loss_grad.check_values, grad)


def test_a_float32_result_costs_the_dtype_test_only():
    def as_column(y):
        return y.reshape(-1, 1).float()

    lab1.as_column.check_values(as_column)
    lab1.as_column.check_inputs_unmodified(as_column)
    lab1.as_column.check_devices(as_column)
    assert "dtype" in _failure(lab1.as_column.check_dtypes, as_column)


def test_feedback_renders_markdown_and_shows_html_as_text():
    html = markdown.render_message("Use `X.new_ones` and *sum*.\n<script>alert(1)</script>")
    assert "<code>X.new_ones</code>" in html and "<em>sum</em>" in html
    assert "<script>" not in html and "&lt;script&gt;" in html


def _full_grad(Theta, X, y):
    P = torch.softmax(X @ Theta, dim=1)
    return X.T @ (P - torch.nn.functional.one_hot(y.flatten(), Theta.shape[1]).to(P.dtype))


def _on_own(grad):
    def reduced(Theta, X, y):
        return grad(torch.cat((Theta, Theta.new_zeros(Theta.shape[0], 1)), dim=1), X, y)[:, :-1]
    return reduced


@pytest.mark.parametrize("check", ["values", "dtypes", "unmodified", "devices",
                                   "central_differences", "trains", "large_logits"])
def test_a_reduced_gradient_built_on_a_wrong_full_gradient_is_not_charged_again(check):
    def sign_error(Theta, X, y):
        return -_full_grad(Theta, X, y)

    lab3.check_grad_0(check, _on_own(sign_error), sign_error)
    if check in ("values", "central_differences", "trains", "large_logits"):
        with pytest.raises(core.CheckFailed):  # judged alone, the same function fails
            lab3.check_grad_0(check, _on_own(sign_error), None)


def test_a_reduced_gradient_with_its_own_mistake_or_no_answer_still_fails():
    def zero_column_first(Theta, X, y):
        return _full_grad(torch.cat((Theta.new_zeros(Theta.shape[0], 1), Theta), dim=1), X, y)[:, 1:]

    _failure(lab3.check_grad_0, "values", zero_column_first, _full_grad)
    _failure(lab3.check_grad_0, "values", lambda *a: None, lambda *a: None)
    _failure(lab3.check_grad_0, "values", None, _full_grad)


def _sleepy(gradient, seconds: float):
    """``gradient``, made to take ``seconds`` of CPU time a call (budgets count CPU time)."""
    def slow(theta, X, y):
        started = time.process_time()
        while time.process_time() - started < seconds:
            pass
        return gradient(theta, X, y)
    return slow


def test_a_logistic_gradient_too_slow_to_train_is_judged_on_a_smaller_case():
    """1.2 does not ask for vectorised code: a correct gradient too slow for the training budget
    passes on values, a wrong one still fails."""
    right = _sleepy(lambda t, X, y: X.T @ (torch.sigmoid(X @ t) - y), 0.3)  # 20 steps: 6 s > 2 s
    lab2.check_training(right)
    wrong = _sleepy(lambda t, X, y: X.T @ (torch.sigmoid(X @ t) - y) / X.shape[0], 0.3)
    assert "wrong gradient entries" in _failure(lab2.check_training, wrong)


def test_a_linear_gradient_too_slow_to_train_is_judged_on_a_smaller_case():
    """A loop over 1.1's rows is a correct gradient whose training time sits too near the budget
    for a verdict independent of the machine: a gradient too slow for the budget passes on its
    values on a few rows, and a wrong one still fails."""
    right = _sleepy(lambda t, X, y: X.T @ (X @ t - y), 0.05)  # 400 steps: 20 s > 2 s
    lab1.check_gradient_descent(right)
    wrong = _sleepy(lambda t, X, y: X.T @ (X @ t - y) / X.shape[0], 0.05)
    assert "wrong gradient entries" in _failure(lab1.check_gradient_descent, wrong)


def test_slow_first_steps_do_not_decide_a_training():
    """A too-slow verdict rests on CPU time spent, never on a projection from the first steps: a
    gradient whose first calls are slow (caches warming up, lazy set-up) and which then finishes
    well within the budget keeps the point."""
    calls = []

    def warming_up(T, X, y):
        calls.append(None)
        if len(calls) <= 5:  # 0.5 s in all, then about 0.1 ms a step: under 1 s for 1000 steps
            started = time.process_time()
            while time.process_time() - started < 0.1:
                pass
        return lab3.reference_grad(T, X, y)

    lab3.check_grad_trains(warming_up)
    assert len(calls) == lab3.DIGITS_ITERATIONS  # every step ran


def test_a_softmax_gradient_too_slow_to_train_fails_and_says_how_to_vectorise():
    """1.3 asks for matrix operations: a correct but slow gradient loses the trains check with a
    message that says why and what to do."""
    slow = _sleepy(lambda T, X, y: lab3.reference_grad(T, X, y), 0.05)  # 1000 steps: 50 s
    message = _failure(lab3.check_grad_trains, slow)
    assert "is too slow for the grader" in message and "matrix operations" in message


def test_what_was_found_instead_of_a_tensor_is_said_in_a_students_words():
    import numpy

    class StandIn:  # the grader's stand-in for an object of the notebook's process
        @property
        def __notebook_type__(self) -> str:
            return "ndarray"

    assert core.kind_of(numpy.zeros(3)) == "an object of type `ndarray`"
    assert core.kind_of(StandIn()) == "an object of type `ndarray`"
    assert core.kind_of(...) == "`...`, the placeholder (write the answer in its place)"
    assert core.kind_of(None) == "None" and core.kind_of(3.0) == "an object of type `float`"
    with pytest.raises(core.CheckFailed, match=r"`theta` is `\.\.\.`, the placeholder"):
        core.expect_tensor(..., "theta", shape=(3, 1), variable=True)
    with pytest.raises(core.CheckFailed, match=r"`f` returned None \(did you forget `return`\?\)"):
        core.expect_tensor(None, "f", shape=(3, 1))


def test_every_student_error_text_is_cut_by_one_rule():
    from labkit.sandbox import runner

    long = ValueError("v" * 500 + "\nsecond line")
    cut = core.short_error(long)
    assert len(cut) == core.MAX_ERROR_CHARS and cut.endswith("...")
    assert runner._error_text(long) == cut  # noqa: SLF001 (the runner's cut, inside the sandbox)
    assert core.clip_error("short") == "short"
