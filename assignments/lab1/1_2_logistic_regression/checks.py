"""Hidden checks of assignment 1.2 (logistic regression and gradient checking).

The reference is independent of what students write: autograd through
``F.binary_cross_entropy_with_logits(..., reduction="sum")``, the summed negative log-likelihood in
a numerically stable form, rather than the closed form X^T (sigmoid(X theta) - y). The digits
data come from scikit-learn's own copy, prepared and split exactly as the notebook does.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from . import core
from .graded import FLOAT64, Args, GradedFunction, random_matrix

NAME = "logistic_regression_loss_grad"

#: The notebook's data and training: digits 0 and 1, pixels divided by 16 (they run 0..16), a
#: ones column; a generator seeded with SPLIT_SEED draws the split (260 training rows, 100 test
#: rows), one seeded with START_SEED the uniform starting theta; ALPHA and EPOCHS as in the
#: notebook's given loop.
DIGITS_PIXEL_MAX = 16.0
DIGITS_TRAIN_ROWS = 260
SPLIT_SEED = 0
START_SEED = 1
ALPHA = 0.001
EPOCHS = 20
#: Bounds for the model that gradient descent with the student's gradient trains. The reference
#: (the closed-form gradient) was measured with the notebook's alpha and epochs over 150 runs
#: (split seeds 0-29 x start seeds 0-4): test accuracy 0.97-1.00 and test BCE (mean) 0.085-0.172;
#: with the notebook's seeds (0, 1) it scores 1.00 and 0.095; over 40 grading keys (split and
#: start drawn under each, assignments/lab1/calibrate_keys.py) 0.97-1.00 and 0.072-0.162. The untrained start scores accuracy
#: 0.39-0.62 and BCE 3.5-6.9, a sign error BCE above 17, a mean for the sum (a step 260 times too
#: small) BCE above 3.4. So 0.90 and 0.30 pass every correct run with margin (BCE under 0.6 of
#: the bound) and fail a model that did not learn. A gradient off by a factor of 2 or 1/2 still
#: trains (BCE 0.06 or 0.14 with the notebook's seeds): the direct checks of the gradient's values,
#: not these bounds, catch it.
MIN_TEST_ACCURACY = 0.90
MAX_TEST_BCE = 0.30
#: Central differences in float64: truncation error about h^2 and rounding about 1e-16 |J| / h,
#: giving relative errors near 1e-9 for a correct gradient; a wrong one is off by O(1).
GRAD_CHECK_H = 1e-5
GRAD_CHECK_MAX_ERROR = 1e-5
GRAD_CHECK_COORDINATES = 20
#: Rows on which a gradient too slow to train within the budget is judged instead.
SLOW_CASE_ROWS = 20


def nll(theta: torch.Tensor, X: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The summed negative log-likelihood (binary cross-entropy), computed stably from logits."""
    return F.binary_cross_entropy_with_logits(X @ theta, y, reduction="sum")


def _autograd_gradient(theta: torch.Tensor, X: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    theta = theta.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        (grad,) = torch.autograd.grad(nll(theta, X.detach(), y.detach()), theta)
    return grad


def _labels(gen: torch.Generator, m: int) -> torch.Tensor:
    """An m x 1 column of 0/1 labels (float64), with both classes present when m > 1."""
    y = (torch.rand(m, 1, generator=gen, dtype=torch.float64) < 0.5).to(torch.float64)
    if m > 1:
        y[0, 0], y[1, 0] = 0.0, 1.0
    return y


def _gradient_cases() -> list[Args]:
    """Random float64 inputs of several shapes, including m < d and single rows.

    theta is scaled by 1/sqrt(d), so the logits X theta are of order one (at most about 5):
    any correct formula, autograd through log(1 - sigmoid) included, stays accurate there even in
    float32, while saturated logits would only test the student's choice of a stable formula.
    """
    gen = core.generator(51)
    cases = []
    for d, m in [(3, 10), (2, 7), (65, 30), (1, 1), (5, 3), (4, 1)]:
        theta = random_matrix(gen, d, 1) / d**0.5
        cases.append((theta, random_matrix(gen, m, d), _labels(gen, m)))
    return cases


logistic_regression_loss_grad = GradedFunction(
    name=NAME,
    arg_names=("theta", "X", "y"),
    cases=_gradient_cases,
    reference=_autograd_gradient,
)


def _large_score_cases() -> list[tuple[torch.dtype, Args]]:
    """Scores X theta far beyond what ``exp`` holds, of both signs, in float64 and float32.

    ``exp`` overflows above about 709 in float64 and 88 in float32: scores of +-(300..1500) and
    +-(100..400) cross those limits, so ``exp(z) / (1 + exp(z))`` gives inf / inf = NaN there,
    while ``torch.sigmoid`` and ``1 / (1 + exp(-z))`` stay exact (an overflow to inf in the
    denominator gives the right limit 0). The labels disagree with the sign of some scores, so
    the gradient is not zero.
    """
    gen = core.generator(56)
    cases = []
    for dtype, low, high in ((torch.float64, 300.0, 1500.0), (torch.float32, 100.0, 400.0)):
        d, m = 4, 20
        X = random_matrix(gen, m, d)
        theta = random_matrix(gen, d, 1)
        scores = X @ theta
        # Rescale each row so that its score has size in [low, high] and keeps its sign.
        size = low + (high - low) * torch.rand(m, 1, generator=gen, dtype=torch.float64)
        X = X * (size / scores.abs())
        cases.append((dtype, (theta, X, _labels(gen, m))))
    return cases


#: Largest score of a large-score case scaled down (``_moderate``): sigmoid and exp are exact
#: there in float32 and float64, so only a formula wrong for every score fails.
MODERATE_SCORE = 5.0
#: Single-item probes of what breaks on large scores, by dtype: (a score where sigmoid rounds to
#: exactly 1 while exp does not overflow, a score where exp overflows). float64: sigmoid(40) is
#: 1 - 4e-18, which rounds to 1, and exp overflows above 709; float32: sigmoid(20) rounds to 1,
#: exp overflows above 88.
PROBE_SCORES = {torch.float64: (40.0, 800.0), torch.float32: (20.0, 100.0)}
#: What each kind of failure on large scores is told.
LOG_OF_PROBABILITY = (
    "Your gradient is right on the same inputs scaled down, and fails where sigmoid(z) rounds to "
    "exactly 0 or 1 (scores of a few tens), long before exp(z) overflows: so it goes through "
    "log(sigmoid(z)) or log(1 - sigmoid(z)), which is -inf there, and autograd's gradient through "
    "it is NaN. Take the gradient of a stable form of the loss "
    "(`F.binary_cross_entropy_with_logits(X @ theta, y, reduction=\"sum\")`, or `F.logsigmoid`), "
    "or use the closed form X^T (sigmoid(X theta) - y)."
)
EXP_RATIO = (
    "Your gradient is right on the same inputs scaled down, and fails where exp(z) overflows "
    "(inf / inf is NaN). Compute the sigmoid with `torch.sigmoid(z)` (or "
    "`1 / (1 + torch.exp(-z))`), not as `exp(z) / (1 + exp(z))`."
)
STAYS_EXACT = (
    "Your gradient is right on the same inputs scaled down, but not on these: the gradient "
    "X^T (sigmoid(X theta) - y) must stay exact for scores of any size (do not clamp the scores "
    "or the probabilities)."
)
NOT_THE_SIZE = (
    f"The same gradient also fails on these inputs scaled down to scores of at most "
    f"{MODERATE_SCORE:g}, so their size is not the (only) problem: see the other failed tests."
)


def _moderate(args: Args) -> Args:
    """A large-score case with theta scaled so that no score exceeds ``MODERATE_SCORE``."""
    theta, X, y = args
    return (theta * (MODERATE_SCORE / float((X @ theta).abs().max())), X, y)


def _finite_at(fn: Any, score: float, dtype: torch.dtype) -> bool:
    """Whether the gradient is finite for two items with scores +score and -score, both
    labelled against their sign (theta = [[1]])."""
    args = (torch.ones(1, 1, dtype=dtype), torch.tensor([[score], [-score]], dtype=dtype),
            torch.tensor([[0.0], [1.0]], dtype=dtype))
    try:
        result = core.call(fn, NAME, *args)
    except core.CheckFailed:
        return False
    return isinstance(result, torch.Tensor) and bool(torch.isfinite(result.detach()).all())


def _large_score_advice(fn: Any, args: Args, dtype: torch.dtype) -> str:
    """Advice that fits what the evidence shows: nothing about stability for a gradient that is
    wrong on moderate scores too; else where it breaks, probed on single items."""
    try:
        GradedFunction.expect_values(logistic_regression_loss_grad, fn, _moderate(args), dtype)
    except core.CheckFailed:
        return NOT_THE_SIZE
    rounds_to_one, overflows = PROBE_SCORES[dtype]
    if not _finite_at(fn, rounds_to_one, dtype):
        return LOG_OF_PROBABILITY
    if not _finite_at(fn, overflows, dtype):
        return EXP_RATIO
    return STAYS_EXACT


def check_large_scores(fn: Any) -> None:
    """The gradient stays finite and correct when exp of the scores overflows.

    Values are compared with each dtype's own tolerance: in float64, ``torch.sigmoid`` and
    ``1 / (1 + exp(-z))`` are exact here, while scores clamped to [-10, 10] (off by 5e-5) and
    probabilities clamped to [1e-7, 1 - 1e-7] (off by 1e-7) fail. Those pass every other check (on
    order-one scores neither clamp acts), so each costs this point alone.
    The advice names the cause the evidence shows (``_large_score_advice``).
    """
    for dtype, args in _large_score_cases():
        try:
            logistic_regression_loss_grad.expect_values(fn, args, dtype)
        except core.CheckFailed as failure:
            raise core.CheckFailed(
                f"{failure}\n  These inputs give large scores X theta (hundreds, in "
                f"{str(dtype).replace('torch.', '')}). {_large_score_advice(fn, args, dtype)}"
            ) from None


def hint(fn: Any, theta: torch.Tensor, X: torch.Tensor, y: torch.Tensor) -> str:
    """A hint that fits the mistake, found by comparing the student's gradient at these inputs
    with the usual wrong formulas (float64, CPU); a general one when none matches."""
    general = "The gradient of the summed NLL is X^T (sigmoid(X theta) - y)."
    try:
        analytic = core.call(fn, NAME, theta, X, y)
        a = analytic.detach().cpu().double().reshape(theta.shape)
    except Exception:  # no usable result: nothing to compare
        return general
    theta, X, y = (t.detach().cpu().double() for t in (theta, X, y))
    right = X.T @ (torch.sigmoid(X @ theta) - y)
    known = [
        (-right, "It is the negative of the gradient: check the sign, (sigmoid(X theta) - y)."),
        (right / X.shape[0], "It is the gradient divided by the number of rows: the loss is "
                             "the *sum* of the NLL over the rows, so do not average."),
        (X.T @ (X @ theta - y), "It leaves out the sigmoid: the prediction is "
                                "sigmoid(X theta), not X theta."),
        (2 * right, "It is twice the gradient: there is no factor 2 in X^T (sigmoid(X theta) - y)."),
    ]
    for candidate, text in known:
        if torch.allclose(a, candidate, rtol=1e-4, atol=1e-8 * (1 + float(candidate.abs().max()))):
            return text
    return general


# ---------------------------------------------------------------------------------------------
# The digits data, as the notebook prepares and splits them.


def digits_design() -> tuple[torch.Tensor, torch.Tensor]:
    """All 360 images of 0 and 1: pixels / 16 and a ones column (360 x 65), labels (360 x 1)."""
    from sklearn.datasets import load_digits

    pixels, labels = load_digits(n_class=2, return_X_y=True)
    X = torch.tensor(pixels, dtype=torch.float64) / DIGITS_PIXEL_MAX
    X = torch.cat((X, torch.ones(X.shape[0], 1, dtype=torch.float64)), dim=1)
    return X, torch.tensor(labels, dtype=torch.float64).reshape(-1, 1)


def digits_split(
    split_seed: int = SPLIT_SEED, start_seed: int = START_SEED
) -> tuple[torch.Tensor, ...]:
    """The notebook's split and start: X_train, y_train, X_test, y_test, theta0 (65 x 1)."""
    X, y = digits_design()
    order = torch.randperm(X.shape[0], generator=core.generator(split_seed))
    train, test = order[:DIGITS_TRAIN_ROWS], order[DIGITS_TRAIN_ROWS:]
    theta0 = torch.rand(X.shape[1], 1, generator=core.generator(start_seed), dtype=torch.float64)
    return X[train], y[train], X[test], y[test], theta0


# ---------------------------------------------------------------------------------------------
# Gradient checking: central differences of the reference NLL against the student's gradient.


def _relative_errors(fn: Any, theta: torch.Tensor, X: torch.Tensor, y: torch.Tensor,
                     coordinates: torch.Tensor) -> torch.Tensor:
    analytic = core.call(fn, NAME, theta, X, y)
    core.expect_tensor(analytic, NAME, shape=theta.shape, dtype=theta.dtype, args=(theta, X, y))
    analytic = analytic.detach().to(device="cpu", dtype=torch.float64)
    theta_cpu, X_cpu, y_cpu = (t.detach().cpu() for t in (theta, X, y))
    errors = []
    for i in coordinates.tolist():
        step = torch.zeros_like(theta_cpu)
        step[i, 0] = GRAD_CHECK_H
        numeric = float(nll(theta_cpu + step, X_cpu, y_cpu) - nll(theta_cpu - step, X_cpu, y_cpu))
        numeric /= 2 * GRAD_CHECK_H
        value = float(analytic[i, 0])
        errors.append(abs(numeric - value) / (abs(numeric) + abs(value) + 1e-8))
    return torch.tensor(errors, dtype=torch.float64)


def check_gradient_numerically(fn: Any) -> None:
    """The gradient agrees with central differences of the NLL (float64, fixed seed).

    Two cases: the notebook's (a small random theta, the digits test rows, 20 random coordinates)
    and random data of another shape (every coordinate). The average relative error must be below
    1e-5, as in the notebook's own check.
    """
    gen = core.generator(61)
    _, _, X_test, y_test, _ = digits_split()
    theta = 0.001 * torch.rand(X_test.shape[1], 1, generator=gen, dtype=torch.float64)
    coordinates = torch.randperm(X_test.shape[1], generator=gen)[:GRAD_CHECK_COORDINATES]
    d, m = 6, 40
    theta_r = random_matrix(gen, d, 1) / d**0.5
    cases = [(theta, X_test, y_test, coordinates),
             (theta_r, random_matrix(gen, m, d), _labels(gen, m), torch.arange(d))]

    def on(device: torch.device) -> None:
        for theta_c, X_c, y_c, coords in cases:
            inputs = tuple(t.to(device) for t in (theta_c, X_c, y_c))
            error = float(_relative_errors(fn, *inputs, coords).mean())
            if not error < GRAD_CHECK_MAX_ERROR:
                raise core.CheckFailed(
                    f"Gradient check failed: `{NAME}` and central differences of the negative "
                    f"log-likelihood differ by an average relative error of {error:.2g} (it must "
                    f"be below {GRAD_CHECK_MAX_ERROR:g}) for inputs {core.describe(inputs)}. "
                    + hint(fn, *inputs)
                )

    core.on_every_device(on)


# ---------------------------------------------------------------------------------------------
# The trained model.


def check_training(fn: Any) -> None:
    """The notebook's gradient descent, driven by the student's gradient, gives a good classifier.

    Same data, split, start, step and number of epochs as the notebook; the model is judged on the
    test rows by accuracy and mean BCE against bounds the reference meets with margin (see
    MIN_TEST_ACCURACY and MAX_TEST_BCE).

    The notebook does not ask for vectorised code, so a gradient too slow for the training budget
    (``core.train``) is not failed for it: its values are judged instead on the first
    SLOW_CASE_ROWS training rows, against the reference, and the check passes if they are right.
    """
    X_train, y_train, X_test, y_test, theta0 = digits_split()

    def on(device: torch.device) -> None:
        X_d, y_d = X_train.to(device), y_train.to(device)
        try:
            theta = core.train(fn, NAME, theta0.to(device), (X_d, y_d), alpha=ALPHA, steps=EPOCHS,
                               reference=_autograd_gradient, what="gradient descent on the digits",
                               how_to_speed_up="")
        except core.TooSlow:
            small = (theta0, X_train[:SLOW_CASE_ROWS], y_train[:SLOW_CASE_ROWS])
            result = core.call(fn, NAME, *(t.to(device) for t in small))
            core.expect_tensor(result, NAME, shape=theta0.shape, dtype=torch.float64, args=small)
            core.expect_close(result, _autograd_gradient(*small), NAME, rtol=FLOAT64.rtol,
                              atol=FLOAT64.atol, args=small, what="gradient entries")
            return
        logits = X_test @ theta.detach().to(device="cpu", dtype=torch.float64)
        if not bool(torch.isfinite(logits).all()):
            raise core.CheckFailed(
                f"Gradient descent with `{NAME}` on the digits data gave NaN or infinite parameters."
            )
        bce = float(F.binary_cross_entropy_with_logits(logits, y_test))
        accuracy = float(((logits > 0).to(torch.float64) == y_test).to(torch.float64).mean())
        if not (accuracy >= MIN_TEST_ACCURACY and bce <= MAX_TEST_BCE):
            raise core.CheckFailed(
                f"After the notebook's {EPOCHS} epochs of gradient descent with `{NAME}` on the "
                f"digits data, the model's test accuracy is {accuracy:.2f} and its test BCE "
                f"{bce:.3g}; a correct gradient reaches an accuracy of at least "
                f"{MIN_TEST_ACCURACY:.2f} and a BCE of at most {MAX_TEST_BCE:.2f}. "
                + hint(fn, theta0, X_train, y_train)
            )

    core.on_every_device(on)
