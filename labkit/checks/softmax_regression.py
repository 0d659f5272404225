"""Hidden checks of assignment 1.3 (softmax regression).

References are independent of what students write: the loss is ``F.cross_entropy`` with
``reduction="sum"`` (stable for any logits), the gradients are autograd of that loss (through
``[Theta, 0]`` for the reduced parameterisation), the gradient check uses central differences of the
reference loss, and the trained models use scikit-learn's own copy of the digits data.

Shapes throughout: ``Theta`` is n x K (n x (K - 1) for the reduced gradient), ``X`` is m x n and
``y`` is an m x 1 column of int64 class indices in 0..K-1.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

from . import core
from .graded import Args, GradedFunction, cast, random_matrix

Tensor = torch.Tensor

#: The digits model: all ten classes, pixels (0..16) divided by 16, a ones column, a seeded split.
DIGITS_TRAIN_ROWS = 260
DIGITS_SPLIT_SEED = 0
DIGITS_INIT_SEED = 1
#: Step and iterations of the notebook's loop. The loss is a sum over 260 rows, so its curvature is
#: at most lambda_max(X^T X) / 2, about 1500 on these rows: 0.001 is below the 2 / L that
#: guarantees a decrease at every step.
DIGITS_ALPHA = 1e-3
DIGITS_ITERATIONS = 1000
#: Test-accuracy bound for both trained models. With the reference gradient and the notebook's
#: step and iterations, split seeds 0-19 give the full model 91.3-94.1% (93.8% on the graded split,
#: seed 0; 93.2-93.8% there over start seeds 0-5) and the reduced model 90.8-93.2% (92.4% on seed 0;
#: 92.3-92.8% over start seeds 0-5). 0.88 passes every correct gradient with a margin of over 2.5
#: points (about 40 of the 1537 test images); an untrained model scores about 10%, and a gradient
#: divided by the number of rows (a mean) reaches only 15% with this step.
DIGITS_ACCURACY_BOUND = 0.88
#: Central-difference step for the float64 gradient check. The error of a central difference is
#: about h^2 |J'''| / 6 (truncation) plus eps |J| / h (rounding), smallest near h = eps^(1/3),
#: about 6e-6; with h = 1e-5 both terms are below 1e-8 relative to the gradient here, while the
#: original's h = 1e-3 (chosen for float32) leaves truncation errors near 1e-6.
GRADCHECK_STEP = 1e-5


# ---------------------------------------------------------------------------------------------
# References.


def reference_loss(Theta: Tensor, X: Tensor, y: Tensor) -> Tensor:
    """Sum over the items of -log P(y_i | x_i), stable for logits of any size."""
    return F.cross_entropy(X @ Theta, y.reshape(-1), reduction="sum")


def _with_zero_column(Theta: Tensor) -> Tensor:
    return torch.cat((Theta, Theta.new_zeros(Theta.shape[0], 1)), dim=1)


def reference_grad(Theta: Tensor, X: Tensor, y: Tensor) -> Tensor:
    Theta = Theta.detach().clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(reference_loss(Theta, X, y), Theta)
    return grad


def reference_grad_0(Theta: Tensor, X: Tensor, y: Tensor) -> Tensor:
    """Gradient with respect to the first K - 1 columns, the last column held at zero."""
    Theta = Theta.detach().clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(reference_loss(_with_zero_column(Theta), X, y), Theta)
    return grad


# ---------------------------------------------------------------------------------------------
# Inputs.

#: (features n, classes K, items m, classes that occur in y). The first two cases feed the dtype and
#: device checks, so they have several items (a mean then differs from a sum) and m != K (a one-hot
#: broadcast to m x m shows). One case leaves the last classes out of y: the number of classes
#: comes from Theta, not from the labels.
_SHAPES = [
    (4, 3, 9, 3),
    (20, 10, 100, 10),
    (3, 2, 5, 2),
    (1, 4, 6, 4),
    (7, 5, 12, 3),
    (5, 7, 1, 7),
    (12, 6, 40, 6),
]


def _labels(gen: torch.Generator, m: int, classes: int) -> Tensor:
    return torch.randint(classes, (m, 1), generator=gen, dtype=torch.int64)


def _cases(seed: int, reduced: bool) -> list[Args]:
    gen = core.generator(seed)
    cases = []
    for n, K, m, present in _SHAPES:
        Theta = random_matrix(gen, n, K - 1 if reduced else K)
        cases.append((Theta, random_matrix(gen, m, n), _labels(gen, m, present)))
    return cases


class _ScalarFunction(GradedFunction):
    """A graded function whose result is a 0-d tensor; says so plainly when it is not."""

    def _check_case(self, fn: Any, args: Args, dtype: torch.dtype, device: torch.device) -> None:
        inputs = cast(args, dtype, device)
        expected = self.reference(*cast(cast(args, dtype, "cpu"), torch.float64, "cpu"))
        result = core.call(fn, self.name, *inputs)
        if isinstance(result, (float, int)):
            raise core.CheckFailed(
                f"`{self.name}` returned a Python {type(result).__name__}; return a 0-d tensor "
                "(do not call `.item()` or `float(...)`)."
            )
        if isinstance(result, Tensor) and result.dim() != 0:
            raise core.CheckFailed(
                f"`{self.name}` returned a tensor of shape {tuple(result.shape)}; expected a 0-d "
                "(scalar) tensor, e.g. the result of `.sum()`. Sum over every item, and do not "
                "keep extra dimensions."
            )
        core.expect_tensor(result, self.name, shape=(), dtype=dtype, device=device, args=inputs)
        tolerance = self.float64 if dtype == torch.float64 else self.float32
        core.expect_close(
            result, expected, self.name, rtol=tolerance.rtol, atol=tolerance.atol, args=inputs,
            what="loss",
        )


softmax_regression_loss = _ScalarFunction(
    name="softmax_regression_loss",
    arg_names=("Theta", "X", "y"),
    cases=lambda: _cases(51, reduced=False),
    reference=reference_loss,
)

softmax_regression_loss_grad = GradedFunction(
    name="softmax_regression_loss_grad",
    arg_names=("Theta", "X", "y"),
    cases=lambda: _cases(52, reduced=False),
    reference=reference_grad,
)

softmax_regression_loss_grad_0 = GradedFunction(
    name="softmax_regression_loss_grad_0",
    arg_names=("Theta", "X", "y"),
    cases=lambda: _cases(53, reduced=True),
    reference=reference_grad_0,
)


# ---------------------------------------------------------------------------------------------
# Large logits.


def _large_logit_cases() -> list[tuple[str, torch.dtype, Args]]:
    """Logits far beyond what ``exp`` can hold, in two patterns, in float64 and float32.

    - a shared offset: a ones column whose parameters are +-offset in every class, so every logit
      is about +-offset while their differences are O(1) (``exp`` overflows, or underflows to a
      zero sum);
    - large gaps: logits of size several hundred (float32) or thousands (float64) with large
      differences, where the true class's probability rounds to zero, so ``log(softmax(...))``
      gives -inf while the log-sum-exp form stays exact.

    ``exp`` overflows above about 709 in float64 and 88 in float32, and rounds to zero below about
    -745 and -104: the offsets (1000 and 120) cross both limits.
    """
    gen = core.generator(54)
    cases = []
    for dtype, offset, spread in ((torch.float64, 1000.0, 300.0), (torch.float32, 120.0, 40.0)):
        for sign in (1.0, -1.0):
            n, K, m = 5, 4, 30
            X = torch.cat((random_matrix(gen, m, n), torch.ones(m, 1, dtype=torch.float64)), 1)
            Theta = torch.cat(
                (random_matrix(gen, n, K), torch.full((1, K), sign * offset, dtype=torch.float64)), 0
            )
            cases.append(("a shared offset", dtype, (Theta, X, _labels(gen, m, K))))
        n, K, m = 6, 5, 25
        Theta = spread * random_matrix(gen, n, K)
        cases.append(("large gaps", dtype, (Theta, random_matrix(gen, m, n), _labels(gen, m, K))))
    return cases


def check_loss_large_logits(fn: Any) -> None:
    """The loss stays finite and correct when exp of the logits overflows or underflows."""

    def on(device: torch.device) -> None:
        for pattern, dtype, args in _large_logit_cases():
            try:
                softmax_regression_loss._check_case(fn, args, dtype, device)
            except core.CheckFailed as failure:
                raise core.CheckFailed(
                    f"{failure}\n  These inputs give large logits ({pattern}, in {dtype}), where "
                    "exp(logit) overflows or underflows. Compute -log P(y_i | x_i) = "
                    "logsumexp(z_i) - z_{i, y_i} in the log-sum-exp form: subtract each row's "
                    "maximum logit before `exp`, and do not take the log of a probability that "
                    "may round to zero."
                ) from None

    core.on_every_device(on)


# ---------------------------------------------------------------------------------------------
# Gradient check by central differences.


def central_differences(loss: Callable[[Tensor], Tensor], Theta: Tensor, h: float) -> Tensor:
    """(loss(Theta + h e_ij) - loss(Theta - h e_ij)) / 2h for every entry (i, j) of Theta."""
    grad = torch.zeros_like(Theta)
    for index in itertools.product(*(range(size) for size in Theta.shape)):
        step = torch.zeros_like(Theta)
        step[index] = h
        grad[index] = (loss(Theta + step) - loss(Theta - step)) / (2 * h)
    return grad


def _gradcheck(fn: Any, name: str, reduced: bool) -> None:
    """The student's gradient against central differences of the reference loss: float64, CPU,
    K = 10 classes, 20 features, 100 items, every entry of Theta."""
    gen = core.generator(55)
    n, K, m = 20, 10, 100
    Theta = random_matrix(gen, n, K - 1 if reduced else K)
    X, y = random_matrix(gen, m, n), _labels(gen, m, K)
    loss = (lambda T: reference_loss(_with_zero_column(T), X, y)) if reduced else (
        lambda T: reference_loss(T, X, y)
    )
    numeric = central_differences(loss, Theta, GRADCHECK_STEP)
    result = core.call(fn, name, Theta, X, y)
    core.expect_tensor(
        result, name, shape=Theta.shape, dtype=Theta.dtype, device=Theta.device, args=(Theta, X, y)
    )
    # The numeric gradient is accurate to about 1e-8 relative (see GRADCHECK_STEP); a wrong
    # formula is off by O(1).
    core.expect_close(
        result, numeric, name, rtol=1e-5, atol=1e-6, args=(Theta, X, y),
        what="gradient entries (compared with central differences of the loss)",
    )


def check_grad_central_differences(fn: Any) -> None:
    _gradcheck(fn, "softmax_regression_loss_grad", reduced=False)


def check_grad_0_central_differences(fn: Any) -> None:
    _gradcheck(fn, "softmax_regression_loss_grad_0", reduced=True)


# ---------------------------------------------------------------------------------------------
# Trained models on the digits.


def digits_split(
    seed: int = DIGITS_SPLIT_SEED, n_train: int = DIGITS_TRAIN_ROWS
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """All ten digit classes: pixels / 16 then a ones column (float64), labels as an int64 column,
    split by a seeded random permutation into n_train training rows and the rest."""
    from sklearn.datasets import load_digits

    features, labels = load_digits(return_X_y=True)
    X = torch.tensor(features, dtype=torch.float64) / 16
    X = torch.cat((X, torch.ones(X.shape[0], 1, dtype=torch.float64)), dim=1)
    y = torch.tensor(labels, dtype=torch.int64).reshape(-1, 1)
    order = torch.randperm(X.shape[0], generator=torch.Generator().manual_seed(seed))
    train, test = order[:n_train], order[n_train:]
    return X[train], y[train], X[test], y[test]


def train(
    grad: Callable[[Tensor, Tensor, Tensor], Tensor],
    name: str,
    X: Tensor,
    y: Tensor,
    columns: int,
    init_seed: int = DIGITS_INIT_SEED,
) -> Tensor:
    """Gradient descent from a seeded uniform start with the notebook's step and iterations."""
    Theta = torch.rand(X.shape[1], columns, generator=core.generator(init_seed), dtype=X.dtype)
    for iteration in range(DIGITS_ITERATIONS):
        step = core.call(grad, name, Theta, X, y)
        if iteration == 0:
            core.expect_tensor(
                step, name, shape=Theta.shape, dtype=Theta.dtype, device=Theta.device,
                args=(Theta, X, y),
            )
        Theta = Theta - DIGITS_ALPHA * step
    return Theta


def accuracy(Theta: Tensor, X: Tensor, y: Tensor) -> float:
    """Fraction of rows whose largest logit is at the true class (for a reduced Theta, append its
    zero column first)."""
    return float(((X @ Theta).argmax(dim=1) == y.reshape(-1)).double().mean())


def _check_trained(Theta: Tensor, X_test: Tensor, y_test: Tensor, name: str) -> None:
    if not bool(torch.isfinite(Theta).all()):
        raise core.CheckFailed(
            f"Training on the digits with `{name}` (step {DIGITS_ALPHA}, {DIGITS_ITERATIONS} "
            "iterations) gave NaN or infinite parameters: the gradient is too large or not finite."
        )
    if Theta.shape[1] < 10:  # the reduced model: its last class scores zero
        Theta = _with_zero_column(Theta)
    score = accuracy(Theta, X_test, y_test)
    if not score >= DIGITS_ACCURACY_BOUND:
        raise core.CheckFailed(
            f"Training on the digits with `{name}` (step {DIGITS_ALPHA}, {DIGITS_ITERATIONS} "
            f"iterations, {DIGITS_TRAIN_ROWS} training rows) reaches a test accuracy of "
            f"{score:.1%}; the correct gradient reaches over {DIGITS_ACCURACY_BOUND:.0%}. Check "
            "the gradient's sign and that it is the gradient of the summed loss."
        )


def check_grad_trains(fn: Any) -> None:
    """Gradient descent with the student's full gradient trains a digits classifier."""
    X_train, y_train, X_test, y_test = digits_split()
    Theta = train(fn, "softmax_regression_loss_grad", X_train, y_train, columns=10)
    _check_trained(Theta, X_test, y_test, "softmax_regression_loss_grad")


def check_grad_0_trains(fn: Any) -> None:
    """The reduced gradient (9 columns) trains a digits classifier, and at the trained parameters
    it equals the first nine columns of the full gradient at [Theta, 0]."""
    name = "softmax_regression_loss_grad_0"
    X_train, y_train, X_test, y_test = digits_split()
    Theta = train(fn, name, X_train, y_train, columns=9)
    _check_trained(Theta, X_test, y_test, name)
    result = core.call(fn, name, Theta, X_train, y_train)
    core.expect_close(
        result, reference_grad(_with_zero_column(Theta), X_train, y_train)[:, :9], name,
        rtol=1e-7, atol=1e-9, args=(Theta, X_train, y_train),
        what="gradient entries (the first K - 1 columns of the full gradient at [Theta, 0])",
    )
